//! The journal: the durable queue between the webhook and the pipeline.
//!
//! An event is in the journal from the moment its webhook is acknowledged
//! until the commit that applies its effects also removes it, so an
//! acknowledged event is never lost and never applied twice — a crash at
//! any point replays exactly the events whose effects did not land.
//!
//! Each tenant has its own sequence of keys (`tenant ␟ seq`), so a tenant
//! with a backlog never holds up another tenant's events: the dispatcher
//! reads each tenant's journal with its own cursor.
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
    /// Events journaled and not yet applied or quarantined. Counted rather
    /// than measured: `/healthz` is polled, and counting a tree is a scan.
    pending: AtomicU64,
    /// How long a de-duplication key counts. Older keys are ignored when
    /// read, whether or not the sweep has removed them yet.
    window: Millis,
}

impl Journal {
    pub fn open(store: Store, window: Millis) -> Result<Journal> {
        let mut next = 1;
        for tenant in Self::tenants_in(&store)? {
            let last = store.scan_prefix(JOURNAL, &keys::tenant_prefix(&tenant))?.keys().next_back().transpose()?;
            if let Some(seq) = last.as_deref().and_then(keys::trailing_be) {
                next = next.max(seq + 1);
            }
        }
        let pending = AtomicU64::new(store.len(JOURNAL)? as u64);
        Ok(Journal { store, append: Mutex::new(()), next_seq: AtomicU64::new(next), pending, window })
    }

    /// Tenants with events in the journal, found by skipping from one
    /// tenant's prefix to the next (no full scan).
    pub fn tenants_with_pending(&self) -> Result<Vec<String>> {
        Self::tenants_in(&self.store)
    }

    fn tenants_in(store: &Store) -> Result<Vec<String>> {
        let mut tenants = Vec::new();
        let mut from = Vec::new();
        while let Some(entry) = store.after(JOURNAL, &from)?.next() {
            let (k, _) = entry?;
            let Some(end) = k.iter().position(|&b| b == keys::SEP) else { break };
            let tenant = String::from_utf8_lossy(&k[..end]).into_owned();
            from = keys::tenant_prefix(&tenant);
            from.push(0xff);
            tenants.push(tenant);
        }
        Ok(tenants)
    }

    fn key(tenant: &str, seq: u64) -> Vec<u8> {
        keys::join(&[tenant.as_bytes(), &keys::be(seq)])
    }

    /// Appends the events not seen before, plus `extra` writes, atomically.
    /// `applied` recognises a redelivery that outlived its de-duplication
    /// key (the event's effects are already recorded): it is reported as a
    /// duplicate, not accepted.
    pub fn append(
        &self,
        events: Vec<Event>,
        now: Millis,
        extra: Batch,
        applied: impl Fn(&Event) -> Result<bool>,
    ) -> Result<Appended> {
        let _guard = self.append.lock().map_err(|_| StoreError::Engine("journal lock poisoned".into()))?;
        let mut batch = extra;
        let mut outcome = Appended::default();
        let mut in_batch = std::collections::HashSet::new();
        let mut seq = self.next_seq.load(Ordering::SeqCst);
        for event in events {
            if let Some(key) = event.dedup_key() {
                if !in_batch.insert(key.clone()) || self.seen(&key, now)? || applied(&event)? {
                    outcome.duplicates += 1;
                    continue;
                }
                batch.put(SEEN, key.clone(), keys::ts(now).to_vec());
                batch.put(SEEN_BY_TIME, [keys::ts(now).as_slice(), &key].concat(), []);
            }
            batch.put_json(JOURNAL, Self::key(event.tenant(), seq), &event)?;
            seq += 1;
            outcome.new += 1;
        }
        // Counted before the commit: once committed, a worker may apply an
        // event (and count it off) before this thread runs another line.
        self.pending.fetch_add(outcome.new as u64, Ordering::SeqCst);
        if let Err(e) = self.store.commit(batch) {
            self.pending.fetch_sub(outcome.new as u64, Ordering::SeqCst);
            return Err(e);
        }
        self.next_seq.store(seq, Ordering::SeqCst);
        Ok(outcome)
    }

    /// Whether `key` was seen within the window before `now`.
    fn seen(&self, key: &[u8], now: Millis) -> Result<bool> {
        let Some(at) = self.store.get(SEEN, key)? else { return Ok(false) };
        Ok(keys::read_ts(&at).is_none_or(|at| now.saturating_sub(at) < self.window))
    }

    /// `tenant`'s events after `cursor`, in order, at most `limit`.
    pub fn read_after(&self, tenant: &str, cursor: u64, limit: usize) -> Result<Vec<(u64, Event)>> {
        let prefix = keys::tenant_prefix(tenant);
        let mut out = Vec::new();
        for entry in self.store.after(JOURNAL, &Self::key(tenant, cursor))?.take(limit) {
            let (k, v) = entry?;
            if !k.starts_with(&prefix) {
                break;
            }
            let seq = keys::trailing_be(&k).unwrap_or_default();
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
                    self.applied();
                }
            }
        }
        Ok(out)
    }

    /// One journaled event, if it is still pending.
    pub fn get(&self, tenant: &str, seq: u64) -> Result<Option<Event>> {
        self.store.get_json(JOURNAL, &Self::key(tenant, seq))
    }

    /// The write that marks `seq` applied; goes into the event's own
    /// commit. Call [`Journal::applied`] once that commit has landed.
    pub fn ack(&self, batch: &mut Batch, tenant: &str, seq: u64) {
        batch.delete(JOURNAL, Self::key(tenant, seq));
    }

    /// Counts one event as no longer pending.
    pub fn applied(&self) {
        let _ = self.pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Moves an event that cannot be applied aside, with why.
    pub fn quarantine(&self, seq: u64, event: &Event, reason: &str) -> Result<()> {
        let key = Self::key(event.tenant(), seq);
        let mut b = Batch::new();
        b.put_json(QUARANTINE, key.clone(), &serde_json::json!({ "event": event, "reason": reason }))?;
        b.delete(JOURNAL, key);
        self.store.commit(b)?;
        self.applied();
        Ok(())
    }

    /// Events acknowledged and not yet applied.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst) as usize
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{SendOutcome, SendResult};
    use std::sync::Arc;

    fn event(n: u64) -> Event {
        Event::SendResult(SendResult {
            tenant: "t".into(),
            message_id: format!("m{n}"),
            to: "1".into(),
            lane: None,
            at: 0,
            outcome: SendOutcome::DryRun,
        })
    }

    /// The count stays exact while a worker applies events as fast as they
    /// are appended (it once leaked one when an event was applied between
    /// its commit and the count going up).
    #[test]
    fn pending_counts_every_event_until_it_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(Store::open(dir.path()).unwrap(), i64::MAX).unwrap());
        let total = 3000u64;
        let worker = {
            let j = journal.clone();
            std::thread::spawn(move || {
                let (mut cursor, mut applied) = (0, 0);
                while applied < total {
                    for (seq, _) in j.read_after("t", cursor, 64).unwrap() {
                        let mut batch = Batch::new();
                        j.ack(&mut batch, "t", seq);
                        j.store.commit(batch).unwrap();
                        j.applied();
                        cursor = seq;
                        applied += 1;
                    }
                }
            })
        };
        for n in 0..total {
            journal.append(vec![event(n)], 0, Batch::new(), |_| Ok(false)).unwrap();
        }
        worker.join().unwrap();
        assert_eq!(journal.pending(), 0);
        assert_eq!(journal.store.len(JOURNAL).unwrap(), 0);
    }
}
