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
use crate::store::{Batch, Result, Store, StoreError, Tree, keys};

const EVENTS: Tree = Tree("sync.events");
const QUEUE: Tree = Tree("sync.queue");

/// What happened, as a CRM endpoint is told (`type`, and the
/// `x-switchboard-event-type` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventKind {
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "contact.merged")]
    ContactMerged,
    #[serde(rename = "conversation.opened")]
    ConversationOpened,
    #[serde(rename = "conversation.assigned")]
    ConversationAssigned,
    #[serde(rename = "conversation.resolved")]
    ConversationResolved,
    #[serde(rename = "message.logged")]
    MessageLogged,
    /// Its sender edited or deleted a logged message.
    #[serde(rename = "message.amended")]
    MessageAmended,
    #[serde(rename = "decision.made")]
    DecisionMade,
    #[serde(rename = "follow_up.sent")]
    FollowUpSent,
    #[serde(rename = "follow_up.suppressed")]
    FollowUpSuppressed,
    #[serde(rename = "human.action")]
    HumanAction,
}

impl EventKind {
    /// Every kind, in the order a newcomer meets them.
    pub const ALL: [EventKind; 12] = [
        EventKind::ContactCreated,
        EventKind::ContactUpdated,
        EventKind::ContactMerged,
        EventKind::ConversationOpened,
        EventKind::ConversationAssigned,
        EventKind::ConversationResolved,
        EventKind::MessageLogged,
        EventKind::MessageAmended,
        EventKind::DecisionMade,
        EventKind::FollowUpSent,
        EventKind::FollowUpSuppressed,
        EventKind::HumanAction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ContactCreated => "contact.created",
            EventKind::ContactUpdated => "contact.updated",
            EventKind::ContactMerged => "contact.merged",
            EventKind::ConversationOpened => "conversation.opened",
            EventKind::ConversationAssigned => "conversation.assigned",
            EventKind::ConversationResolved => "conversation.resolved",
            EventKind::MessageLogged => "message.logged",
            EventKind::MessageAmended => "message.amended",
            EventKind::DecisionMade => "decision.made",
            EventKind::FollowUpSent => "follow_up.sent",
            EventKind::FollowUpSuppressed => "follow_up.suppressed",
            EventKind::HumanAction => "human.action",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Among the events of one commit, the order a CRM can apply them in:
    /// the contact before its conversation, the message before the decision
    /// about it, the record before updates to it.
    fn rank(self) -> u8 {
        match self {
            EventKind::ContactCreated | EventKind::ContactMerged => 0,
            EventKind::ConversationOpened => 1,
            EventKind::MessageLogged | EventKind::MessageAmended => 2,
            EventKind::DecisionMade => 3,
            EventKind::ConversationAssigned | EventKind::ConversationResolved => 4,
            EventKind::ContactUpdated => 5,
            EventKind::FollowUpSent | EventKind::FollowUpSuppressed => 6,
            EventKind::HumanAction => 7,
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a CRM endpoint receives (the JSON body of the webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
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
        kind: EventKind,
        at: Millis,
        record: &impl Serialize,
    ) -> Result<()> {
        let endpoints: Vec<Endpoint> = self.endpoints.list(tenant)?.into_iter().filter(|e| e.wants(kind)).collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        // A record that cannot be serialised fails the whole commit: an
        // event with `data: null` would tell the CRM the record is gone.
        let data = serde_json::to_value(record)
            .map_err(|e| StoreError::Corrupt { tree: EVENTS.0, detail: format!("a {kind} record: {e}") })?;
        let id = new_id("ev");
        let event = SyncEvent {
            idempotency_key: id.clone(),
            id: id.clone(),
            kind,
            occurred_at: at,
            tenant: tenant.to_string(),
            contact_id: contact.to_string(),
            data,
        };
        let event_key = keys::join(&[tenant.as_bytes(), id.as_bytes()]);
        batch.put_json(EVENTS, event_key.clone(), &event)?;
        let (seq, n) = batch.sequence(|| self.store.generate_id())?;
        let order = Order { seq, rank: kind.rank(), n };
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
