//! What flows through the pipeline. Every change to a conversation is one
//! of these, appended to the journal and applied by the contact's worker,
//! so all changes about one person happen in one order.

use serde::{Deserialize, Serialize};

use crate::followup::Timer;
use crate::identity;
use crate::ingest::{InboundMessage, StatusUpdate};
use crate::outbound::SendResult;
use crate::store::keys;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A message from a contact (webhook).
    Inbound(InboundMessage),
    /// A delivery status for one of the tenant's messages (webhook).
    Status(StatusUpdate),
    /// What happened to a message the host sent (outbound worker).
    SendResult(SendResult),
    /// A follow-up came due (timer scanner).
    TimerFired(Timer),
    /// Staff resolved a conversation: its exchange closes (feedback).
    ExchangeClosed(crate::pipeline::learn::ExchangeClosed),
}

impl Event {
    pub fn tenant(&self) -> &str {
        match self {
            Event::Inbound(m) => &m.tenant,
            Event::Status(s) => &s.tenant,
            Event::SendResult(r) => &r.tenant,
            Event::TimerFired(t) => &t.tenant,
            Event::ExchangeClosed(e) => &e.tenant,
        }
    }

    /// Events about the same contact share a shard.
    pub fn shard_key(&self) -> u64 {
        match self {
            Event::Inbound(m) => identity::shard_key(&m.tenant, m.lane()),
            Event::Status(s) => identity::shard_key(&s.tenant, s.lane()),
            Event::SendResult(r) => identity::shard_key(&r.tenant, r.lane.as_deref().unwrap_or(&r.to)),
            Event::TimerFired(t) => identity::shard_key(&t.tenant, &t.wa_id),
            Event::ExchangeClosed(e) => identity::shard_key(&e.tenant, &e.wa_id),
        }
    }

    /// Identifies a redelivery: Meta's `wamid` for messages, `wamid` plus
    /// status for statuses (one message has several). Internal events are
    /// never redelivered.
    pub fn dedup_key(&self) -> Option<Vec<u8>> {
        match self {
            Event::Inbound(m) => {
                let kind: &[u8] = if m.completes_history_media() { b"hm" } else { b"m" };
                Some(keys::join(&[m.tenant.as_bytes(), kind, m.wamid.as_bytes()]))
            }
            Event::Status(s) => {
                Some(keys::join(&[s.tenant.as_bytes(), b"s", s.wamid.as_bytes(), s.status.as_str().as_bytes()]))
            }
            Event::SendResult(_) | Event::TimerFired(_) | Event::ExchangeClosed(_) => None,
        }
    }

    /// The id a log line may name: a `wamid`, a message or timer id —
    /// never content.
    pub fn id(&self) -> &str {
        match self {
            Event::Inbound(m) => &m.wamid,
            Event::Status(s) => &s.wamid,
            Event::SendResult(r) => &r.message_id,
            Event::TimerFired(t) => &t.id,
            Event::ExchangeClosed(e) => &e.conversation_id,
        }
    }

    /// When the event happened (received, sent, came due): how long it has
    /// waited is measured from here.
    pub fn since(&self) -> crate::clock::Millis {
        match self {
            Event::Inbound(m) => m.received_at,
            Event::Status(s) => s.received_at,
            Event::SendResult(r) => r.at,
            Event::TimerFired(t) => t.follow_up.at,
            Event::ExchangeClosed(e) => e.at,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::Inbound(_) => "inbound",
            Event::Status(_) => "status",
            Event::SendResult(_) => "send_result",
            Event::TimerFired(_) => "timer",
            Event::ExchangeClosed(_) => "exchange_closed",
        }
    }
}
