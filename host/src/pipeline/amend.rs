//! Messages about other messages, or about their sender: an `edit` or a
//! `revoke` changes the message it names, and a reaction is recorded on
//! it; a `system` message saying the user changed number or BSUID moves
//! the contact to the new id; an echo is the business's own reply, sent
//! from the WhatsApp Business app, and its history the app's past chats;
//! a call is logged. Except a reaction with an emoji, none is a new
//! message from the person, so nothing is routed or planned.

use serde_json::json;

use super::inbound::Work;
use super::{Pipeline, PipelineError};
use crate::control::{Actor, AuditAction, AuditEntry};
use crate::crm::{Author, IdentityKind};
use crate::ingest::InboundMessage;
use crate::model::{DeliveryStatus, Direction, MessageKind};

/// The staff name of replies sent from the WhatsApp Business app.
pub const BUSINESS_APP: &str = "whatsapp_business_app";
/// The staff name of calls the business placed.
pub const BUSINESS_CALL: &str = "business_call";

/// Gives a past message kept from the `history` field the media id Meta
/// sent for it later (see [`InboundMessage::completes_history_media`]).
/// `false` when the message itself is not kept yet (the chunks came out
/// of order): it is then recorded as any past message, media and all.
pub(super) fn complete_media(p: &Pipeline, seq: u64, m: &InboundMessage) -> Result<bool, PipelineError> {
    let crm = &p.stages.crm;
    let Some(mut kept) = crm.message(&m.tenant, &m.wamid)? else { return Ok(false) };
    let mut batch = crate::store::Batch::new();
    if kept.content.get("id").is_none() {
        kept.content = m.content.clone();
        let now = p.stages.clock.now_ms();
        crm.amend_message(&mut batch, &m.tenant, &mut kept, now)?;
        p.stages.media.expect(&mut batch, &m.tenant, &kept, now)?;
    }
    p.commit(&m.tenant, seq, batch)?;
    Ok(true)
}

/// What a `system` message says changed.
pub(super) enum IdentityChange {
    /// `user_changed_number`: the new `wa_id`, and the new BSUID if given.
    Number { wa_id: String, user_id: Option<String> },
    /// `user_changed_user_id`: the new BSUID.
    UserId { user_id: String },
}

/// The identity change a message announces, if it is one.
pub(super) fn identity_change(m: &InboundMessage) -> Option<IdentityChange> {
    if m.kind != MessageKind::System {
        return None;
    }
    let field = |name: &str| m.content.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(String::from);
    let user_id = field("user_id").filter(|u| crate::bsuid::is_bsuid(u));
    match field("type")?.as_str() {
        // `new_wa_id` is the field's name in older Graph API versions.
        "user_changed_number" => {
            Some(IdentityChange::Number { wa_id: field("wa_id").or(field("new_wa_id"))?, user_id })
        }
        "user_changed_user_id" => Some(IdentityChange::UserId { user_id: user_id? }),
        _ => None,
    }
}

impl Work<'_> {
    /// An edit or a revoke changes the message it names, which keeps what
    /// it said. One naming a message we do not have (or another sender's)
    /// is kept in the conversation as it came, still unrouted.
    pub(super) fn amend(mut self, seq: u64) -> Result<(), PipelineError> {
        let (s, tenant) = (&self.p.stages, self.tenant.id.clone());
        let original = match &self.m.reply_to {
            Some(id) => s.crm.message(&tenant, id)?,
            None => None,
        };
        match original.filter(|o| o.contact_id == self.contact.id && o.direction == Direction::Inbound) {
            Some(mut original) => {
                if self.m.kind == MessageKind::Edit {
                    let content = crate::ingest::payload::edited_content(&self.m.content);
                    original.edit(self.m.text.clone(), content, self.m.at);
                } else {
                    original.revoked_at = Some(self.m.at);
                }
                s.crm.amend_message(&mut self.batch, &tenant, &mut original, self.now)?;
            }
            None => {
                tracing::warn!(
                    kind = self.m.kind.as_str(),
                    "an edit or revoke of a message we do not have; kept as it came"
                );
                self.keep_unrouted()?;
            }
        }
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(())
    }

    /// The contact moves to its new phone or BSUID; the old one stays in
    /// its identity history, and the system message in the conversation.
    /// If another contact already holds the new id, nothing moves (the two
    /// are then a duplicate suggestion for staff) and the audit says so.
    pub(super) fn change_identity(mut self, seq: u64, change: IdentityChange) -> Result<(), PipelineError> {
        let s = &self.p.stages;
        let (at, tenant) = (self.m.at, self.tenant.id.clone());
        let (kind, cause) = match &change {
            IdentityChange::Number { .. } => (IdentityKind::Phone, "user_changed_number"),
            IdentityChange::UserId { .. } => (IdentityKind::UserId, "user_changed_user_id"),
        };
        let (phone, user_id) = match change {
            IdentityChange::Number { wa_id, user_id } => (crate::phone::normalize_wa_id(&wa_id).ok(), user_id),
            IdentityChange::UserId { user_id } => (None, Some(user_id)),
        };
        let phone_holder = match &phone {
            Some(p) => s.crm.contact_by_phone(&tenant, &p.e164)?,
            None => None,
        };
        let user_holder = match &user_id {
            Some(u) => s.crm.contact_by_user_id(&tenant, u)?,
            None => None,
        };
        let held = [phone_holder, user_holder].into_iter().flatten().find(|h| h.id != self.contact.id);
        let text = match &held {
            Some(other) => format!("{cause}, but contact {} already holds the new id: nothing moved", other.id),
            None if kind == IdentityKind::Phone && phone.is_none() => {
                format!("{cause}, but the new number is not a phone number: nothing moved")
            }
            None => {
                if let Some(p) = &phone {
                    self.contact.set_identity(IdentityKind::Phone, Some(p.e164.clone()), at, cause);
                    self.contact.wa_id = Some(p.e164.trim_start_matches('+').to_string());
                }
                if user_id.is_some() {
                    self.contact.set_identity(IdentityKind::UserId, user_id.clone(), at, cause);
                }
                format!("{cause}: {kind:?} moved")
            }
        };
        let details = json!({ "phone": phone.map(|p| p.e164), "user_id": user_id });
        self.audit(AuditEntry::new(self.now, Actor::Host, AuditAction::IdentityChanged, text).with(details))?;
        self.keep_unrouted()?;
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(())
    }

    /// A reaction is recorded on the message it reacts to (the business's
    /// or the contact's own). Returns whether it is one to route: a
    /// reaction with an emoji is also a message from the person; one
    /// without (they took their reaction back) is not.
    pub(super) fn react(&mut self) -> Result<bool, PipelineError> {
        let (s, tenant) = (&self.p.stages, self.tenant.id.clone());
        let emoji = self.m.text.clone().filter(|e| !e.is_empty());
        let original = match &self.m.reply_to {
            Some(id) => s.crm.message(&tenant, id)?,
            None => None,
        };
        if let Some(mut original) = original.filter(|o| o.contact_id == self.contact.id) {
            let (at, message_id) = (self.m.at, self.m.wamid.clone());
            original.reaction = emoji.clone().map(|emoji| crate::crm::Reaction { emoji, at, message_id });
            s.crm.amend_message(&mut self.batch, &tenant, &mut original, self.now)?;
        }
        Ok(emoji.is_some())
    }

    /// A reaction taken back: the message it named no longer carries it
    /// ([`react`](Self::react)); the removal is kept in the conversation,
    /// unrouted.
    pub(super) fn unreact(mut self, seq: u64) -> Result<(), PipelineError> {
        self.keep_unrouted()?;
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(())
    }

    /// A message the business sent from the WhatsApp Business app joins
    /// the conversation as a person's reply (staff
    /// [`BUSINESS_APP`]), already sent: the conversation no longer waits
    /// for one, and nothing is routed or sent.
    pub(super) fn record_echo(mut self, seq: u64) -> Result<(), PipelineError> {
        self.sent_from_app(DeliveryStatus::Sent);
        self.contact.record_outbound(self.m.at);
        self.conversation.record_outbound(self.m.at);
        self.conversation.needs_reply = false;
        self.conversation.respond_by = None;
        self.keep_unrouted()?;
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(())
    }

    /// A past message from the WhatsApp Business app's history joins the
    /// person's conversation as it was: the business's own as a reply from
    /// the app, with the status it reached, the person's as theirs. It
    /// is history: nothing is answered, and what is pending (a follow-up,
    /// a deadline, the count of unanswered follow-ups) stays as it was.
    pub(super) fn record_past(mut self, seq: u64) -> Result<(), PipelineError> {
        let at = self.m.at;
        if self.m.echo {
            let status = self.m.history.as_ref().and_then(|h| h.status);
            self.sent_from_app(status.unwrap_or(DeliveryStatus::Sent));
            self.contact.record_outbound(at);
            self.conversation.record_outbound(at);
        } else {
            let unanswered = self.conversation.unanswered_follow_ups;
            self.contact.record_inbound(at);
            self.conversation.record_inbound(at);
            self.conversation.unanswered_follow_ups = unanswered;
        }
        self.keep_unrouted()?;
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(())
    }

    /// The message as one the business sent from the WhatsApp Business app.
    fn sent_from_app(&mut self, status: DeliveryStatus) {
        let m = &mut self.message;
        m.direction = Direction::Outbound;
        m.author = Author::Human { staff: BUSINESS_APP.into() };
        m.wamid = Some(self.m.wamid.clone());
        m.status = Some(status);
    }

    /// A call's start or end is logged in the person's conversation; it is
    /// not a message to answer, so nothing is routed or counted.
    pub(super) fn log_call(mut self, seq: u64) -> Result<(), PipelineError> {
        if self.m.content.get("direction").and_then(|d| d.as_str()) == Some("BUSINESS_INITIATED") {
            self.message.direction = Direction::Outbound;
            self.message.author = Author::Human { staff: BUSINESS_CALL.into() };
        }
        self.keep_unrouted()?;
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(())
    }

    /// A marketing stop or resume the person told WhatsApp, on the contact
    /// (audited), and in their conversation; not routed.
    pub(super) fn record_preference(mut self, seq: u64) -> Result<(), PipelineError> {
        let pref = |k: &str| self.m.content.get(k).and_then(|v| v.as_str()).map(str::to_string);
        if pref("category").as_deref() == Some("marketing_messages") {
            let (stopped, action) = match pref("value").as_deref() {
                Some("stop") => (Some(self.m.at), AuditAction::MarketingStopped),
                _ => (None, AuditAction::MarketingResumed),
            };
            self.contact.marketing_stopped_at = stopped;
            let why = pref("detail").unwrap_or_else(|| "the contact changed their marketing preference".into());
            self.audit(AuditEntry::new(self.now, Actor::Host, action, why))?;
        }
        self.keep_unrouted()?;
        self.p.commit(&self.m.tenant, seq, self.batch)?;
        Ok(())
    }

    /// The message in its conversation, with the contact and conversation
    /// as resolved, and no decision.
    fn keep_unrouted(&mut self) -> Result<(), PipelineError> {
        let (s, tenant) = (&self.p.stages, &self.tenant.id);
        s.crm.put_message(&mut self.batch, tenant, &mut self.message)?;
        s.media.expect(&mut self.batch, tenant, &self.message, self.now)?;
        s.crm.put_contact(&mut self.batch, tenant, &mut self.contact, self.resolved.previous.as_ref())?;
        if let Some((ended, read)) = &mut self.thread.closed {
            s.crm.put_conversation(&mut self.batch, tenant, ended, Some(read))?;
        }
        let previous = self.thread.previous.as_ref();
        s.crm.put_conversation(&mut self.batch, tenant, &mut self.conversation, previous)?;
        Ok(())
    }
}
