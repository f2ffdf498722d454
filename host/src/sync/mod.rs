//! CRM sync: a transactional outbox and its delivery to the tenant's CRM.
//!
//! Every change to the CRM records (a contact created, a conversation
//! assigned, a message logged, a decision made, a follow-up sent or
//! suppressed, a staff action…) adds an event to the outbox *in the same
//! atomic write as the change itself*: a change is never visible without
//! its event, nor an event without its change. Each of the tenant's
//! endpoints has its own queue per contact, so delivery is in order per
//! contact and one slow contact or endpoint never holds up another.
//!
//! The [`delivery`] worker sends events as signed JSON webhooks,
//! at-least-once, with exponential backoff and jitter, and moves an event
//! that keeps failing to a dead-letter list that can be replayed.

pub mod delivery;
pub mod destination;
mod endpoints;

pub use endpoints::{DeadLetter, Endpoint, Endpoints, Health};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::model::new_id;
use crate::store::{Batch, Result, Store, Tree, keys};

const EVENTS: Tree = Tree("sync.events");
const QUEUE: Tree = Tree("sync.queue");

/// The event types, in the order a newcomer meets them.
pub const CATALOGUE: &[&str] = &[
    "contact.created",
    "contact.updated",
    "contact.merged",
    "conversation.opened",
    "conversation.assigned",
    "conversation.resolved",
    "message.logged",
    "decision.made",
    "follow_up.sent",
    "follow_up.suppressed",
    "human.action",
];

/// What a CRM endpoint receives (the JSON body of the webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncEvent {
    pub id: String,
    /// One of [`CATALOGUE`].
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: Millis,
    pub tenant: String,
    /// The contact the event is about: events of one contact arrive in order.
    pub contact_id: String,
    /// Stable across redeliveries: receivers drop what they have seen.
    pub idempotency_key: String,
    /// The record after the change (a contact, a conversation, a message…).
    #[schema(value_type = serde_json::Value)]
    pub data: serde_json::Value,
}

/// Adds events to the outbox. Owned here; the CRM and the audit log call it
/// inside their own commits.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    pub endpoints: Endpoints,
}

impl Outbox {
    pub fn new(store: Store) -> Self {
        Outbox { endpoints: Endpoints::new(store.clone()), store }
    }

    /// Adds an event about `contact` to `batch`, queued for each of the
    /// tenant's endpoints that wants it. Free when the tenant has none.
    pub fn emit(
        &self,
        batch: &mut Batch,
        tenant: &str,
        contact: &str,
        kind: &str,
        at: Millis,
        data: serde_json::Value,
    ) -> Result<()> {
        let endpoints: Vec<Endpoint> = self.endpoints.list(tenant)?.into_iter().filter(|e| e.wants(kind)).collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        let id = new_id("ev");
        let event = SyncEvent {
            idempotency_key: id.clone(),
            id: id.clone(),
            kind: kind.to_string(),
            occurred_at: at,
            tenant: tenant.to_string(),
            contact_id: contact.to_string(),
            data,
        };
        let event_key = keys::join(&[tenant.as_bytes(), id.as_bytes()]);
        batch.put_json(EVENTS, event_key.clone(), &event)?;
        let (seq, n) = batch.sequence(|| self.store.generate_id())?;
        let order = Order { seq, rank: rank(kind), n };
        for e in endpoints {
            let entry = QueueEntry { event: event_key.clone(), emitted_us: crate::clock::wall_micros() };
            batch.put_json(QUEUE, queue_key(&e.id, contact, order), &entry)?;
        }
        Ok(())
    }

    pub fn event(&self, key: &[u8]) -> Result<Option<SyncEvent>> {
        self.store.get_json(EVENTS, key)
    }

    /// The first queued event of every contact waiting on `endpoint`.
    pub fn heads(&self, endpoint: &str, limit: usize) -> Result<Vec<(Vec<u8>, QueueEntry)>> {
        let prefix = keys::tenant_prefix(endpoint);
        let mut out: Vec<(Vec<u8>, QueueEntry)> = Vec::new();
        let mut last_contact: Option<Vec<u8>> = None;
        for entry in self.store.scan_prefix(QUEUE, &prefix)? {
            let (k, v) = entry?;
            let contact = k[..k.len().saturating_sub(ORDER_BYTES + 1)].to_vec();
            if last_contact.as_ref() == Some(&contact) {
                continue;
            }
            last_contact = Some(contact);
            out.push((k, crate::store::decode(QUEUE, &v)?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub fn pending(&self, endpoint: &str) -> Result<usize> {
        Ok(self.store.scan_prefix(QUEUE, &keys::tenant_prefix(endpoint))?.count())
    }

    pub fn dequeue(&self, batch: &mut Batch, key: &[u8]) {
        batch.delete(QUEUE, key.to_vec());
    }

    /// Puts an event back at the end of a contact's queue (dead-letter replay).
    pub fn requeue(&self, batch: &mut Batch, endpoint: &str, contact: &str, event_key: &[u8]) -> Result<()> {
        let order = Order { seq: self.store.generate_id()?, rank: 0, n: 0 };
        let entry = QueueEntry { event: event_key.to_vec(), emitted_us: 0 };
        batch.put_json(QUEUE, queue_key(endpoint, contact, order), &entry)
    }

    pub fn commit(&self, batch: Batch) -> Result<()> {
        self.store.commit(batch)
    }

    /// Drops an endpoint's whole queue (the endpoint was deleted).
    pub fn drop_queue(&self, endpoint: &str) -> Result<()> {
        let mut batch = Batch::new();
        for k in self.store.scan_prefix(QUEUE, &keys::tenant_prefix(endpoint))?.keys() {
            batch.delete(QUEUE, k?);
        }
        self.store.commit(batch)
    }
}

/// Where an event sits in a contact's queue: the commit that emitted it
/// (commits of one contact are ordered), then what it is about — a
/// contact before its conversation, a conversation before its messages, a
/// message before the decision on it — then emission order.
#[derive(Clone, Copy)]
struct Order {
    seq: u64,
    rank: u8,
    n: u32,
}

const ORDER_BYTES: usize = 8 + 1 + 4;

fn rank(kind: &str) -> u8 {
    match kind {
        "contact.created" | "contact.merged" => 0,
        "conversation.opened" => 1,
        "message.logged" => 2,
        "decision.made" => 3,
        "conversation.assigned" | "conversation.resolved" => 4,
        "contact.updated" => 5,
        "follow_up.sent" | "follow_up.suppressed" => 6,
        _ => 7,
    }
}

/// `endpoint ␟ contact ␟ order`: scanning an endpoint's queue visits each
/// contact's events together, in order.
fn queue_key(endpoint: &str, contact: &str, o: Order) -> Vec<u8> {
    let mut order = Vec::with_capacity(ORDER_BYTES);
    order.extend_from_slice(&keys::be(o.seq));
    order.push(o.rank);
    order.extend_from_slice(&o.n.to_be_bytes());
    keys::join(&[endpoint.as_bytes(), contact.as_bytes(), &order])
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Key of the event in the events tree.
    pub event: Vec<u8>,
    /// Wall-clock µs when emitted (delivery lets commits settle first).
    pub emitted_us: i64,
}
