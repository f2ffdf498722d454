//! Follow-ups in the pipeline: asking for the plan after anything happens
//! (firing a due one is `timer`).

use serde_json::json;

use super::{Pipeline, PipelineError};
use crate::clock::Millis;
use crate::context::Context;
use crate::control::{Actor, AuditAction, AuditEntry, automation_blocked};
use crate::crm::{ConversationStatus, PluginRef};
use crate::followup::{Pending, Timer};
use crate::model::{FollowUpPlan, PlanKind, new_id};
use crate::plugins::{FollowUpInput, Trigger};
use crate::store::Batch;
use crate::tenants::Tenant;

/// The conversation's pending follow-up as read when the event started, and
/// as it should be when the event commits.
pub(super) struct TimerState {
    original: Pending,
    pub current: Option<Timer>,
}

impl TimerState {
    pub fn load(p: &Pipeline, tenant: &str, conversation: &str) -> Result<TimerState, PipelineError> {
        let original = p.stages.timers.read_pending(tenant, conversation)?;
        Ok(TimerState { current: original.timer.clone(), original })
    }

    pub fn commit(
        &self,
        p: &Pipeline,
        batch: &mut Batch,
        tenant: &str,
        conversation: &str,
    ) -> Result<(), PipelineError> {
        p.stages.timers.replace(batch, tenant, conversation, &self.original, self.current.as_ref())?;
        Ok(())
    }

    fn cancel(
        &mut self,
        p: &Pipeline,
        batch: &mut Batch,
        tenant: &str,
        actor: Actor,
        reason: &str,
        now: Millis,
    ) -> Result<(), PipelineError> {
        if let Some(t) = self.current.take() {
            let entry = AuditEntry::new(now, actor, AuditAction::FollowUpCancelled, reason)
                .about(Some(&t.conversation_id), Some(&t.contact_id))
                .with(json!({ "timer": t.id, "was_due_at": t.follow_up.at }));
            p.stages.control.audit.record(batch, tenant, &entry)?;
        }
        Ok(())
    }
}

/// Asks the tenant's follow-up plugin what to do after `trigger`, and
/// applies the plan to `state` (nothing is written until the event commits).
pub(super) fn plan(
    p: &Pipeline,
    tenant: &Tenant,
    context: &Context,
    trigger: Trigger,
    state: &mut TimerState,
    batch: &mut Batch,
) -> Result<(), PipelineError> {
    let s = &p.stages;
    let now = context.now;
    let conversation = &context.conversation;
    if conversation.status != ConversationStatus::Open {
        return state.cancel(p, batch, &tenant.id, Actor::Host, "the conversation is closed", now);
    }
    let tenant_pause = s.control.tenant_pause(&tenant.id)?;
    if let Some(blocked) = automation_blocked(tenant_pause.as_ref(), &context.contact, conversation, now) {
        return state.cancel(p, batch, &tenant.id, Actor::Host, &blocked.to_string(), now);
    }
    let Some((plan, plugin_ref)) = ask(p, tenant, context, trigger, state)? else { return Ok(()) };
    let actor = Actor::Plugin { world: plugin_ref.world.clone(), version: plugin_ref.version.clone() };
    match plan.kind {
        PlanKind::Nothing => Ok(()),
        PlanKind::CancelPending => state.cancel(p, batch, &tenant.id, actor, &plan.reason, now),
        PlanKind::Schedule { follow_up } => {
            let contact = &context.contact;
            let timer = Timer {
                id: new_id("fu"),
                tenant: tenant.id.clone(),
                conversation_id: conversation.id.clone(),
                contact_id: contact.id.clone(),
                wa_id: contact.lane(),
                follow_up,
                scheduled_at: now,
                reason: plan.reason,
                planned_by: plugin_ref.version,
            };
            let details = json!({ "timer": timer.id, "at": timer.follow_up.at, "action": timer.follow_up.action, "attempt": timer.follow_up.attempt });
            let entry = AuditEntry::new(now, actor, AuditAction::FollowUpScheduled, &timer.reason)
                .about(Some(&conversation.id), Some(&contact.id))
                .with(details);
            s.control.audit.record(batch, &tenant.id, &entry)?;
            state.current = Some(timer);
            Ok(())
        }
    }
}

/// The tenant's follow-up plugin's plan (its fallback if the call failed);
/// `None` when the tenant has no follow-up plugin.
fn ask(
    p: &Pipeline,
    tenant: &Tenant,
    context: &Context,
    trigger: Trigger,
    state: &TimerState,
) -> Result<Option<(FollowUpPlan, PluginRef)>, PipelineError> {
    let input = FollowUpInput {
        context: context.clone(),
        trigger,
        pending: state.current.as_ref().map(|t| t.follow_up.clone()),
        unanswered_attempts: context.conversation.unanswered_follow_ups,
    };
    let Some((report, plugin)) = p.ask(tenant, &context.contact.id, &input)? else { return Ok(None) };
    let plan = report.result.unwrap_or_else(|failure| FollowUpPlan::fallback(&failure.to_string()));
    Ok(Some((plan, plugin)))
}

/// Asks for a plan after something happened to a conversation outside an
/// inbound message (a send went out, a status moved), adding the result
/// to `batch`.
pub(super) fn after(
    p: &Pipeline,
    tenant_id: &str,
    conversation_id: &str,
    trigger: Trigger,
    batch: &mut Batch,
) -> Result<(), PipelineError> {
    let s = &p.stages;
    let Some(tenant) = s.tenants.get(tenant_id)? else { return Ok(()) };
    let Some(conversation) = s.crm.conversation(tenant_id, conversation_id)? else { return Ok(()) };
    let Some(contact) = s.crm.contact(tenant_id, &conversation.contact_id)? else { return Ok(()) };
    let now = s.clock.now_ms();
    let context = s.context.build_for(&tenant, now, &contact, &conversation, None)?;
    let mut state = TimerState::load(p, tenant_id, conversation_id)?;
    let after_send = matches!(trigger, Trigger::Outbound { .. });
    plan(p, &tenant, &context, trigger, &mut state, batch)?;
    state.commit(p, batch, tenant_id, conversation_id)?;
    // The planner let unanswered follow-ups be the last word: that exchange
    // is over, unanswered.
    let open = conversation.status == ConversationStatus::Open;
    if after_send && open && state.current.is_none() && conversation.unanswered_follow_ups > 0 {
        let (mut c, mut cv) = (contact.clone(), conversation.clone());
        let reason = crate::model::CloseReason::FollowUpUnanswered;
        let closing = super::learn::Closing { tenant: &tenant, contact: &mut c, conversation: &mut cv, batch, now };
        super::learn::close_exchange(p, closing, reason, None)?;
        s.crm.put_contact(batch, tenant_id, &mut c, Some(&contact))?;
        s.crm.put_conversation(batch, tenant_id, &mut cv, Some(&conversation))?;
    }
    Ok(())
}
