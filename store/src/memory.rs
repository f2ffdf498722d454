//! An engine that keeps everything in memory: for tests that need no disk,
//! and the second engine that keeps the [`Engine`] trait honest.
//!
//! One lock over every tree makes a batch atomic and its guards exact.
//! Scans copy their range out under the lock, so an iterator never sees a
//! half-applied batch (sled's do not either) and never holds the lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::batch::Op;
use super::engine::{Engine, Entries, KeyRange};
use super::{Batch, Result, StoreError, Tree};

type Trees = HashMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default)]
pub struct MemoryEngine {
    trees: RwLock<Trees>,
    ids: AtomicU64,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Engine("the in-memory engine's lock was poisoned by a panic".into())
}

impl Engine for MemoryEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let trees = self.trees.read().map_err(poisoned)?;
        Ok(trees.get(tree.0).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, tree: Tree, range: KeyRange) -> Result<Entries> {
        if range.is_empty() {
            // `BTreeMap::range` panics on an inverted range.
            return Ok(Box::new(std::iter::empty()));
        }
        let trees = self.trees.read().map_err(poisoned)?;
        let entries: Vec<_> = match trees.get(tree.0) {
            Some(t) => t.range((range.start, range.end)).map(|(k, v)| Ok((k.clone(), v.clone()))).collect(),
            None => Vec::new(),
        };
        Ok(Box::new(entries.into_iter()))
    }

    fn len(&self, tree: Tree) -> Result<usize> {
        Ok(self.trees.read().map_err(poisoned)?.get(tree.0).map_or(0, BTreeMap::len))
    }

    fn generate_id(&self) -> Result<u64> {
        Ok(self.ids.fetch_add(1, Ordering::SeqCst))
    }

    fn apply(&self, batch: &Batch) -> Result<()> {
        let mut trees = self.trees.write().map_err(poisoned)?;
        for g in batch.guards() {
            g.check(trees.get(g.tree.0).and_then(|t| t.get(&g.key)).map(Vec::as_slice))?;
        }
        for op in batch.ops() {
            match op {
                Op::Put(t, k, v) => {
                    trees.entry(t.0).or_default().insert(k.clone(), v.clone());
                }
                Op::Delete(t, k) => {
                    if let Some(tree) = trees.get_mut(t.0) {
                        tree.remove(k);
                    }
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }
}
