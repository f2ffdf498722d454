//! Atomic multi-tree writes with compare-and-set guards.

use serde::Serialize;

use super::{Result, StoreError, Tree, encode};

/// Where a record's write count lives when it is kept under optimistic
/// concurrency ([`Batch::versioned`]): the key is the record's tree name, a
/// zero byte, and the record's key; the value its version, big-endian.
pub const VERSIONS: Tree = Tree("store.versions");

fn version_key(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(tree.0.len() + 1 + key.len());
    k.extend_from_slice(tree.0.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// A precondition checked inside the commit: the key holds exactly
/// `expect` (`None`: the key is absent).
#[derive(Debug, Clone)]
pub struct Guard {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub expect: Option<Vec<u8>>,
    /// Set for a unique index entry: when the key is held, the value is
    /// already taken (re-reading will not help the caller's request), which
    /// is a different answer from "a concurrent writer changed the record;
    /// read again and retry".
    pub unique: bool,
}

impl Guard {
    /// Checks the guard against the key's current value; every engine
    /// calls this inside its atomic write, so all report failures alike.
    pub fn check(&self, current: Option<&[u8]>) -> Result<()> {
        if current == self.expect.as_deref() {
            Ok(())
        } else if self.unique {
            Err(StoreError::Taken { tree: self.tree.0 })
        } else {
            Err(StoreError::Conflict)
        }
    }
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub enum Op {
    Put(Tree, Vec<u8>, Vec<u8>),
    Delete(Tree, Vec<u8>),
}

impl Op {
    pub fn tree(&self) -> Tree {
        match self {
            Op::Put(t, ..) | Op::Delete(t, _) => *t,
        }
    }
}

/// Writes that land together or not at all. Stages add the writes for the
/// trees they own; the pipeline commits the whole unit once.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    guards: Vec<Guard>,
    ops: Vec<Op>,
    /// One number for everything this batch emits (see [`Batch::sequence`]).
    sequence: Option<u64>,
    emitted: u32,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.guards.is_empty()
    }

    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(tree, key.into(), value.into()));
    }

    pub fn put_json<T: Serialize>(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: &T) -> Result<()> {
        let bytes = encode(tree, value)?;
        self.put(tree, key, bytes);
        Ok(())
    }

    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(tree, key.into()));
    }

    /// Commit only if `key` is absent: a unique index entry. If it is
    /// held, the commit fails with [`StoreError::Taken`].
    pub fn require_absent(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.guards.push(Guard { tree, key: key.into(), expect: None, unique: true });
    }

    /// Commit only if `key` still holds `value` (optimistic concurrency on a
    /// record read earlier; `None`: it was absent). If it changed, the
    /// commit fails with [`StoreError::Conflict`]: read again and retry.
    pub fn require_value(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) {
        self.guards.push(Guard { tree, key: key.into(), expect: value, unique: false });
    }

    /// Guards a record kept under optimistic concurrency on its version
    /// (how many times it has been written) and counts this write: the
    /// commit fails with [`StoreError::Conflict`] if anyone wrote the record
    /// after the writer read it at version `read` (0: absent, or written
    /// before it had a version). Returns the version the record has once
    /// this batch commits; the caller stores it in the record, so the next
    /// reader knows what to guard on.
    ///
    /// A counter rather than the bytes read: comparing bytes breaks as soon
    /// as the record's encoding changes (a field added by an upgrade makes
    /// every old record re-encode differently, and never match), and a SQL
    /// engine checks a version column where it could not compare documents.
    pub fn versioned(&mut self, tree: Tree, key: &[u8], read: u64) -> u64 {
        let at = version_key(tree, key);
        let expect = (read > 0).then(|| read.to_be_bytes().to_vec());
        self.guards.push(Guard { tree: VERSIONS, key: at.clone(), expect, unique: false });
        let next = read + 1;
        self.put(VERSIONS, at, next.to_be_bytes());
        next
    }

    /// Deletes a record kept under optimistic concurrency, with its version.
    pub fn delete_versioned(&mut self, tree: Tree, key: &[u8]) {
        self.delete(VERSIONS, version_key(tree, key));
        self.delete(tree, key.to_vec());
    }

    /// A number shared by everything this batch emits, allocated on first
    /// use, and a counter within it: what one commit emits stays together
    /// and in order.
    pub fn sequence(&mut self, allocate: impl FnOnce() -> Result<u64>) -> Result<(u64, u32)> {
        let seq = match self.sequence {
            Some(s) => s,
            None => *self.sequence.insert(allocate()?),
        };
        self.emitted += 1;
        Ok((seq, self.emitted))
    }

    /// Appends another batch's guards and writes to this one.
    pub fn extend(&mut self, other: Batch) {
        self.guards.extend(other.guards);
        self.ops.extend(other.ops);
    }

    /// The preconditions, for the engine that applies the batch.
    pub fn guards(&self) -> &[Guard] {
        &self.guards
    }

    /// The writes, in order, for the engine that applies the batch.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}
