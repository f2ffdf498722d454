//! A due follow-up: the host's rules are checked again at firing time,
//! whatever the plan said, then the follow-up is carried out and the
//! conversation re-planned — one unit of work, one commit.

use serde_json::json;

use super::followup::{TimerState, plan};
use super::{Pipeline, PipelineError, learn};
use crate::clock::Millis;
use crate::context::ServiceWindow;
use crate::control::storm::Storm;
use crate::control::{Actor, AuditAction, AuditEntry, automation_blocked};
use crate::crm::{Author, Contact, Conversation, ConversationStatus};
use crate::followup::{QuietHours, Timer, contact_timezone};
use crate::model::{CloseReason, FollowUpAction, Reply};
use crate::outbound::outgoing::{self, Outgoing};
use crate::plugins::{Trigger, World};
use crate::store::Batch;
use crate::tenants::Tenant;

pub(super) fn handle_timer(p: &Pipeline, seq: u64, t: &Timer) -> Result<(), PipelineError> {
    let Some(mut f) = Firing::start(p, t)? else { return p.commit(&t.tenant, seq, Batch::new()) };
    if let Some(reason) = f.suppression()? {
        f.audit(Actor::Host, AuditAction::FollowUpSuppressed, &reason, f.details())?;
        return p.commit(&t.tenant, seq, f.batch);
    }
    let sends = matches!(t.follow_up.action, FollowUpAction::SendText { .. } | FollowUpAction::SendTemplate { .. });
    if sends && f.defer_for_quiet_hours()? {
        return p.commit(&t.tenant, seq, f.batch);
    }
    // The storm guard counts it as it goes.
    let limits = f.tenant.automation_limits(p.stages.config.automation);
    let stormed = if sends { Storm::new(limits, &mut f.contact, f.now).allow().err() } else { None };
    if let Some(rule) = stormed {
        f.audit(Actor::Host, AuditAction::FollowUpSuppressed, &rule.to_string(), f.details())?;
        f.state.current = None;
        f.state.commit(p, &mut f.batch, &f.tenant.id, &f.conversation.id)?;
        p.stages.crm.put_contact(&mut f.batch, &f.tenant.id, &mut f.contact, Some(&f.read_contact))?;
        return p.commit(&t.tenant, seq, f.batch);
    }
    f.carry_out()?;
    f.finish(seq)?;
    if sends {
        p.stages.outbox.wake_sender();
    }
    Ok(())
}

/// One firing's unit of work.
struct Firing<'a> {
    p: &'a Pipeline,
    t: &'a Timer,
    tenant: Tenant,
    now: Millis,
    batch: Batch,
    state: TimerState,
    /// As read, and as they will be written.
    read_conversation: Conversation,
    conversation: Conversation,
    read_contact: Contact,
    contact: Contact,
}

impl<'a> Firing<'a> {
    /// `None` when there is nothing to do: the tenant, conversation or
    /// contact is gone, the follow-up was sent already (a re-fire never
    /// sends twice), or it was re-planned after it fired.
    fn start(p: &'a Pipeline, t: &'a Timer) -> Result<Option<Firing<'a>>, PipelineError> {
        let s = &p.stages;
        let Some(tenant) = s.tenants.get(&t.tenant)? else { return Ok(None) };
        let Some(conversation) = s.crm.conversation(&tenant.id, &t.conversation_id)? else { return Ok(None) };
        // The conversation's contact: the timer's may since have been merged.
        let Some(contact) = s.crm.contact(&tenant.id, &conversation.contact_id)? else { return Ok(None) };
        if s.crm.message_exists(&tenant.id, &message_id(t))? {
            return Ok(None);
        }
        let state = TimerState::load(p, &tenant.id, &conversation.id)?;
        if state.current.as_ref().is_some_and(|c| c.id != t.id) {
            return Ok(None);
        }
        Ok(Some(Firing {
            p,
            t,
            now: s.clock.now_ms(),
            batch: Batch::new(),
            state,
            read_conversation: conversation.clone(),
            conversation,
            read_contact: contact.clone(),
            contact,
            tenant,
        }))
    }

    /// Why the host will not carry it out now, if it will not. A template
    /// is a business-initiated message: none goes from a number Meta
    /// flagged or restricted.
    fn suppression(&self) -> Result<Option<String>, PipelineError> {
        let (t, contact, conversation) = (self.t, &self.contact, &self.conversation);
        let tenant_pause = self.p.stages.control.tenant_pause(&self.tenant.id)?;
        if let FollowUpAction::SendTemplate { template } = &t.follow_up.action {
            let number = self.tenant.phone_number_ids.first().map(String::as_str).unwrap_or_default();
            if let Some(paused) = self.p.stages.numbers.pause_reason(&self.tenant, number)? {
                return Ok(Some(format!("{paused}: business-initiated templates are paused")));
            }
            let book = self.p.stages.templates.book(&self.tenant.id, [template])?;
            if let Err(refused) = crate::control::template_refusal(&book, template, contact) {
                return Ok(Some(refused.to_string()));
            }
        }
        Ok(if contact.stats.last_inbound_at.is_some_and(|at| at > t.scheduled_at) {
            Some("the contact replied after it was planned".to_string())
        } else if conversation.status != ConversationStatus::Open {
            Some("the conversation is closed".into())
        } else if let Some(blocked) = automation_blocked(tenant_pause.as_ref(), contact, conversation, self.now) {
            Some(blocked.to_string())
        } else if matches!(t.follow_up.action, FollowUpAction::SendText { .. })
            && !ServiceWindow::of(contact, self.now).open
        {
            Some("the 24-hour window is closed: only a template may go".into())
        } else {
            None
        })
    }

    /// Inside the contact's quiet hours the follow-up moves to their end.
    fn defer_for_quiet_hours(&mut self) -> Result<bool, PipelineError> {
        let config = self.p.stages.plugins.config(&self.tenant.id, World::FollowUp)?;
        let quiet =
            config.get("quiet-hours").and_then(|q| QuietHours::parse(q)).or(QuietHours::parse(QuietHours::DEFAULT));
        let tz = contact_timezone(&self.contact, self.tenant.tz());
        let Some(end) = quiet.and_then(|q| q.ends_after(self.now, tz)) else { return Ok(false) };
        let mut later = self.t.clone();
        later.follow_up.at = end;
        let reason = format!("quiet hours in the contact's time ({tz})");
        self.audit(Actor::Host, AuditAction::FollowUpDeferred, &reason, json!({ "timer": self.t.id, "until": end }))?;
        self.state.current = Some(later);
        self.state.commit(self.p, &mut self.batch, &self.tenant.id, &self.conversation.id)?;
        Ok(true)
    }

    fn carry_out(&mut self) -> Result<(), PipelineError> {
        let t = self.t;
        let planned_by = Actor::Plugin { world: World::FollowUp.to_string(), version: t.planned_by.clone() };
        match &t.follow_up.action {
            FollowUpAction::SendText { body } => self.send(Reply::Text { body: body.clone() })?,
            FollowUpAction::SendTemplate { template } => self.send(Reply::Template(template.clone()))?,
            FollowUpAction::NotifyAssignee { note } => {
                let details = json!({ "timer": t.id, "assignee": self.conversation.assignee });
                return self.audit(planned_by, AuditAction::AssigneeNotified, note, details);
            }
            FollowUpAction::CloseConversation => {
                self.conversation.status = ConversationStatus::Resolved;
                self.conversation.resolved_at = Some(self.now);
                self.conversation.needs_reply = false;
                self.audit(planned_by, AuditAction::ConversationResolved, &t.reason, self.details())?;
                let closing = learn::Closing {
                    tenant: &self.tenant,
                    contact: &mut self.contact,
                    conversation: &mut self.conversation,
                    batch: &mut self.batch,
                    now: self.now,
                };
                return learn::close_exchange(self.p, closing, CloseReason::Resolved, None);
            }
        }
        self.audit(planned_by, AuditAction::FollowUpSent, &t.reason, self.details())
    }

    fn send(&mut self, reply: Reply) -> Result<(), PipelineError> {
        let s = &self.p.stages;
        let phone_number_id = self.tenant.phone_number_ids.first().cloned().unwrap_or_default();
        let o = Outgoing {
            id: message_id(self.t),
            reply: &reply,
            author: Author::Bot,
            reply_to: None,
            quoting: None,
            decision_id: None,
            phone_number_id: &phone_number_id,
            now: self.now,
        };
        let (tenant, conversation, contact) = (&self.tenant.id, &mut self.conversation, &mut self.contact);
        outgoing::queue(&s.crm, &s.outbox, &mut self.batch, tenant, conversation, contact, o)?;
        self.conversation.unanswered_follow_ups += 1;
        Ok(())
    }

    /// Re-plans an open conversation and writes everything in one commit.
    fn finish(mut self, seq: u64) -> Result<(), PipelineError> {
        let (p, s) = (self.p, &self.p.stages);
        self.state.current = None;
        if self.conversation.status == ConversationStatus::Open {
            let context = s.context.build_for(&self.tenant, self.now, &self.contact, &self.conversation, None)?;
            let trigger = Trigger::TimerFired { follow_up: self.t.follow_up.clone() };
            plan(p, &self.tenant, &context, trigger, &mut self.state, &mut self.batch)?;
        }
        let (tenant, batch) = (&self.tenant.id, &mut self.batch);
        self.state.commit(p, batch, tenant, &self.conversation.id)?;
        s.crm.put_contact(batch, tenant, &mut self.contact, Some(&self.read_contact))?;
        s.crm.put_conversation(batch, tenant, &mut self.conversation, Some(&self.read_conversation))?;
        p.commit(tenant, seq, self.batch)
    }

    fn details(&self) -> serde_json::Value {
        let f = &self.t.follow_up;
        json!({ "timer": self.t.id, "action": f.action, "attempt": f.attempt, "was_due_at": f.at })
    }

    fn audit(
        &mut self,
        actor: Actor,
        action: AuditAction,
        reason: &str,
        details: serde_json::Value,
    ) -> Result<(), PipelineError> {
        let entry = AuditEntry::new(self.now, actor, action, reason)
            .about(Some(&self.t.conversation_id), Some(&self.conversation.contact_id))
            .with(details);
        self.p.stages.control.audit.record(&mut self.batch, &self.tenant.id, &entry)?;
        Ok(())
    }
}

/// The follow-up's message id: derived from the timer, so a re-fire finds
/// it sent.
fn message_id(t: &Timer) -> String {
    format!("msg_{}", t.id)
}
