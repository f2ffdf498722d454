//! One place that turns "send this" into an outbound message in the
//! conversation log and a job in the send queue — for bot replies,
//! follow-ups and staff replies alike, so they all count the same way for
//! the 24-hour window, the contact's stats and follow-up logic.

use super::{Outbox, SendJob, SendKind};
use crate::clock::Millis;
use crate::crm::{Author, Contact, Conversation, Crm, Message};
use crate::model::{DeliveryStatus, Direction, Reply};
use crate::store::{Batch, Result};

pub struct Outgoing<'a> {
    /// The message id; also the send's idempotency key.
    pub id: String,
    pub reply: &'a Reply,
    pub author: Author,
    pub reply_to: Option<String>,
    /// The contact's message it quotes in WhatsApp (`reply_to` links it
    /// in the log either way).
    pub quoting: Option<String>,
    pub decision_id: Option<String>,
    pub phone_number_id: &'a str,
    pub now: Millis,
}

/// Records the message (pending) and queues its send, in `batch`; updates
/// the conversation's and contact's interaction times.
pub fn queue(
    crm: &Crm,
    outbox: &Outbox,
    batch: &mut Batch,
    tenant: &str,
    conversation: &mut Conversation,
    contact: &mut Contact,
    o: Outgoing<'_>,
) -> Result<Message> {
    let to = contact.address();
    let starts_conversation =
        matches!(o.reply, Reply::Template(_)) && !crate::context::ServiceWindow::of(contact, o.now).open;
    let mut message = Message {
        id: o.id,
        conversation_id: conversation.id.clone(),
        contact_id: contact.id.clone(),
        direction: Direction::Outbound,
        author: o.author,
        kind: o.reply.kind(),
        text: Some(o.reply.preview()),
        content: serde_json::to_value(o.reply).unwrap_or_default(),
        at: o.now,
        reply_to: o.reply_to,
        status: Some(DeliveryStatus::Pending),
        decision_id: o.decision_id,
        ..Default::default()
    };
    contact.record_outbound(o.now);
    conversation.record_outbound(o.now);
    outbox.enqueue(
        batch,
        &SendJob {
            message_id: message.id.clone(),
            tenant: tenant.to_string(),
            phone_number_id: o.phone_number_id.to_string(),
            to,
            lane: Some(contact.lane()),
            reply: o.reply.clone(),
            quoting: o.quoting,
            starts_conversation,
            queued_at: o.now,
            kind: match &message.author {
                Author::Human { .. } => SendKind::Staff,
                _ => SendKind::Automated,
            },
        },
    )?;
    crm.put_message(batch, tenant, &mut message)?;
    Ok(message)
}
