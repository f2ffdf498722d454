//! Closing an exchange: measure it, ask the tenant's feedback plugin, keep
//! the signals it returns on the contact (with their history).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Pipeline, PipelineError};
use crate::clock::Millis;
use crate::control::{Actor, AuditEntry};
use crate::crm::{Contact, Conversation, Message, Signal};
use crate::feedback::{SignalChange, measure};
use crate::followup::contact_timezone;
use crate::model::{CloseReason, FeedbackInput};
use crate::plugins::World;
use crate::store::Batch;
use crate::tenants::Tenant;

/// An exchange closed outside the contact's worker (a staff member resolved
/// the conversation); applied by the worker like any event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeClosed {
    pub tenant: String,
    pub conversation_id: String,
    pub wa_id: String,
    pub closed_by: CloseReason,
    pub at: Millis,
}

/// Closes the conversation's current exchange. `reply` is the inbound
/// message that closed it (not yet in the log). Updates `contact` and
/// `conversation` in memory; history and audit go into `batch`.
#[allow(clippy::too_many_arguments)]
pub(super) fn close_exchange(
    p: &Pipeline,
    tenant: &Tenant,
    contact: &mut Contact,
    conversation: &mut Conversation,
    closed_by: CloseReason,
    reply: Option<&Message>,
    batch: &mut Batch,
    now: Millis,
) -> Result<(), PipelineError> {
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
    let Some(plugin) = s.plugins.active(&tenant.id, World::Feedback) else { return Ok(()) };
    let tz = contact_timezone(contact, tenant.tz());
    let interaction = measure(&conversation.id, closed_by, &messages, reply, tz, now);
    let limits = tenant.limits.clone().unwrap_or_else(|| s.config.plugins.limits.clone());
    let input = FeedbackInput { now, contact: contact.clone(), interaction: interaction.clone() };
    let config = s.plugins.config(&tenant.id, World::Feedback)?;
    let mut report = p.call_plugin(&tenant.id, &plugin, &contact.id, now, || {
        s.plugins.runtime().learn(&plugin, &limits, config, &input)
    });
    let plugin_ref = p.observe(&tenant.id, &plugin, &contact.id, &mut report, now);
    let Ok(updates) = report.result else { return Ok(()) };
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
        "signals_updated",
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
        close_exchange(p, &tenant, &mut c, &mut cv, e.closed_by, None, &mut batch, e.at)?;
        s.crm.put_contact(&mut batch, &e.tenant, &c, Some(&contact))?;
        s.crm.put_conversation(&mut batch, &e.tenant, &cv, Some(&conversation))?;
    }
    p.commit(&e.tenant, seq, batch)
}
