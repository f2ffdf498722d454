//! An inbound message, from identity to the commit.

use serde_json::json;

use super::followup::{self, TimerState};
use super::outgoing::{self, Outgoing};
use super::route::route;
use super::{Pipeline, PipelineError, act, learn};
use crate::control::optout::{Consent, consent_change};
use crate::control::storm::Storm;
use crate::control::{Actor, AuditEntry, automation_blocked};
use crate::crm::{Author, DecisionOutcome, DecisionRecord, Message};
use crate::ingest::InboundMessage;
use crate::metrics::labels;
use crate::model::{CloseReason, Direction, Handler, Trigger, new_id};
use crate::store::Batch;

pub(super) fn handle(p: &Pipeline, seq: u64, m: &InboundMessage) -> Result<(), PipelineError> {
    let s = &p.stages;
    let Some(tenant) = s.tenants.get(&m.tenant)? else {
        tracing::warn!(tenant = %m.tenant, "message for a tenant that no longer exists; dropped");
        return p.commit(&m.tenant, seq, Batch::new());
    };
    // The commit that records a message also removes it from the journal,
    // so a replay never sees it twice; this guards the rarer case of a
    // wamid redelivered after its de-duplication window expired.
    if s.crm.message_exists(&tenant.id, &m.wamid)? {
        return p.commit(&m.tenant, seq, Batch::new());
    }
    let now = s.clock.now_ms();
    let mut batch = Batch::new();

    // Identity
    let resolved = s.identity.resolve(&tenant, &m.from, m.profile_name.as_deref(), now)?;
    let mut contact = resolved.contact;

    // Context: thread, then record the message on contact and conversation
    let thread = s.context.thread(&tenant.id, &contact, m.reply_to.as_deref(), m.at, resolved.deal.as_ref())?;
    let mut conversation = thread.conversation;
    if thread.previous.is_none() {
        contact.stats.conversations += 1;
        conversation.exchange_since = m.at;
    }
    let mut message = Message {
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
        ..Default::default()
    };
    let span = tracing::info_span!("message", conversation = %conversation.id, contact = %contact.id);
    let _entered = span.enter();

    // We spoke last: this reply closes the exchange (feedback), and the
    // signals it yields already shape this message's decisions.
    let we_spoke_last =
        conversation.last_outbound_at.is_some_and(|o| conversation.last_inbound_at.is_none_or(|i| o > i));
    if thread.previous.is_some() && we_spoke_last {
        learn::close_exchange(
            p,
            &tenant,
            &mut contact,
            &mut conversation,
            CloseReason::ContactReplied,
            Some(&message),
            &mut batch,
            now,
        )?;
    }
    contact.record_inbound(m.at);
    contact.updated_at = now;
    conversation.record_inbound(m.at);

    // Opt-out / opt-in keywords change consent before anything automated.
    let consent = m.text.as_deref().and_then(|t| consent_change(t, &tenant.opt_out_keywords, &tenant.opt_in_keywords));
    if let Some(change) = consent {
        let (opted_out, action) = match change {
            Consent::OptOut => (true, "opted_out"),
            Consent::OptIn => (false, "opted_in"),
        };
        if contact.opted_out != opted_out {
            contact.opted_out = opted_out;
            let entry = AuditEntry::new(
                now,
                Actor::Host,
                action,
                format!("the contact wrote {:?}", m.text.as_deref().unwrap_or("")),
            )
            .about(Some(&conversation.id), Some(&contact.id));
            s.control.audit.record(&mut batch, &tenant.id, &entry)?;
        }
    }

    // Routing
    let context = s.context.build(
        &tenant,
        now,
        &contact,
        resolved.company.as_ref(),
        resolved.deal.as_ref(),
        &conversation,
        Some(&message.id),
    )?;
    let routed = route(p, &tenant, &context, &message)?;

    // Act, under the host's rules
    let tenant_pause = s.control.tenant_pause(&tenant.id)?;
    let blocked = automation_blocked(tenant_pause.as_ref(), &contact, &conversation, now);
    let mut storm = Storm::new(tenant.automation_limits(s.config.automation), &mut contact, now);
    let acts = act::apply(&routed.decision, &mut conversation, blocked.as_ref(), &context.window, &mut storm, now);
    let decision_id = new_id("dc");
    conversation.last_decision_id = Some(decision_id.clone());
    // The inbound message takes its place in the log before the replies.
    s.crm.put_message(&mut batch, &tenant.id, &mut message)?;
    let actor = match &routed.plugin {
        Some(p) => Actor::Plugin { world: p.world.clone(), version: p.version.clone() },
        None => Actor::Host,
    };
    for reply in &acts.sends {
        let o = Outgoing {
            id: new_id("msg"),
            reply,
            author: Author::Bot,
            reply_to: Some(message.id.clone()),
            decision_id: Some(decision_id.clone()),
            phone_number_id: &m.phone_number_id,
            now,
        };
        let out = outgoing::queue(&s.crm, &s.outbox, &mut batch, &tenant.id, &mut conversation, &mut contact, o)?;
        let entry = AuditEntry::new(now, actor.clone(), "bot_reply", &routed.decision.reason)
            .about(Some(&conversation.id), Some(&contact.id))
            .with(json!({ "message": out.id, "decision": decision_id }));
        s.control.audit.record(&mut batch, &tenant.id, &entry)?;
    }
    for note in acts.notes.iter().filter(|n| n.contains("suppressed")) {
        let entry = AuditEntry::new(now, Actor::Host, "automation_suppressed", note)
            .about(Some(&conversation.id), Some(&contact.id))
            .with(json!({ "decision": decision_id }));
        s.control.audit.record(&mut batch, &tenant.id, &entry)?;
    }

    // Follow-up: after the message, and after the routing decision.
    let mut timers = TimerState::load(p, &tenant.id, &conversation.id)?;
    let context = context.updated(&contact, &conversation);
    followup::plan(p, &tenant, &context, Trigger::Inbound { message: message.clone() }, &mut timers, &mut batch)?;
    let assignee = match &routed.decision.handler {
        Handler::Human { assignee } => Some(assignee.clone()),
        _ => None,
    };
    let routed_trigger = Trigger::Routed {
        needs_reply: routed.decision.needs_reply,
        assignee,
        priority: routed.decision.priority,
        reason: routed.decision.reason.clone(),
    };
    followup::plan(p, &tenant, &context, routed_trigger, &mut timers, &mut batch)?;
    timers.commit(p, &mut batch, &tenant.id, &conversation.id)?;

    let outcome_label = match routed.outcome {
        DecisionOutcome::Decided => "decided",
        DecisionOutcome::Fallback => "fallback",
    };
    let record = DecisionRecord {
        id: decision_id,
        conversation_id: conversation.id.clone(),
        message_id: message.id.clone(),
        made_at: now,
        plugin: routed.plugin,
        outcome: routed.outcome,
        cause: routed.cause,
        decision: routed.decision,
        fuel_used: routed.fuel_used,
        duration_us: routed.duration.as_micros() as u64,
        latency_us: (crate::clock::wall_micros() - m.receipt_us).max(0) as u64,
        actions: acts.notes,
    };
    s.crm.put_contact(&mut batch, &tenant.id, &contact, resolved.previous.as_ref())?;
    if let Some((ended, read)) = &thread.closed {
        s.crm.put_conversation(&mut batch, &tenant.id, ended, Some(read))?;
    }
    s.crm.put_conversation(&mut batch, &tenant.id, &conversation, thread.previous.as_ref())?;
    s.crm.put_decision(&mut batch, &tenant.id, &contact.id, &record)?;
    p.commit(&m.tenant, seq, batch)?;

    if !acts.sends.is_empty() {
        s.outbound_wake.notify_one();
    }
    s.metrics
        .event_seconds
        .get_or_create(&labels(&[("kind", "inbound")]))
        .observe(((s.clock.now_ms() - m.received_at).max(0) as f64) / 1000.0);
    tracing::debug!(decision = %record.id, outcome = outcome_label, "message routed");
    Ok(())
}
