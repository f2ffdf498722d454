//! Human control: what staff can do to automation, and the rules the host
//! enforces over every plugin.
//!
//! Humans always win. A takeover, a pause (of a conversation, a contact or
//! the whole tenant, optionally until a time) or an opt-out stops automated
//! messages at once, whatever a plugin decided; every such stop, and every
//! human action, is written to the append-only [`audit`] log in the same
//! commit as the change itself.

pub mod audit;
mod initiate;
pub mod optout;
mod read;
pub mod staff;
pub mod storm;

pub use crate::model::Pause;
pub use audit::{Actor, Audit, AuditAction, AuditEntry};

use crate::clock::Millis;
use crate::crm::{Contact, Conversation};
use crate::model::{Template, TemplateCategory};
use crate::store::{Batch, Result, Store, Tree};

const TENANT_PAUSE: Tree = Tree("control.tenant_pause");

/// Why automation may not act on a conversation right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    OptedOut,
    TakenOver(String),
    ConversationPaused,
    ContactPaused,
    TenantPaused,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::OptedOut => f.write_str("the contact opted out of automated messages"),
            Blocked::TakenOver(staff) => write!(f, "{staff} has taken over the conversation"),
            Blocked::ConversationPaused => f.write_str("automation is paused for this conversation"),
            Blocked::ContactPaused => f.write_str("automation is paused for this contact"),
            Blocked::TenantPaused => f.write_str("automation is paused for the whole tenant"),
        }
    }
}

/// The host's verdict, whatever any plugin says: may automation send to
/// this contact in this conversation now?
pub fn automation_blocked(
    tenant_pause: Option<&Pause>,
    contact: &Contact,
    conversation: &Conversation,
    now: Millis,
) -> Option<Blocked> {
    if contact.opted_out {
        return Some(Blocked::OptedOut);
    }
    if let Some(t) = &conversation.takeover {
        return Some(Blocked::TakenOver(t.staff.clone()));
    }
    if conversation.paused.as_ref().is_some_and(|p| p.active(now)) {
        return Some(Blocked::ConversationPaused);
    }
    if contact.paused.as_ref().is_some_and(|p| p.active(now)) {
        return Some(Blocked::ContactPaused);
    }
    if tenant_pause.is_some_and(|p| p.active(now)) {
        return Some(Blocked::TenantPaused);
    }
    None
}

/// A template WhatsApp will not deliver — to anyone (unknown, not
/// approved, its variables not filled) or to this contact, by its
/// category: the host refuses it before sending, whoever sends it (a
/// router's reply, a follow-up, a person), rather than queue a message
/// bound to fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Template(#[from] crate::templates::Unsendable),
    #[error(
        "the contact stopped marketing messages with WhatsApp: a marketing template is not sent (Meta refuses it with error 131050)"
    )]
    MarketingStopped,
    #[error(
        "an authentication template needs a phone number, and this contact is known only by its business-scoped user id (Meta refuses it with error 131062)"
    )]
    NeedsPhone,
}

/// `template` as it will go to `contact` (its category filled in from
/// the tenant's definition), or why it may not. A template whose category
/// is unknown is let through on that count: Meta has the last word.
pub fn template_refusal(
    book: &crate::templates::Book,
    template: &Template,
    contact: &Contact,
) -> Result<Template, Refusal> {
    let template = book.check(template)?;
    match template.category {
        Some(TemplateCategory::Marketing) if contact.marketing_stopped_at.is_some() => Err(Refusal::MarketingStopped),
        Some(TemplateCategory::Authentication) if contact.phone.is_none() => Err(Refusal::NeedsPhone),
        _ => Ok(template),
    }
}

/// Tenant-wide pauses. Conversation and contact pauses live on those records.
#[derive(Clone)]
pub struct Control {
    store: Store,
    pub audit: Audit,
}

impl Control {
    pub fn new(store: Store, sync: crate::sync::Outbox) -> Self {
        Control { audit: Audit::new(store.clone(), sync), store }
    }

    pub fn tenant_pause(&self, tenant: &str) -> Result<Option<Pause>> {
        self.store.get_json(TENANT_PAUSE, tenant.as_bytes())
    }

    pub fn set_tenant_pause(&self, batch: &mut Batch, tenant: &str, pause: Option<&Pause>) -> Result<()> {
        match pause {
            Some(p) => batch.put_json(TENANT_PAUSE, tenant.as_bytes(), p),
            None => {
                batch.delete(TENANT_PAUSE, tenant.as_bytes());
                Ok(())
            }
        }
    }
}

/// The inbox's order, most urgent first: higher priority, then the nearest
/// respond-by deadline (none: last), then whoever has waited longest.
pub fn by_urgency(a: &Conversation, b: &Conversation) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| a.respond_by.unwrap_or(i64::MAX).cmp(&b.respond_by.unwrap_or(i64::MAX)))
        .then_with(|| a.last_inbound_at.unwrap_or(i64::MAX).cmp(&b.last_inbound_at.unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Priority, Takeover};

    const NOW: Millis = 1_000_000;

    fn pause(until: Option<Millis>) -> Pause {
        Pause { by: "ana".into(), at: 0, until, reason: None }
    }

    #[test]
    fn humans_win_in_a_fixed_order_and_pauses_expire() {
        let (mut contact, mut conversation) = (Contact::default(), Conversation::default());
        assert_eq!(automation_blocked(None, &contact, &conversation, NOW), None);
        let tenant_pause = pause(None);
        assert_eq!(automation_blocked(Some(&tenant_pause), &contact, &conversation, NOW), Some(Blocked::TenantPaused));
        // A pause that ended no longer blocks.
        let ended = pause(Some(NOW));
        assert_eq!(automation_blocked(Some(&ended), &contact, &conversation, NOW), None);
        contact.paused = Some(pause(Some(NOW + 1)));
        assert_eq!(automation_blocked(None, &contact, &conversation, NOW), Some(Blocked::ContactPaused));
        conversation.paused = Some(pause(None));
        assert_eq!(automation_blocked(None, &contact, &conversation, NOW), Some(Blocked::ConversationPaused));
        conversation.takeover = Some(Takeover { staff: "marta".into(), at: 0 });
        assert_eq!(automation_blocked(None, &contact, &conversation, NOW), Some(Blocked::TakenOver("marta".into())));
        // An opt-out outranks everything: it is the contact's own word.
        contact.opted_out = true;
        assert_eq!(automation_blocked(None, &contact, &conversation, NOW), Some(Blocked::OptedOut));
    }

    #[test]
    fn the_inbox_puts_urgency_then_deadlines_then_waiting_first() {
        let c = |id: &str, priority, respond_by, waiting_since| Conversation {
            id: id.into(),
            priority,
            respond_by,
            last_inbound_at: waiting_since,
            ..Default::default()
        };
        let mut inbox = [
            c("no-deadline", Priority::Normal, None, Some(1)),
            c("later", Priority::Normal, Some(500), Some(1)),
            c("urgent", Priority::Urgent, None, None),
            c("sooner-waited-less", Priority::Normal, Some(100), Some(50)),
            c("sooner-waited-more", Priority::Normal, Some(100), Some(10)),
            c("low", Priority::Low, Some(1), Some(1)),
        ];
        inbox.sort_by(by_urgency);
        let order: Vec<&str> = inbox.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(order, ["urgent", "sooner-waited-more", "sooner-waited-less", "later", "no-deadline", "low"]);
    }
}
