//! The journal: the durable queue between the webhook and the pipeline.
//!
//! An event is in the journal from the moment its webhook is acknowledged
//! until the commit that applies its effects also removes it, so an
//! acknowledged event is never lost and never applied twice — a crash at
//! any point replays exactly the events whose effects did not land.
//!
//! De-duplication sits in front: each event's key (`wamid`, or `wamid` +
//! status) is remembered for the configured window (≥ 7 days, Meta's retry
//! horizon), indexed by time so expiry is a range delete, not a full scan.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::event::Event;
use crate::clock::Millis;
use crate::store::{Batch, Result, Store, StoreError, Tree, decode, keys};

const JOURNAL: Tree = Tree("pipeline.journal");
const SEEN: Tree = Tree("pipeline.seen");
const SEEN_BY_TIME: Tree = Tree("pipeline.seen.by_time");
const QUARANTINE: Tree = Tree("pipeline.quarantine");

/// What an append did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub new: usize,
    pub duplicates: usize,
}

pub struct Journal {
    store: Store,
    /// Appends are serialised so sequence numbers are committed in order:
    /// the dispatcher's cursor can then never skip a slower writer's event.
    append: Mutex<()>,
    next_seq: AtomicU64,
}

impl Journal {
    pub fn open(store: Store) -> Result<Journal> {
        let last = store.scan_prefix(JOURNAL, b"")?.keys().next_back().transpose()?;
        let next = last.and_then(|k| keys::read_be(&k)).map_or(1, |s| s + 1);
        Ok(Journal { store, append: Mutex::new(()), next_seq: AtomicU64::new(next) })
    }

    /// Appends the events not seen before, plus `extra` writes, atomically.
    pub fn append(&self, events: Vec<Event>, now: Millis, extra: Batch) -> Result<Appended> {
        let _guard = self.append.lock().map_err(|_| StoreError::Engine("journal lock poisoned".into()))?;
        let mut batch = extra;
        let mut outcome = Appended::default();
        let mut in_batch = std::collections::HashSet::new();
        let mut seq = self.next_seq.load(Ordering::SeqCst);
        for event in events {
            if let Some(key) = event.dedup_key() {
                if !in_batch.insert(key.clone()) || self.store.contains(SEEN, &key)? {
                    outcome.duplicates += 1;
                    continue;
                }
                batch.put(SEEN, key.clone(), keys::ts(now).to_vec());
                batch.put(SEEN_BY_TIME, [keys::ts(now).as_slice(), &key].concat(), []);
            }
            batch.put_json(JOURNAL, keys::be(seq).to_vec(), &event)?;
            seq += 1;
            outcome.new += 1;
        }
        self.store.commit(batch)?;
        self.next_seq.store(seq, Ordering::SeqCst);
        Ok(outcome)
    }

    /// Events after `cursor`, in order, at most `limit`.
    pub fn read_after(&self, cursor: u64, limit: usize) -> Result<Vec<(u64, Event)>> {
        let mut out = Vec::new();
        for entry in self.store.after(JOURNAL, &keys::be(cursor))?.take(limit) {
            let (k, v) = entry?;
            let seq = keys::read_be(&k).unwrap_or_default();
            match decode::<Event>(JOURNAL, &v) {
                Ok(event) => out.push((seq, event)),
                Err(e) => {
                    // Unreadable (e.g. written by a newer version): keep it
                    // aside for an operator rather than block the queue.
                    tracing::error!(seq, error = %e, "quarantining an unreadable journal entry");
                    let mut b = Batch::new();
                    b.put(QUARANTINE, k.clone(), v);
                    b.delete(JOURNAL, k);
                    self.store.commit(b)?;
                }
            }
        }
        Ok(out)
    }

    /// The write that marks `seq` applied; goes into the event's own commit.
    pub fn ack(&self, batch: &mut Batch, seq: u64) {
        batch.delete(JOURNAL, keys::be(seq).to_vec());
    }

    /// Moves an event that cannot be applied aside, with why.
    pub fn quarantine(&self, seq: u64, event: &Event, reason: &str) -> Result<()> {
        let mut b = Batch::new();
        b.put_json(QUARANTINE, keys::be(seq).to_vec(), &serde_json::json!({ "event": event, "reason": reason }))?;
        b.delete(JOURNAL, keys::be(seq).to_vec());
        self.store.commit(b)
    }

    pub fn pending(&self) -> Result<usize> {
        self.store.len(JOURNAL)
    }

    pub fn quarantined(&self) -> Result<usize> {
        self.store.len(QUARANTINE)
    }

    /// Forgets de-duplication keys older than `before`; returns how many.
    pub fn expire_seen(&self, before: Millis) -> Result<usize> {
        let mut removed = 0;
        loop {
            let mut batch = Batch::new();
            let mut n = 0;
            for k in self.store.range(SEEN_BY_TIME, &keys::ts(i64::MIN), &keys::ts(before))?.keys().take(1000) {
                let k = k?;
                batch.delete(SEEN, k[8..].to_vec());
                batch.delete(SEEN_BY_TIME, k);
                n += 1;
            }
            if n == 0 {
                return Ok(removed);
            }
            self.store.commit(batch)?;
            removed += n;
        }
    }
}
