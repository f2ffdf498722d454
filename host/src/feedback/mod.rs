//! Feedback: when an exchange closes — the contact answered us, a
//! follow-up went unanswered to the end, or the conversation was resolved —
//! the host measures it (our first response time, the contact's reply
//! latency, depth, follow-ups, clarifying questions, active hours) and the
//! tenant's `feedback` plugin turns the measures into named signals about
//! the contact. Signals are kept on the contact with their history and
//! passed into every later router and follow-up decision.

use chrono::{TimeZone, Timelike};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::crm::{Author, Message};
use crate::model::{CloseReason, Direction, Interaction};
use crate::store::{Batch, Result, Store, Tree, keys};

const HISTORY: Tree = Tree("feedback.signal_history");

/// One past value of a signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignalChange {
    pub name: String,
    pub value: f64,
    pub at: Millis,
    /// The exchange that produced it.
    pub conversation_id: String,
    pub closed_by: CloseReason,
    /// The feedback plugin version.
    pub version: String,
}

/// The measures of an exchange: `messages` (oldest first) are the
/// exchange's, `reply` the inbound message that closed it (if any).
pub fn measure(
    conversation_id: &str,
    closed_by: CloseReason,
    messages: &[Message],
    reply: Option<&Message>,
    tz: chrono_tz::Tz,
    now: Millis,
) -> Interaction {
    let inbound: Vec<&Message> = messages.iter().filter(|m| m.direction == Direction::Inbound).collect();
    let outbound: Vec<&Message> = messages.iter().filter(|m| m.direction == Direction::Outbound).collect();
    let first_response_ms = inbound
        .first()
        .and_then(|first| outbound.iter().find(|o| o.at >= first.at).map(|o| (o.at - first.at).max(0) as u64));
    let last_outbound = outbound.last();
    let contact_reply_latency_ms = reply.zip(last_outbound).map(|(r, o)| (r.at - o.at).max(0) as u64);
    let mut turns = 0;
    let mut previous = None;
    for m in messages.iter().chain(reply) {
        if previous != Some(m.direction) {
            turns += 1;
            previous = Some(m.direction);
        }
    }
    let inbound_chars: usize =
        inbound.iter().chain(reply.as_ref()).map(|m| m.text.as_deref().unwrap_or("").chars().count()).sum();
    let inbound_count = inbound.len() + usize::from(reply.is_some());
    let is_follow_up = |m: &Message| m.id.starts_with("msg_fu_");
    let follow_ups_sent = outbound.iter().filter(|m| is_follow_up(m)).count() as u32;
    let follow_up_answered = reply.is_some() && last_outbound.is_some_and(|o| is_follow_up(o));
    let clarifying_questions = outbound
        .iter()
        .filter(|m| matches!(m.author, Author::Human { .. } | Author::Bot) && !is_follow_up(m))
        .filter(|m| m.text.as_deref().is_some_and(|t| t.contains('?')))
        .count() as u32;
    let mut active_hours: Vec<u8> = inbound
        .iter()
        .chain(reply.as_ref())
        .filter_map(|m| tz.timestamp_millis_opt(m.at).earliest().map(|t| t.hour() as u8))
        .collect();
    active_hours.sort_unstable();
    active_hours.dedup();
    Interaction {
        conversation_id: conversation_id.to_string(),
        closed_by,
        started_at: messages.first().map_or(now, |m| m.at),
        ended_at: reply.map_or_else(|| messages.last().map_or(now, |m| m.at), |r| r.at),
        first_response_ms,
        contact_reply_latency_ms,
        turns,
        inbound_messages: inbound_count as u32,
        outbound_messages: outbound.len() as u32,
        mean_inbound_length: inbound_chars.checked_div(inbound_count).unwrap_or(0) as u32,
        follow_ups_sent,
        follow_up_answered,
        clarifying_questions,
        active_hours,
    }
}

/// Signal history, per contact.
#[derive(Clone)]
pub struct Signals {
    store: Store,
}

impl Signals {
    pub fn new(store: Store) -> Self {
        Signals { store }
    }

    pub fn record(&self, batch: &mut Batch, tenant: &str, contact: &str, change: &SignalChange) -> Result<()> {
        let k = keys::join(&[tenant.as_bytes(), contact.as_bytes(), &keys::ts(change.at), change.name.as_bytes()]);
        batch.put_json(HISTORY, k, change)
    }

    /// A contact's signal history, oldest first.
    pub fn history(&self, tenant: &str, contact: &str) -> Result<Vec<SignalChange>> {
        self.store.scan_prefix(HISTORY, &keys::prefix(&[tenant.as_bytes(), contact.as_bytes()]))?.values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, dir: Direction, at: Millis, text: &str) -> Message {
        let author = if dir == Direction::Outbound { Author::Bot } else { Author::Contact };
        Message { id: id.into(), direction: dir, author, at, text: Some(text.into()), ..Default::default() }
    }

    #[test]
    fn an_exchange_is_measured() {
        let min = 60_000;
        let msgs = vec![
            m("a", Direction::Inbound, 0, "Quanto custa o plano?"),
            m("b", Direction::Outbound, 2 * min, "Qual plano?"),
            m("c", Direction::Inbound, 5 * min, "O anual"),
            m("d", Direction::Outbound, 6 * min, "R$ 1.200"),
            m("msg_fu_1", Direction::Outbound, 60 * min, "Ainda tem interesse?"),
        ];
        let reply = m("e", Direction::Inbound, 90 * min, "Sim, vou fechar");
        let i = measure("cv", CloseReason::ContactReplied, &msgs, Some(&reply), chrono_tz::UTC, 100 * min);
        assert_eq!(i.first_response_ms, Some(2 * min as u64));
        assert_eq!(i.contact_reply_latency_ms, Some(30 * min as u64));
        assert_eq!((i.turns, i.inbound_messages, i.outbound_messages), (5, 3, 3));
        assert_eq!((i.follow_ups_sent, i.follow_up_answered, i.clarifying_questions), (1, true, 1));
        assert_eq!(i.active_hours, vec![0, 1]);
    }
}
