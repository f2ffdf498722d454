//! An inbound message, from identity to the commit, as a sequence of short
//! steps over one unit of work: [`Work`] carries the tenant, the records
//! read, the records as they will be written, and the batch that writes
//! them; each step reads and changes it, and only [`Work::record`] commits.

use serde_json::json;

use super::followup::{self, TimerState};
use super::{Pipeline, PipelineError, learn};
use crate::clock::Millis;
use crate::context::{About, Context, Thread};
use crate::control::optout::{Consent, consent_change};
use crate::control::storm::Storm;
use crate::control::{Actor, AuditAction, AuditEntry, automation_blocked};
use crate::crm::{Author, Contact, Conversation, DecisionOutcome, DecisionRecord, Message};
use crate::identity::{Resolved, Sender};
use crate::ingest::InboundMessage;
use crate::metrics::labels;
use crate::model::{CloseReason, Direction, Handler, MessageKind, new_id};
use crate::outbound::outgoing::{self, Outgoing};
use crate::plugins::{RouterInput, Trigger};
use crate::routing::Routed;
use crate::routing::act::{self, Acts};
use crate::store::Batch;
use crate::tenants::Tenant;

pub(super) fn handle(p: &Pipeline, seq: u64, m: &InboundMessage) -> Result<(), PipelineError> {
    if m.completes_history_media() && super::amend::complete_media(p, seq, m)? {
        return Ok(());
    }
    let Some(mut w) = Work::start(p, m)? else {
        // Nothing to apply; the commit only removes it from the journal.
        return p.commit(&m.tenant, seq, Batch::new());
    };
    let span = tracing::info_span!("message", conversation = %w.conversation.id, contact = %w.contact.id);
    let _entered = span.enter();
    if m.history.is_some() {
        return w.record_past(seq);
    }
    if m.echo {
        return w.record_echo(seq);
    }
    if m.kind == MessageKind::Call {
        return w.log_call(seq);
    }
    if m.kind == MessageKind::Preference {
        return w.record_preference(seq);
    }
    if matches!(m.kind, MessageKind::Edit | MessageKind::Revoke) {
        return w.amend(seq);
    }
    if let Some(change) = super::amend::identity_change(m) {
        return w.change_identity(seq, change);
    }
    if m.kind == MessageKind::Reaction && !w.react()? {
        return w.unreact(seq);
    }
    w.close_exchange()?;
    w.consent()?;
    let input = RouterInput { context: w.context()?, message: w.message.clone() };
    let routed = Routed::from_answer(p.ask(&w.tenant, &input.context.contact.id, &input)?);
    let (acts, decision_id) = w.act(&routed, &input.context)?;
    w.plan_follow_ups(input.context, &routed)?;
    let sent = !acts.sends.is_empty();
    let decision = w.record(seq, routed, acts, decision_id)?;
    let outcome = outcome_label(&decision.outcome);
    if sent {
        p.stages.outbox.wake_sender();
    }
    let s = &p.stages;
    let elapsed = (s.clock.now_ms() - m.received_at).max(0) as f64 / 1000.0;
    s.metrics.event_seconds.get_or_create(&labels::Event { kind: "inbound" }).observe(elapsed);
    tracing::debug!(decision = %decision.id, outcome, "message routed");
    Ok(())
}

/// One inbound message's unit of work.
pub(super) struct Work<'a> {
    pub(super) p: &'a Pipeline,
    pub(super) m: &'a InboundMessage,
    pub(super) tenant: Tenant,
    pub(super) now: Millis,
    pub(super) batch: Batch,
    /// The contact, as it was read and as it will be written.
    pub(super) resolved: Resolved,
    pub(super) contact: Contact,
    /// The conversation, its stored form, and any it closed.
    pub(super) thread: Thread,
    pub(super) conversation: Conversation,
    pub(super) message: Message,
}

impl<'a> Work<'a> {
    /// Resolves who wrote and which conversation it belongs to; `None` when
    /// there is nothing to apply (the tenant is gone, or the message is
    /// already recorded).
    fn start(p: &'a Pipeline, m: &'a InboundMessage) -> Result<Option<Work<'a>>, PipelineError> {
        let s = &p.stages;
        let Some(tenant) = s.tenants.get(&m.tenant)? else {
            tracing::warn!(tenant = %m.tenant, "message for a tenant that no longer exists; dropped");
            return Ok(None);
        };
        // The commit that records a message also removes it from the
        // journal, so a replay never sees it twice; this guards the rarer
        // case of a wamid redelivered after its de-duplication window.
        if s.crm.message_exists(&tenant.id, &m.wamid)? {
            return Ok(None);
        }
        let now = s.clock.now_ms();
        let sender = Sender {
            wa_id: m.from.as_deref(),
            user_id: m.user_id.as_deref(),
            username: m.username.as_deref(),
            profile_name: m.profile_name.as_deref(),
        };
        let resolved = s.identity.resolve(&tenant, &sender, now)?;
        let mut contact = resolved.contact.clone();
        let thread = s.context.thread(&tenant.id, &contact, m.reply_to.as_deref(), m.at, resolved.deal.as_ref())?;
        let mut conversation = thread.conversation.clone();
        if thread.previous.is_none() {
            contact.stats.conversations += 1;
            conversation.exchange_since = m.at;
        }
        if conversation.referral.is_none() {
            conversation.referral.clone_from(&m.referral);
        }
        let message = inbound_message(m, &conversation, &contact);
        let batch = Batch::new();
        Ok(Some(Work { p, m, tenant, now, batch, resolved, contact, thread, conversation, message }))
    }

    /// We spoke last: this reply closes the exchange (feedback), and the
    /// signals it yields already shape this message's decisions. Then the
    /// message counts on the contact and the conversation.
    fn close_exchange(&mut self) -> Result<(), PipelineError> {
        let c = &self.conversation;
        let we_spoke_last = c.last_outbound_at.is_some_and(|o| c.last_inbound_at.is_none_or(|i| o > i));
        if self.thread.previous.is_some() && we_spoke_last {
            let closing = learn::Closing {
                tenant: &self.tenant,
                contact: &mut self.contact,
                conversation: &mut self.conversation,
                batch: &mut self.batch,
                now: self.now,
            };
            learn::close_exchange(self.p, closing, CloseReason::ContactReplied, Some(&self.message))?;
        }
        self.contact.record_inbound(self.m.at);
        self.contact.updated_at = self.now;
        self.conversation.record_inbound(self.m.at);
        Ok(())
    }

    /// Opt-out / opt-in keywords change consent before anything automated.
    fn consent(&mut self) -> Result<(), PipelineError> {
        let t = &self.tenant;
        let Some(text) = self.m.text.as_deref() else { return Ok(()) };
        let Some(change) = consent_change(text, &t.opt_out_keywords, &t.opt_in_keywords) else { return Ok(()) };
        let (opted_out, action) = match change {
            Consent::OptOut => (true, AuditAction::OptedOut),
            Consent::OptIn => (false, AuditAction::OptedIn),
        };
        if self.contact.opted_out == opted_out {
            return Ok(());
        }
        self.contact.opted_out = opted_out;
        let entry = AuditEntry::new(self.now, Actor::Host, action, format!("the contact wrote {text:?}"));
        self.audit(entry)
    }

    /// What the router sees.
    fn context(&self) -> Result<Context, PipelineError> {
        let r = &self.resolved;
        let about = About {
            contact: &self.contact,
            company: r.company.as_ref(),
            deal: r.deal.as_ref(),
            conversation: &self.conversation,
        };
        Ok(self.p.stages.context.build(&self.tenant, self.now, about, Some(&self.message.id))?)
    }

    /// Carries out the decision under the host's rules: the conversation
    /// changes, the replies are queued (each audited), and what the host
    /// suppressed is audited too.
    fn act(&mut self, routed: &Routed, context: &Context) -> Result<(Acts, String), PipelineError> {
        let s = &self.p.stages;
        let tenant_pause = s.control.tenant_pause(&self.tenant.id)?;
        let blocked = automation_blocked(tenant_pause.as_ref(), &self.contact, &self.conversation, self.now);
        let limits = self.tenant.automation_limits(s.config.automation);
        let mut storm = Storm::new(limits, &mut self.contact, self.now);
        let (decision, window) = (&routed.decision, &context.window);
        let templates = s.templates.book(&self.tenant.id, decision.templates())?;
        let acts =
            act::apply(decision, &mut self.conversation, blocked.as_ref(), window, &mut storm, &templates, self.now);
        let decision_id = new_id("dc");
        self.conversation.last_decision_id = Some(decision_id.clone());
        // The inbound message takes its place in the log before the replies.
        s.crm.put_message(&mut self.batch, &self.tenant.id, &mut self.message)?;
        s.media.expect(&mut self.batch, &self.tenant.id, &self.message, self.now)?;
        let actor = match &routed.plugin {
            Some(p) => Actor::Plugin { world: p.world.clone(), version: p.version.clone() },
            None => Actor::Host,
        };
        if self.tenant.read_receipts && !acts.sends.is_empty() {
            self.mark_read()?;
        }
        for reply in &acts.sends {
            let id = self.queue_reply(reply, &decision_id)?;
            let details = json!({ "message": id, "decision": decision_id });
            self.audit(
                AuditEntry::new(self.now, actor.clone(), AuditAction::BotReply, &decision.reason).with(details),
            )?;
        }
        for note in acts.notes.iter().filter(|n| n.is_suppression()) {
            let entry = AuditEntry::new(self.now, Actor::Host, AuditAction::AutomationSuppressed, note.to_string());
            self.audit(entry.with(json!({ "decision": decision_id })))?;
        }
        Ok((acts, decision_id))
    }

    /// The bot answered: the message is marked read (the tenant wants
    /// receipts).
    fn mark_read(&mut self) -> Result<(), PipelineError> {
        let receipt = crate::outbound::receipts::Receipt {
            tenant: self.tenant.id.clone(),
            phone_number_id: self.m.phone_number_id.clone(),
            message_id: self.message.id.clone(),
            typing: false,
            queued_at: self.now,
        };
        Ok(self.p.stages.outbox.mark_read(&mut self.batch, &receipt)?)
    }

    fn queue_reply(&mut self, reply: &crate::model::Reply, decision_id: &str) -> Result<String, PipelineError> {
        let s = &self.p.stages;
        let o = Outgoing {
            id: new_id("msg"),
            reply,
            author: Author::Bot,
            reply_to: Some(self.message.id.clone()),
            quoting: None,
            decision_id: Some(decision_id.to_string()),
            phone_number_id: &self.m.phone_number_id,
            now: self.now,
        };
        let (tenant, conversation, contact) = (&self.tenant.id, &mut self.conversation, &mut self.contact);
        let out = outgoing::queue(&s.crm, &s.outbox, &mut self.batch, tenant, conversation, contact, o)?;
        Ok(out.id)
    }

    /// Follow-up: asked after the message, and after the routing decision.
    fn plan_follow_ups(&mut self, context: Context, routed: &Routed) -> Result<(), PipelineError> {
        let (p, tenant) = (self.p, &self.tenant);
        let mut timers = TimerState::load(p, &tenant.id, &self.conversation.id)?;
        let context = context.updated(&self.contact, &self.conversation);
        let inbound = Trigger::Inbound { message: self.message.clone() };
        followup::plan(p, tenant, &context, inbound, &mut timers, &mut self.batch)?;
        let d = &routed.decision;
        let assignee = match &d.handler {
            Handler::Human { assignee } => Some(assignee.clone()),
            _ => None,
        };
        let routed =
            Trigger::Routed { needs_reply: d.needs_reply, assignee, priority: d.priority, reason: d.reason.clone() };
        followup::plan(p, tenant, &context, routed, &mut timers, &mut self.batch)?;
        timers.commit(p, &mut self.batch, &tenant.id, &self.conversation.id)
    }

    /// Writes every record the message changed, the decision, and the
    /// journal acknowledgement, in one commit.
    fn record(
        mut self,
        seq: u64,
        routed: Routed,
        acts: Acts,
        decision_id: String,
    ) -> Result<DecisionRecord, PipelineError> {
        let s = &self.p.stages;
        let record = DecisionRecord {
            id: decision_id,
            conversation_id: self.conversation.id.clone(),
            message_id: self.message.id.clone(),
            made_at: self.now,
            plugin: routed.plugin,
            outcome: routed.outcome,
            cause: routed.cause,
            decision: routed.decision,
            fuel_used: routed.fuel_used,
            duration_us: routed.duration.as_micros() as u64,
            latency_us: (crate::clock::wall_micros() - self.m.receipt_us).max(0) as u64,
            actions: acts.notes.iter().map(ToString::to_string).collect(),
        };
        let (tenant, batch) = (&self.tenant.id, &mut self.batch);
        s.crm.put_contact(batch, tenant, &mut self.contact, self.resolved.previous.as_ref())?;
        if let Some((ended, read)) = &mut self.thread.closed {
            s.crm.put_conversation(batch, tenant, ended, Some(read))?;
        }
        s.crm.put_conversation(batch, tenant, &mut self.conversation, self.thread.previous.as_ref())?;
        s.crm.put_decision(batch, tenant, &self.contact.id, &record)?;
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(record)
    }

    /// Adds an audit entry about this conversation to the batch.
    pub(super) fn audit(&mut self, entry: AuditEntry) -> Result<(), PipelineError> {
        let entry = entry.about(Some(&self.conversation.id), Some(&self.contact.id));
        self.p.stages.control.audit.record(&mut self.batch, &self.tenant.id, &entry)?;
        Ok(())
    }
}

fn inbound_message(m: &InboundMessage, conversation: &Conversation, contact: &Contact) -> Message {
    Message {
        id: m.wamid.clone(),
        conversation_id: conversation.id.clone(),
        contact_id: contact.id.clone(),
        direction: Direction::Inbound,
        author: Author::Contact,
        kind: m.kind,
        text: m.text.clone(),
        content: m.content.clone(),
        at: m.at,
        reply_to: m.reply_to.clone(),
        forwarded: m.forwarded,
        referral: m.referral.clone(),
        ..Default::default()
    }
}

fn outcome_label(o: &DecisionOutcome) -> &'static str {
    match o {
        DecisionOutcome::Decided => "decided",
        DecisionOutcome::Fallback => "fallback",
    }
}
