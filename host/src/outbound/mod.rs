//! Outbound: messages the host sends on a tenant's behalf.
//!
//! The pipeline never waits on Meta. It queues a [`SendJob`] in the same
//! commit as the decision that caused it; this module's worker sends it
//! (after that commit is on disk), retries throttling and server errors
//! with backoff, and reports a [`SendResult`] back into the journal so the
//! contact's own pipeline worker records the outcome. A tenant without an
//! access token gets a dry run: recorded, not sent.

mod client;
mod worker;

pub use client::{GraphClient, SendError};
pub use worker::{ResultSink, Worker};

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::ingest::WhatsAppError;
use crate::model::Reply;
use crate::store::{Batch, Result, Store, Tree, keys};

const QUEUE: Tree = Tree("outbound.queue");

/// A message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendJob {
    /// The host's id of the outbound message (also the idempotency key).
    pub message_id: String,
    pub tenant: String,
    pub phone_number_id: String,
    /// Recipient `wa_id`.
    pub to: String,
    pub reply: Reply,
    pub queued_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    Sent { wamid: String },
    DryRun,
    Failed { errors: Vec<WhatsAppError>, attempts: u32 },
}

/// Reported back through the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendResult {
    pub tenant: String,
    pub message_id: String,
    pub to: String,
    pub at: Millis,
    #[serde(flatten)]
    pub outcome: SendOutcome,
}

/// The queue. Owned here; the pipeline only adds to it inside its commits.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
}

impl Outbox {
    pub fn new(store: Store) -> Self {
        Outbox { store }
    }

    pub fn enqueue(&self, batch: &mut Batch, job: &SendJob) -> Result<()> {
        let seq = self.store.generate_id()?;
        batch.put_json(QUEUE, keys::be(seq).to_vec(), job)
    }

    /// Jobs after `cursor` (all of them from `b""`) in queue order, with
    /// their keys, skipping (without decoding) those `skip` says to.
    pub fn pending_after(
        &self,
        cursor: &[u8],
        limit: usize,
        skip: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<(Vec<u8>, SendJob)>> {
        let mut jobs = Vec::new();
        for entry in self.store.after(QUEUE, cursor)? {
            let (k, v) = entry?;
            if skip(&k) {
                continue;
            }
            jobs.push((k, crate::store::decode(QUEUE, &v)?));
            if jobs.len() >= limit {
                break;
            }
        }
        Ok(jobs)
    }

    pub fn len(&self) -> Result<usize> {
        self.store.len(QUEUE)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The write that removes a finished job; goes into the result's commit.
    pub fn remove(&self, batch: &mut Batch, key: &[u8]) {
        batch.delete(QUEUE, key.to_vec());
    }
}
