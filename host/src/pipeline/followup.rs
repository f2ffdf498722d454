//! Follow-ups in the pipeline: asking the plan after anything happens, and
//! firing timers under the host's rules.

use serde_json::json;

use super::outgoing::{self, Outgoing};
use super::{Pipeline, PipelineError};
use crate::clock::Millis;
use crate::context::Context;
use crate::control::storm::Storm;
use crate::control::{Actor, AuditEntry, automation_blocked};
use crate::crm::{Author, ConversationStatus};
use crate::followup::{QuietHours, Timer, contact_timezone};
use crate::model::{FollowUpAction, FollowUpInput, FollowUpPlan, PlanKind, Reply, Trigger, new_id};
use crate::plugins::World;
use crate::store::Batch;
use crate::tenants::Tenant;

/// The conversation's pending follow-up as read when the event started, and
/// as it should be when the event commits.
pub(super) struct TimerState {
    original: Option<Timer>,
    pub current: Option<Timer>,
}

impl TimerState {
    pub fn load(p: &Pipeline, tenant: &str, conversation: &str) -> Result<TimerState, PipelineError> {
        let original = p.stages.timers.pending(tenant, conversation)?;
        Ok(TimerState { current: original.clone(), original })
    }

    pub fn commit(
        &self,
        p: &Pipeline,
        batch: &mut Batch,
        tenant: &str,
        conversation: &str,
    ) -> Result<(), PipelineError> {
        p.stages.timers.replace(batch, tenant, conversation, self.original.as_ref(), self.current.as_ref())?;
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
            let entry = AuditEntry::new(now, actor, "follow_up_cancelled", reason)
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
    let Some(plugin) = s.plugins.active(&tenant.id, World::FollowUp) else { return Ok(()) };
    let limits = tenant.limits.clone().unwrap_or_else(|| s.config.plugins.limits.clone());
    let input = FollowUpInput {
        context: context.clone(),
        trigger,
        pending: state.current.as_ref().map(|t| t.follow_up.clone()),
        unanswered_attempts: conversation.unanswered_follow_ups,
    };
    let config = s.plugins.config(&tenant.id, World::FollowUp)?;
    let contact = &context.contact.id;
    let mut report = p.call_plugin(&tenant.id, &plugin, contact, now, || {
        s.plugins.runtime().plan_follow_up(&plugin, &limits, config, &input)
    });
    let plugin_ref = p.observe(&tenant.id, &plugin, contact, &mut report, now);
    let actor = Actor::Plugin { world: plugin_ref.world.clone(), version: plugin_ref.version.clone() };
    let plan = match report.result {
        Ok(plan) => plan,
        Err(failure) => FollowUpPlan::fallback(&failure.to_string()),
    };
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
                wa_id: contact.wa_id.clone().unwrap_or_else(|| contact.phone.trim_start_matches('+').into()),
                follow_up,
                scheduled_at: now,
                reason: plan.reason.clone(),
                planned_by: plugin_ref.version.clone(),
            };
            let entry = AuditEntry::new(now, actor, "follow_up_scheduled", &plan.reason)
                .about(Some(&conversation.id), Some(&contact.id))
                .with(json!({ "timer": timer.id, "at": timer.follow_up.at, "action": timer.follow_up.action, "attempt": timer.follow_up.attempt }));
            s.control.audit.record(batch, &tenant.id, &entry)?;
            state.current = Some(timer);
            Ok(())
        }
    }
}

/// A due follow-up: check the host's rules again, then act and re-plan.
pub(super) fn handle_timer(p: &Pipeline, seq: u64, t: &Timer) -> Result<(), PipelineError> {
    let s = &p.stages;
    let done = |batch| p.commit(&t.tenant, seq, batch);
    let Some(tenant) = s.tenants.get(&t.tenant)? else { return done(Batch::new()) };
    let Some(mut conversation) = s.crm.conversation(&tenant.id, &t.conversation_id)? else { return done(Batch::new()) };
    // The conversation's contact: the timer's may since have been merged.
    let Some(mut contact) = s.crm.contact(&tenant.id, &conversation.contact_id)? else { return done(Batch::new()) };
    let (read_conversation, read_contact) = (conversation.clone(), contact.clone());
    let message_id = format!("msg_{}", t.id);
    if s.crm.message_exists(&tenant.id, &message_id)? {
        return done(Batch::new()); // sent already: a re-fire never sends twice
    }
    let mut state = TimerState::load(p, &tenant.id, &conversation.id)?;
    if state.current.as_ref().is_some_and(|c| c.id != t.id) {
        return done(Batch::new()); // re-planned after it fired
    }
    let now = s.clock.now_ms();
    let mut batch = Batch::new();
    let contact_id = conversation.contact_id.clone();
    let audit = |batch: &mut Batch, actor: Actor, action: &str, reason: &str, details: serde_json::Value| {
        let entry = AuditEntry::new(now, actor, action, reason)
            .about(Some(&t.conversation_id), Some(&contact_id))
            .with(details);
        s.control.audit.record(batch, &tenant.id, &entry)
    };
    let planned_by = Actor::Plugin { world: World::FollowUp.to_string(), version: t.planned_by.clone() };
    let details = json!({ "timer": t.id, "action": t.follow_up.action, "attempt": t.follow_up.attempt, "was_due_at": t.follow_up.at });

    // The host's rules, whatever the plan said.
    let window_open = crate::context::ServiceWindow::of(&contact, now).open;
    let tenant_pause = s.control.tenant_pause(&tenant.id)?;
    let suppressed = if contact.stats.last_inbound_at.is_some_and(|at| at > t.scheduled_at) {
        Some("the contact replied after it was planned".to_string())
    } else if conversation.status != ConversationStatus::Open {
        Some("the conversation is closed".into())
    } else if let Some(blocked) = automation_blocked(tenant_pause.as_ref(), &contact, &conversation, now) {
        Some(blocked.to_string())
    } else if matches!(t.follow_up.action, FollowUpAction::SendText { .. }) && !window_open {
        Some("the 24-hour window is closed: only a template may go".into())
    } else {
        None
    };
    if let Some(reason) = suppressed {
        audit(&mut batch, Actor::Host, "follow_up_suppressed", &reason, details)?;
        return done(batch);
    }
    let sends = matches!(t.follow_up.action, FollowUpAction::SendText { .. } | FollowUpAction::SendTemplate { .. });
    if sends {
        let config = s.plugins.config(&tenant.id, World::FollowUp)?;
        let quiet =
            config.get("quiet-hours").and_then(|q| QuietHours::parse(q)).or(QuietHours::parse(QuietHours::DEFAULT));
        let tz = contact_timezone(&contact, tenant.tz());
        if let Some(end) = quiet.and_then(|q| q.ends_after(now, tz)) {
            let mut later = t.clone();
            later.follow_up.at = end;
            audit(
                &mut batch,
                Actor::Host,
                "follow_up_deferred",
                &format!("quiet hours in the contact's time ({tz})"),
                json!({ "timer": t.id, "until": end }),
            )?;
            state.current = Some(later);
            state.commit(p, &mut batch, &tenant.id, &conversation.id)?;
            return done(batch);
        }
    }

    // The storm guard counts it as it goes.
    if sends {
        let limits = tenant.automation_limits(s.config.automation);
        if let Err(rule) = Storm::new(limits, &mut contact, now).allow() {
            audit(&mut batch, Actor::Host, "follow_up_suppressed", &rule.to_string(), details)?;
            state.current = None;
            state.commit(p, &mut batch, &tenant.id, &conversation.id)?;
            s.crm.put_contact(&mut batch, &tenant.id, &contact, Some(&read_contact))?;
            return done(batch);
        }
    }

    // Carry it out.
    match &t.follow_up.action {
        FollowUpAction::SendText { body } => {
            send(
                p,
                &tenant,
                &mut batch,
                &mut conversation,
                &mut contact,
                Reply::Text { body: body.clone() },
                message_id,
                now,
            )?;
            audit(&mut batch, planned_by, "follow_up_sent", &t.reason, details)?;
        }
        FollowUpAction::SendTemplate { template } => {
            send(
                p,
                &tenant,
                &mut batch,
                &mut conversation,
                &mut contact,
                Reply::Template(template.clone()),
                message_id,
                now,
            )?;
            audit(&mut batch, planned_by, "follow_up_sent", &t.reason, details)?;
        }
        FollowUpAction::NotifyAssignee { note } => {
            let who = conversation.assignee.clone();
            audit(&mut batch, planned_by, "assignee_notified", note, json!({ "timer": t.id, "assignee": who }))?;
        }
        FollowUpAction::CloseConversation => {
            conversation.status = ConversationStatus::Resolved;
            conversation.resolved_at = Some(now);
            conversation.needs_reply = false;
            audit(&mut batch, planned_by, "conversation_resolved", &t.reason, details)?;
            let reason = crate::model::CloseReason::Resolved;
            super::learn::close_exchange(p, &tenant, &mut contact, &mut conversation, reason, None, &mut batch, now)?;
        }
    }
    state.current = None;
    if conversation.status == ConversationStatus::Open {
        let context = s.context.build_for(&tenant, now, &contact, &conversation, None)?;
        plan(p, &tenant, &context, Trigger::TimerFired { follow_up: t.follow_up.clone() }, &mut state, &mut batch)?;
    }
    state.commit(p, &mut batch, &tenant.id, &conversation.id)?;
    s.crm.put_contact(&mut batch, &tenant.id, &contact, Some(&read_contact))?;
    s.crm.put_conversation(&mut batch, &tenant.id, &conversation, Some(&read_conversation))?;
    p.commit(&tenant.id, seq, batch)?;
    if sends {
        s.outbound_wake.notify_one();
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn send(
    p: &Pipeline,
    tenant: &Tenant,
    batch: &mut Batch,
    conversation: &mut crate::crm::Conversation,
    contact: &mut crate::crm::Contact,
    reply: Reply,
    id: String,
    now: Millis,
) -> Result<(), PipelineError> {
    let s = &p.stages;
    let phone_number_id = tenant.phone_number_ids.first().cloned().unwrap_or_default();
    let o = Outgoing {
        id,
        reply: &reply,
        author: Author::Bot,
        reply_to: None,
        decision_id: None,
        phone_number_id: &phone_number_id,
        now,
    };
    outgoing::queue(&s.crm, &s.outbox, batch, &tenant.id, conversation, contact, o)?;
    conversation.unanswered_follow_ups += 1;
    Ok(())
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
        super::learn::close_exchange(p, &tenant, &mut c, &mut cv, reason, None, batch, now)?;
        s.crm.put_contact(batch, tenant_id, &c, Some(&contact))?;
        s.crm.put_conversation(batch, tenant_id, &cv, Some(&conversation))?;
    }
    Ok(())
}
