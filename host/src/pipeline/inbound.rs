//! An inbound message, from identity to the commit.

use std::time::Duration;

use super::{Pipeline, PipelineError, act};
use crate::crm::{Author, DecisionOutcome, DecisionRecord, Message, PluginRef};
use crate::ingest::InboundMessage;
use crate::metrics::labels;
use crate::model::{Direction, MessageKind, RoutingDecision, new_id};
use crate::outbound::SendJob;
use crate::plugins::World;
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

    // Identity
    let resolved = s.identity.resolve(&tenant, &m.from, m.profile_name.as_deref(), now)?;
    let mut contact = resolved.contact;

    // Context: thread, then record the message on contact and conversation
    let thread = s.context.thread(&tenant.id, &contact, m.reply_to.as_deref(), m.at, resolved.deal.as_ref())?;
    let mut conversation = thread.conversation;
    if thread.previous.is_none() {
        contact.stats.conversations += 1;
    }
    contact.record_inbound(m.at);
    contact.updated_at = now;
    conversation.record_inbound(m.at);
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
        wamid: None,
        status: None,
        status_history: Vec::new(),
        errors: Vec::new(),
        decision_id: None,
        log_seq: 0,
    };
    let span = tracing::info_span!("message", conversation = %conversation.id, contact = %contact.id);
    let _entered = span.enter();
    let context = s.context.build(
        &tenant,
        now,
        &contact,
        resolved.company.as_ref(),
        resolved.deal.as_ref(),
        &conversation,
        Some(&message.id),
    )?;

    // Routing
    let plugin = s.plugins.active(&tenant.id, World::Router);
    let limits = tenant.limits.clone().unwrap_or_else(|| s.config.plugins.limits.clone());
    let (decision, outcome, cause, fuel, duration, plugin_ref) = match &plugin {
        Some(plugin) => {
            let version = &plugin.meta.hash;
            let config = s.plugins.config(&tenant.id, World::Router)?;
            let report = {
                let span = tracing::info_span!("route", plugin_version = %&version[..12]);
                let _e = span.enter();
                s.plugins.runtime().route(plugin, &limits, config, &context, &message)
            };
            s.metrics
                .plugin_call_seconds
                .get_or_create(&labels(&[("world", "router")]))
                .observe(report.duration.as_secs_f64());
            s.plugins.logs.append(&tenant.id, World::Router, version, report.logs);
            s.plugins.record_outcome(&tenant.id, &plugin.meta, report.result.as_ref().err(), now);
            let plugin_ref = PluginRef {
                world: World::Router.to_string(),
                version: version.clone(),
                wit_version: plugin.meta.wit_version.clone(),
                builtin: plugin.meta.builtin.clone(),
            };
            match report.result {
                Ok(d) => (d, DecisionOutcome::Decided, None, report.fuel_used, report.duration, Some(plugin_ref)),
                Err(failure) => {
                    let cause = failure.to_string();
                    tracing::warn!(%cause, "router failed; falling back to the human queue");
                    s.metrics
                        .plugin_failures
                        .get_or_create(&labels(&[
                            ("tenant", &tenant.id),
                            ("world", "router"),
                            ("version", &version[..12]),
                            ("kind", failure.kind()),
                        ]))
                        .inc();
                    s.metrics.fallbacks.get_or_create(&labels(&[("world", "router"), ("cause", failure.kind())])).inc();
                    (
                        RoutingDecision::fallback(&cause),
                        DecisionOutcome::Fallback,
                        Some(cause),
                        report.fuel_used,
                        report.duration,
                        Some(plugin_ref),
                    )
                }
            }
        }
        None => {
            let cause = "no router plugin is active".to_string();
            (RoutingDecision::fallback(&cause), DecisionOutcome::Fallback, Some(cause), 0, Duration::ZERO, None)
        }
    };
    let outcome_label = match outcome {
        DecisionOutcome::Decided => "decided",
        DecisionOutcome::Fallback => "fallback",
    };
    s.metrics.decisions.get_or_create(&labels(&[("world", "router"), ("outcome", outcome_label)])).inc();

    // Act
    let acts = act::apply(&decision, &mut conversation, &contact, &context.window, now);
    let decision_id = new_id("dc");
    conversation.last_decision_id = Some(decision_id.clone());
    let mut batch = Batch::new();
    // The inbound message takes its place in the log before the replies.
    s.crm.put_message(&mut batch, &tenant.id, &mut message)?;
    for reply in &acts.sends {
        let mut out = Message {
            id: new_id("msg"),
            conversation_id: conversation.id.clone(),
            contact_id: contact.id.clone(),
            direction: Direction::Outbound,
            author: Author::Bot,
            kind: match reply {
                crate::model::Reply::Text { .. } => MessageKind::Text,
                crate::model::Reply::Template(_) => MessageKind::Template,
            },
            text: Some(reply.preview()),
            content: serde_json::to_value(reply).unwrap_or_default(),
            at: now,
            reply_to: Some(message.id.clone()),
            wamid: None,
            status: Some(crate::model::DeliveryStatus::Pending),
            status_history: Vec::new(),
            errors: Vec::new(),
            decision_id: Some(decision_id.clone()),
            log_seq: 0,
        };
        contact.record_outbound(now);
        conversation.record_outbound(now);
        s.outbox.enqueue(
            &mut batch,
            &SendJob {
                message_id: out.id.clone(),
                tenant: tenant.id.clone(),
                phone_number_id: m.phone_number_id.clone(),
                to: m.from.clone(),
                reply: reply.clone(),
                queued_at: now,
            },
        )?;
        s.crm.put_message(&mut batch, &tenant.id, &mut out)?;
    }
    let mut record = DecisionRecord {
        id: decision_id,
        conversation_id: conversation.id.clone(),
        message_id: message.id.clone(),
        made_at: now,
        plugin: plugin_ref,
        outcome,
        cause,
        decision,
        fuel_used: fuel,
        duration_us: duration.as_micros() as u64,
        latency_us: 0,
        actions: acts.notes,
    };
    s.crm.put_contact(&mut batch, &tenant.id, &contact, resolved.previous.as_ref())?;
    if let Some((ended, read)) = &thread.closed {
        s.crm.put_conversation(&mut batch, &tenant.id, ended, Some(read))?;
    }
    s.crm.put_conversation(&mut batch, &tenant.id, &conversation, thread.previous.as_ref())?;
    record.latency_us = (crate::clock::wall_micros() - m.receipt_us).max(0) as u64;
    s.crm.put_decision(&mut batch, &tenant.id, &record)?;
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
