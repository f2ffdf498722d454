//! Outbound: messages the host sends on a tenant's behalf.
//!
//! The pipeline never waits on Meta. It queues a [`SendJob`] in the same
//! commit as the decision that caused it; this module's worker sends it
//! (after that commit is on disk), retries throttling and server errors
//! with backoff, and reports a [`SendResult`] back into the journal so the
//! contact's own pipeline worker records the outcome. A tenant without an
//! access token gets a dry run: recorded, not sent.

mod body;
mod client;
pub mod limits;
pub mod outgoing;
pub mod receipts;
pub mod tier;
mod worker;

pub use client::{GraphClient, SendError};
pub use worker::{ResultSink, Worker};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::Millis;
use crate::ingest::WhatsAppError;
use crate::model::Reply;
use crate::store::{Batch, Result, Store, Tree, keys};

const QUEUE: Tree = Tree("outbound.queue");
/// Jobs whose send has started: written (durably) before the call to Meta
/// and removed with its result, so after a crash the host knows which
/// sends may or may not have gone out.
const IN_FLIGHT: Tree = Tree("outbound.in_flight");

/// Who a send is for: what to do when a crash leaves its outcome unknown
/// depends on it (see `outbound.resend_unknown`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    /// Bot replies, acknowledgements, follow-ups: never sent twice.
    #[default]
    Automated,
    /// Written by a person.
    Staff,
}

/// A message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendJob {
    /// The host's id of the outbound message (also the idempotency key).
    pub message_id: String,
    pub tenant: String,
    pub phone_number_id: String,
    /// Recipient `wa_id` (or BSUID, for a person known only by one).
    pub to: String,
    /// The contact's lane ([`Contact::lane`](crate::crm::Contact::lane)),
    /// for the result to be applied in order with its other events.
    #[serde(default)]
    pub lane: Option<String>,
    pub reply: Reply,
    /// The message it answers (`context.message_id`), when it quotes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoting: Option<String>,
    pub queued_at: Millis,
    #[serde(default)]
    pub kind: SendKind,
    /// A template outside the contact's window: it starts a conversation
    /// and counts toward the number's messaging limit.
    #[serde(default)]
    pub starts_conversation: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    Sent {
        wamid: String,
    },
    DryRun,
    Failed {
        errors: Vec<WhatsAppError>,
        attempts: u32,
    },
    /// The host stopped (crashed) after starting the send and before
    /// recording its result; it was not sent again.
    Unknown {
        started_at: Millis,
    },
}

/// Reported back through the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendResult {
    pub tenant: String,
    pub message_id: String,
    pub to: String,
    #[serde(default)]
    pub lane: Option<String>,
    pub at: Millis,
    #[serde(flatten)]
    pub outcome: SendOutcome,
}

/// A send marked started (see [`Outbox::start`]).
pub struct Started {
    pub key: Vec<u8>,
    pub at: Millis,
    /// `None` if its result was recorded and only the mark was left.
    pub job: Option<SendJob>,
}

/// The queue. Owned here; the pipeline only adds to it inside its commits.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    /// Wakes the sender when something was queued; whoever commits a send
    /// calls [`Outbox::wake_sender`] once the commit landed.
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(store: Store) -> Self {
        Outbox { store, wake: Arc::new(Notify::new()) }
    }

    /// Tells the sender that committed jobs wait (it also polls, so a lost
    /// wake-up only delays a send).
    pub fn wake_sender(&self) {
        self.wake.notify_one();
    }

    /// What the sender waits on.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
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
        batch.delete(IN_FLIGHT, key.to_vec());
    }

    /// Marks the job's send as started. Commit (and sync) before calling
    /// Meta.
    pub fn start(&self, key: &[u8], now: Millis) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(IN_FLIGHT, key.to_vec(), keys::ts(now).to_vec());
        self.store.commit(batch)
    }

    /// Forgets a start mark, so the job is sent (again).
    pub fn restart(&self, key: &[u8]) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(IN_FLIGHT, key.to_vec());
        self.store.commit(batch)
    }

    /// Jobs marked started. At start-up these are the sends a crash
    /// interrupted.
    pub fn in_flight(&self) -> Result<Vec<Started>> {
        let mut out = Vec::new();
        for entry in self.store.scan_prefix(IN_FLIGHT, b"")? {
            let (key, at) = entry?;
            let at = keys::read_ts(&at).unwrap_or_default();
            let job = self.store.get_json(QUEUE, &key)?;
            out.push(Started { key, at, job });
        }
        Ok(out)
    }
}
