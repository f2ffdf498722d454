//! Delivery statuses (from Meta) and send results (from our worker): both
//! move an outbound message forward, never back.

use super::{Pipeline, PipelineError, followup};
use crate::control::{Actor, AuditAction, AuditEntry};
use crate::crm::{Message, PendingStatus};
use crate::ingest::StatusUpdate;
use crate::metrics::labels;
use crate::model::{DeliveryStatus, Direction};
use crate::outbound::{SendOutcome, SendResult};
use crate::plugins::Trigger;
use crate::store::Batch;

pub(super) fn handle_status(p: &Pipeline, seq: u64, s: &StatusUpdate) -> Result<(), PipelineError> {
    let crm = &p.stages.crm;
    let mut batch = Batch::new();
    match outbound_message(p, s)? {
        Found::Outbound(mut message) => {
            let applied = message.apply_status(s.status, s.at, &s.errors);
            tracing::debug!(wamid = %s.wamid, status = s.status.as_str(), applied, "status");
            crm.put_message(&mut batch, &s.tenant, &mut message)?;
            if applied {
                let trigger = Trigger::StatusChanged { message_id: message.id.clone(), status: s.status };
                followup::after(p, &s.tenant, &message.conversation_id, trigger, &mut batch)?;
            }
        }
        Found::Inbound => {
            // Statuses are for what the business sent; one naming a message
            // the contact sent changes nothing.
            tracing::warn!(wamid = %s.wamid, status = s.status.as_str(), "a status names an inbound message; ignored");
        }
        Found::Nothing => {
            // The send response (which tells us this wamid) has not been
            // recorded yet, or the message was sent outside Switchboard.
            let pending = PendingStatus { status: s.status, at: s.at, errors: s.errors.clone() };
            crm.put_pending_status(&mut batch, &s.tenant, &s.wamid, &pending)?;
        }
    }
    p.commit(&s.tenant, seq, batch)?;
    p.stages
        .metrics
        .event_seconds
        .get_or_create(&labels::Event { kind: "status" })
        .observe(((p.stages.clock.now_ms() - s.received_at).max(0) as f64) / 1000.0);
    Ok(())
}

enum Found {
    Outbound(Box<Message>),
    Inbound,
    Nothing,
}

/// The message a status is about: by its `wamid`, or — for a send whose
/// response never reached us (a crash left it `unknown`) — by the id we
/// put in `biz_opaque_callback_data`, which Meta echoes in statuses.
fn outbound_message(p: &Pipeline, s: &StatusUpdate) -> Result<Found, PipelineError> {
    let crm = &p.stages.crm;
    if let Some(message) = crm.message(&s.tenant, &s.wamid)? {
        return Ok(match message.direction {
            Direction::Outbound => Found::Outbound(Box::new(message)),
            Direction::Inbound => Found::Inbound,
        });
    }
    let Some(id) = &s.callback_data else { return Ok(Found::Nothing) };
    match crm.message(&s.tenant, id)? {
        Some(mut message) if message.direction == Direction::Outbound && message.wamid.is_none() => {
            message.wamid = Some(s.wamid.clone());
            Ok(Found::Outbound(Box::new(message)))
        }
        _ => Ok(Found::Nothing),
    }
}

pub(super) fn handle_send_result(p: &Pipeline, seq: u64, r: &SendResult) -> Result<(), PipelineError> {
    let crm = &p.stages.crm;
    let mut batch = Batch::new();
    let Some(mut message) = crm.message(&r.tenant, &r.message_id)? else {
        tracing::warn!(message = %r.message_id, "send result for an unknown message; dropped");
        return p.commit(&r.tenant, seq, batch);
    };
    match &r.outcome {
        SendOutcome::Sent { wamid } => {
            message.wamid = Some(wamid.clone());
            message.apply_status(DeliveryStatus::Sent, r.at, &[]);
            for pending in crm.take_pending_statuses(&mut batch, &r.tenant, wamid)? {
                message.apply_status(pending.status, pending.at, &pending.errors);
            }
        }
        SendOutcome::DryRun => {
            message.apply_status(DeliveryStatus::DryRun, r.at, &[]);
        }
        SendOutcome::Failed { errors, .. } => {
            message.apply_status(DeliveryStatus::Failed, r.at, errors);
        }
        SendOutcome::Unknown { started_at } => {
            message.apply_status(DeliveryStatus::Unknown, r.at, &[]);
            let entry = AuditEntry::new(
                r.at,
                Actor::Host,
                AuditAction::SendOutcomeUnknown,
                "the host stopped while sending this message; WhatsApp may or may not have it, and it was not sent again",
            )
            .about(Some(&message.conversation_id), Some(&message.contact_id))
            .with(serde_json::json!({ "message": message.id, "send_started_at": started_at }));
            p.stages.control.audit.record(&mut batch, &r.tenant, &entry)?;
        }
    }
    crm.put_message(&mut batch, &r.tenant, &mut message)?;
    if matches!(r.outcome, SendOutcome::Sent { .. } | SendOutcome::DryRun) {
        let trigger = Trigger::Outbound { message: message.clone() };
        followup::after(p, &r.tenant, &message.conversation_id, trigger, &mut batch)?;
    }
    p.commit(&r.tenant, seq, batch)
}
