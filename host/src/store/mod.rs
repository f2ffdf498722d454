//! The one narrow interface to storage.
//!
//! Every stage keeps its records here, but none of them sees sled: they see
//! named trees of ordered byte keys, point reads, ordered scans, and
//! [`Batch`]es that commit atomically across trees with optional guards
//! (compare-and-set). That is all an embedded engine or a SQL table per tree
//! needs to provide, which keeps the door open to another engine without
//! touching the stages.
//!
//! Durability is explicit: [`Store::sync`] returns once everything written
//! before the call is on disk. Callers that acknowledge something to the
//! outside world (a webhook, a send) wait for it; concurrent callers share
//! one flush (group commit), so waiting costs one fsync per group, not per
//! request.

mod batch;
mod flush;
mod health;
pub mod keys;

pub use batch::{Batch, Guard};

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A named tree. Each module declares the trees it owns as constants;
/// no other module writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tree(pub &'static str);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("a concurrent writer changed the record first")]
    Conflict,
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("storage is shutting down")]
    Closed,
    #[error(
        "the directory is in use by another Switchboard process (its lock is held); stop that one or choose another data_dir"
    )]
    Locked,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Engine(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A cheap, clonable handle to the database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Arc<RwLock<HashMap<&'static str, sled::Tree>>>,
    flusher: Arc<flush::Flusher>,
    health: Arc<health::Health>,
}

impl Store {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Engine(format!("{}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            // We flush explicitly before every acknowledgement; the
            // background flush only bounds what a crash of unacknowledged
            // work can lose.
            .flush_every_ms(Some(500))
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| match e {
                // sled reports a held lock only in the message (kind `Other`).
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => StoreError::Locked,
                other => other.into(),
            })?;
        let health = Arc::new(health::Health::default());
        let flusher = flush::Flusher::start(db.clone(), health.clone());
        Ok(Store { db, trees: Arc::default(), flusher, health })
    }

    fn tree(&self, tree: Tree) -> Result<sled::Tree> {
        if let Some(t) = self.trees.read().map_err(poisoned)?.get(tree.0) {
            return Ok(t.clone());
        }
        let opened = self.db.open_tree(tree.0)?;
        self.trees.write().map_err(poisoned)?.insert(tree.0, opened.clone());
        Ok(opened)
    }

    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }

    pub fn contains(&self, tree: Tree, key: &[u8]) -> Result<bool> {
        Ok(self.tree(tree)?.contains_key(key)?)
    }

    /// Reads and decodes a JSON record.
    pub fn get_json<T: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> Result<Option<T>> {
        match self.get(tree, key)? {
            Some(bytes) => decode(tree, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Scan> {
        Ok(Scan { tree, inner: self.tree(tree)?.scan_prefix(prefix) })
    }

    /// Entries with `start <= key < end`, in key order (reverse with `.rev()`).
    pub fn range(&self, tree: Tree, start: &[u8], end: &[u8]) -> Result<Scan> {
        Ok(Scan { tree, inner: self.tree(tree)?.range(start.to_vec()..end.to_vec()) })
    }

    /// Entries with `key > after`, in key order.
    pub fn after(&self, tree: Tree, after: &[u8]) -> Result<Scan> {
        use std::ops::Bound;
        let range = (Bound::Excluded(after.to_vec()), Bound::Unbounded);
        Ok(Scan { tree, inner: self.tree(tree)?.range::<Vec<u8>, _>(range) })
    }

    /// The first entry of the tree, if any.
    pub fn first(&self, tree: Tree) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.tree(tree)?.first()?.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    pub fn len(&self, tree: Tree) -> Result<usize> {
        Ok(self.tree(tree)?.len())
    }

    /// A number unique for the life of the database, increasing.
    pub fn generate_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// Applies `batch` atomically: all its guards hold and all its writes
    /// land, or nothing changes and [`StoreError::Conflict`] is returned.
    pub fn commit(&self, batch: Batch) -> Result<()> {
        let result = batch.apply(self);
        if let Err(StoreError::Engine(e)) = &result {
            self.health.failed(e);
        }
        result
    }

    /// Why storage stopped accepting writes, if it has. sled keeps refusing
    /// every write after an I/O error (a full disk, say) until the database
    /// is opened again; the server's supervisor does that once writing
    /// works again (see `server::supervise`).
    pub fn failure(&self) -> Option<String> {
        self.health.failure()
    }

    /// Resolves once storage has failed (see [`Store::failure`]).
    pub async fn failed(&self) -> String {
        self.health.wait().await
    }

    /// Waits until everything written before this call is on disk.
    pub async fn sync(&self) -> Result<()> {
        self.flusher.sync().await
    }

    /// The blocking form of [`Store::sync`], for threads outside the runtime.
    pub fn sync_blocking(&self) -> Result<()> {
        if let Err(e) = self.db.flush() {
            self.health.failed(&e.to_string());
            return Err(e.into());
        }
        Ok(())
    }

    /// Bytes used on disk, for `/metrics`.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Engine("tree cache lock poisoned".into())
}

pub fn encode<T: Serialize>(tree: Tree, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt { tree: tree.0, detail: e.to_string() })
}

pub fn decode<T: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { tree: tree.0, detail: e.to_string() })
}

/// An ordered iterator over a tree's entries.
pub struct Scan {
    tree: Tree,
    inner: sled::Iter,
}

impl Scan {
    /// Decodes each value as JSON.
    pub fn values<T: DeserializeOwned>(self) -> impl DoubleEndedIterator<Item = Result<T>> {
        let tree = self.tree;
        self.map(move |entry| entry.and_then(|(_, v)| decode(tree, &v)))
    }

    pub fn keys(self) -> impl DoubleEndedIterator<Item = Result<Vec<u8>>> {
        self.map(|entry| entry.map(|(k, _)| k))
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
    }
}

impl DoubleEndedIterator for Scan {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
    }
}
