//! The default engine: sled, embedded, one directory, no other service.

use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

use super::batch::Op;
use super::engine::{Engine, Entries, KeyRange};
use super::{Batch, Result, StoreError, Tree};

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Engine(e.to_string())
    }
}

pub struct SledEngine {
    db: sled::Db,
    trees: RwLock<HashMap<&'static str, sled::Tree>>,
}

/// How long opening waits for another holder of the lock to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl SledEngine {
    /// Opens the database under `dir`. A lock held by another process is
    /// waited on for a few seconds before [`StoreError::Locked`]: the
    /// previous instance of a restart (a supervisor's, or a test's in the
    /// same process) can still be letting go of it.
    pub fn open(dir: &Path) -> Result<SledEngine> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Engine(format!("{}: {e}", dir.display())))?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut said = false;
        loop {
            match Self::try_open(dir) {
                Err(StoreError::Locked) if std::time::Instant::now() < deadline => {
                    if !std::mem::replace(&mut said, true) {
                        tracing::info!(dir = %dir.display(), "the database is locked; waiting for it to be released");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn try_open(dir: &Path) -> Result<SledEngine> {
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
        Ok(SledEngine { db, trees: RwLock::default() })
    }

    fn tree(&self, tree: Tree) -> Result<sled::Tree> {
        if let Some(t) = self.trees.read().map_err(poisoned)?.get(tree.0) {
            return Ok(t.clone());
        }
        let opened = self.db.open_tree(tree.0)?;
        self.trees.write().map_err(poisoned)?.insert(tree.0, opened.clone());
        Ok(opened)
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Engine("tree cache lock poisoned".into())
}

impl Engine for SledEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, tree: Tree, range: KeyRange) -> Result<Entries> {
        if range.is_empty() {
            return Ok(Box::new(std::iter::empty()));
        }
        let iter = self.tree(tree)?.range::<Vec<u8>, _>((range.start, range.end));
        Ok(Box::new(SledEntries(iter)))
    }

    fn len(&self, tree: Tree) -> Result<usize> {
        Ok(self.tree(tree)?.len())
    }

    fn generate_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    fn apply(&self, batch: &Batch) -> Result<()> {
        let mut names: Vec<Tree> = Vec::new();
        let touched = batch.guards().iter().map(|g| g.tree).chain(batch.ops().iter().map(Op::tree));
        for t in touched {
            if !names.contains(&t) {
                names.push(t);
            }
        }
        let trees = names.iter().map(|t| self.tree(*t)).collect::<Result<Vec<_>>>()?;
        let index = |t: &Tree| names.iter().position(|n| n == t).unwrap_or_default();
        use sled::Transactional;
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        let outcome = trees[..].transaction(|txs| {
            for g in batch.guards() {
                let current = txs[index(&g.tree)].get(&g.key)?;
                g.check(current.as_deref()).map_err(ConflictableTransactionError::Abort)?;
            }
            for op in batch.ops() {
                match op {
                    Op::Put(t, k, v) => {
                        txs[index(t)].insert(k.as_slice(), v.as_slice())?;
                    }
                    Op::Delete(t, k) => {
                        txs[index(t)].remove(k.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(failed)) => Err(failed),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }
}

struct SledEntries(sled::Iter);

impl Iterator for SledEntries {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
    }
}

impl DoubleEndedIterator for SledEntries {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
    }
}
