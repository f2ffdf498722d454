//! Closing an exchange: measure it, ask the tenant's feedback plugin, keep
//! the signals it returns on the contact (with their history).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Pipeline, PipelineError};
use crate::clock::Millis;
use crate::control::{Actor, AuditAction, AuditEntry};
use crate::crm::{Contact, Conversation, Message, Signal};
use crate::feedback::{SignalChange, measure};
use crate::followup::contact_timezone;
use crate::model::CloseReason;
use crate::plugins::FeedbackInput;
use crate::plugins::World;
use crate::store::Batch;
use crate::tenants::Tenant;

/// An exchange closed outside the contact's worker (a staff member resolved
/// the conversation); applied by the worker like any event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeClosed {
    pub tenant: String,
    pub conversation_id: String,
    /// The contact's lane (see `Contact::lane`): its worker measures.
    pub wa_id: String,
    pub closed_by: CloseReason,
    pub at: Millis,
}

/// The records an exchange closes on, as the event will write them.
pub(super) struct Closing<'a> {
    pub tenant: &'a Tenant,
    pub contact: &'a mut Contact,
    pub conversation: &'a mut Conversation,
    pub batch: &'a mut Batch,
    pub now: Millis,
}

/// Closes the conversation's current exchange. `reply` is the inbound
/// message that closed it (not yet in the log). Updates the contact and
/// the conversation in memory; history and audit go into the batch.
pub(super) fn close_exchange(
    p: &Pipeline,
    c: Closing<'_>,
    closed_by: CloseReason,
    reply: Option<&Message>,
) -> Result<(), PipelineError> {
    let Closing { tenant, contact, conversation, batch, now } = c;
    let s = &p.stages;
    let since = conversation.exchange_since;
    let messages: Vec<Message> = s
        .crm
        .messages_since(&tenant.id, &conversation.id, since)?
        .into_iter()
        .filter(|m| Some(&m.id) != reply.map(|r| &r.id))
        .collect();
    conversation.exchange_since = reply.map_or(now, |r| r.at.max(since));
    if messages.is_empty() {
        return Ok(());
    }
    if s.plugins.active(&tenant.id, World::Feedback).is_none() {
        return Ok(()); // nothing to ask: skip measuring
    }
    let tz = contact_timezone(contact, tenant.tz());
    let interaction = measure(&conversation.id, closed_by, &messages, reply, tz, now);
    let input = FeedbackInput { now, contact: contact.clone(), interaction };
    let Some((report, plugin_ref)) = p.ask(tenant, &contact.id, &input)? else { return Ok(()) };
    let Ok(updates) = report.result else { return Ok(()) };
    let interaction = input.interaction;
    for u in &updates {
        contact.signals.insert(u.name.clone(), Signal { value: u.value, updated_at: now });
        let change = SignalChange {
            name: u.name.clone(),
            value: u.value,
            at: now,
            conversation_id: conversation.id.clone(),
            closed_by,
            version: plugin_ref.version.clone(),
        };
        s.signals.record(batch, &tenant.id, &contact.id, &change)?;
    }
    let entry = AuditEntry::new(
        now,
        Actor::Plugin { world: plugin_ref.world, version: plugin_ref.version },
        AuditAction::SignalsUpdated,
        format!("exchange closed: {closed_by:?}"),
    )
    .about(Some(&conversation.id), Some(&contact.id))
    .with(json!({ "interaction": interaction, "signals": updates }));
    s.control.audit.record(batch, &tenant.id, &entry)?;
    Ok(())
}

pub(super) fn handle_exchange_closed(p: &Pipeline, seq: u64, e: &ExchangeClosed) -> Result<(), PipelineError> {
    let s = &p.stages;
    let mut batch = Batch::new();
    if let (Some(tenant), Some(conversation)) =
        (s.tenants.get(&e.tenant)?, s.crm.conversation(&e.tenant, &e.conversation_id)?)
        && let Some(contact) = s.crm.contact(&e.tenant, &conversation.contact_id)?
    {
        let (mut c, mut cv) = (contact.clone(), conversation.clone());
        let closing = Closing { tenant: &tenant, contact: &mut c, conversation: &mut cv, batch: &mut batch, now: e.at };
        close_exchange(p, closing, e.closed_by, None)?;
        s.crm.put_contact(&mut batch, &e.tenant, &mut c, Some(&contact))?;
        s.crm.put_conversation(&mut batch, &e.tenant, &mut cv, Some(&conversation))?;
    }
    p.commit(&e.tenant, seq, batch)
}
