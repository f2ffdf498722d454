//! The one narrow interface to storage.
//!
//! Every stage keeps its records here, but none of them sees sled: they see
//! named trees of ordered byte keys, point reads, ordered scans, and
//! [`Batch`]es that commit atomically across trees with optional guards
//! (compare-and-set). That is all an embedded engine or a SQL table per tree
//! needs to provide: each engine implements [`Engine`] — sled (the default,
//! [`Store::open`]) and memory ([`Store::in_memory`]) today — and one
//! conformance suite (`tests/storage.rs`) holds every engine to the same
//! behaviour.
//!
//! Durability is explicit: [`Store::sync`] returns once everything written
//! before the call is on disk. Callers that acknowledge something to the
//! outside world (a webhook, a send) wait for it; concurrent callers share
//! one flush (group commit), so waiting costs one fsync per group, not per
//! request.

mod batch;
mod engine;
mod flush;
mod health;
pub mod keys;
mod memory;
mod sled_engine;

pub use batch::{Batch, Guard, Op, VERSIONS};
pub use engine::{Engine, Entries, KeyRange};

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

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
    /// A record changed between reading it and writing it back: read it
    /// again and retry.
    #[error("a concurrent writer changed the record first")]
    Conflict,
    /// A unique value (a phone number, a domain, an id) is already held by
    /// another record: retrying the same write cannot succeed.
    #[error("the value is already taken (a unique entry in {tree})")]
    Taken { tree: &'static str },
    #[error("corrupt record in {tree}: {detail}")]
    Corrupt { tree: &'static str, detail: String },
    #[error("storage is shutting down")]
    Closed,
    #[error(
        "the directory is in use by another Switchboard process (its lock is held); stop that one or choose another data_dir"
    )]
    Locked,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A cheap, clonable handle to the database.
#[derive(Clone)]
pub struct Store {
    engine: Arc<dyn Engine>,
    flusher: Arc<flush::Flusher>,
    health: Arc<health::Health>,
}

impl Store {
    /// Opens (creating if needed) the sled database in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        Ok(Store::on(Arc::new(sled_engine::SledEngine::open(dir)?)))
    }

    /// A database that lives in memory and is gone when the last handle is.
    pub fn in_memory() -> Store {
        Store::on(Arc::new(memory::MemoryEngine::default()))
    }

    /// A store over any engine.
    pub fn on(engine: Arc<dyn Engine>) -> Store {
        let health = Arc::new(health::Health::default());
        let flusher = flush::Flusher::start(engine.clone(), health.clone());
        Store { engine, flusher, health }
    }

    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.engine.get(tree, key)
    }

    pub fn contains(&self, tree: Tree, key: &[u8]) -> Result<bool> {
        Ok(self.engine.get(tree, key)?.is_some())
    }

    /// Reads and decodes a JSON record.
    pub fn get_json<T: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> Result<Option<T>> {
        match self.get(tree, key)? {
            Some(bytes) => decode(tree, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Reads and decodes a JSON record, and keeps the bytes it was read as:
    /// the guard for writing it back ([`Batch::require_value`]). Never a
    /// re-encoding of the record, which an upgrade that adds a field would
    /// make differ from every stored record. (Records with several writers
    /// carry a version instead: [`Batch::versioned`].)
    pub fn get_json_as_read<T: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> Result<Option<(T, Vec<u8>)>> {
        match self.get(tree, key)? {
            Some(bytes) => Ok(Some((decode(tree, &bytes)?, bytes))),
            None => Ok(None),
        }
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Scan> {
        Ok(Scan { tree, inner: self.engine.scan(tree, KeyRange::prefix(prefix))? })
    }

    /// Entries with `start <= key < end`, in key order (reverse with `.rev()`).
    pub fn range(&self, tree: Tree, start: &[u8], end: &[u8]) -> Result<Scan> {
        let range = KeyRange { start: Bound::Included(start.to_vec()), end: Bound::Excluded(end.to_vec()) };
        Ok(Scan { tree, inner: self.engine.scan(tree, range)? })
    }

    /// Entries with `key > after`, in key order.
    pub fn after(&self, tree: Tree, after: &[u8]) -> Result<Scan> {
        let range = KeyRange { start: Bound::Excluded(after.to_vec()), end: Bound::Unbounded };
        Ok(Scan { tree, inner: self.engine.scan(tree, range)? })
    }

    /// The first entry of the tree, if any.
    pub fn first(&self, tree: Tree) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.engine.scan(tree, KeyRange::all())?.next().transpose()
    }

    pub fn len(&self, tree: Tree) -> Result<usize> {
        self.engine.len(tree)
    }

    /// A number unique for the life of the database, increasing.
    pub fn generate_id(&self) -> Result<u64> {
        self.engine.generate_id()
    }

    /// How many `Store` handles share this database (the flush thread holds
    /// none): 1 means this handle is the last, and dropping it closes the
    /// database and releases its directory lock.
    pub fn handles(&self) -> usize {
        Arc::strong_count(&self.flusher)
    }

    /// Applies `batch` atomically: all its guards hold and all its writes
    /// land, or nothing changes and [`StoreError::Conflict`] (a record
    /// changed: retry) or [`StoreError::Taken`] (a unique value is held) is
    /// returned.
    pub fn commit(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.engine.apply(&batch);
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
        let result = self.engine.flush();
        if let Err(e) = &result {
            self.health.failed(&e.to_string());
        }
        result
    }

    /// Bytes used on disk, for `/metrics`.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.engine.size_on_disk()
    }
}

/// How many times an optimistic write (read, change, commit guarded by
/// what was read) is tried before the caller reports the conflict.
pub const OPTIMISTIC_ATTEMPTS: usize = 20;

/// Runs `attempt` until it commits: `Ok(Some(value))` when it did,
/// `Ok(None)` when it lost the race to a concurrent writer and should read
/// again. After [`OPTIMISTIC_ATTEMPTS`] lost races the result is `None`;
/// the caller says what kept changing.
pub fn optimistic<T, E>(
    mut attempt: impl FnMut() -> std::result::Result<Option<T>, E>,
) -> std::result::Result<Option<T>, E> {
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        if let Some(done) = attempt()? {
            return Ok(Some(done));
        }
    }
    Ok(None)
}

/// A commit's result for [`optimistic`]: `false` when a guard failed. A
/// unique entry taken meanwhile counts too: the loop reads again and sees
/// who holds it.
pub fn committed(result: Result<()>) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict | StoreError::Taken { .. }) => Ok(false),
        Err(e) => Err(e),
    }
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
    inner: Entries,
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
        self.inner.next()
    }
}

impl DoubleEndedIterator for Scan {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back()
    }
}
