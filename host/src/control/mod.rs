//! Human control: what staff can do to automation, and the rules the host
//! enforces over every plugin.
//!
//! Humans always win. A takeover, a pause (of a conversation, a contact or
//! the whole tenant, optionally until a time) or an opt-out stops automated
//! messages at once, whatever a plugin decided; every such stop, and every
//! human action, is written to the append-only [`audit`] log in the same
//! commit as the change itself.

pub mod audit;
pub mod optout;
pub mod storm;

pub use audit::{Actor, Audit, AuditEntry};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::crm::{Contact, Conversation};
use crate::store::{Batch, Result, Store, Tree};

const TENANT_PAUSE: Tree = Tree("control.tenant_pause");

/// Automation stopped by a person, optionally until a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Pause {
    /// Staff member who paused.
    pub by: String,
    pub at: Millis,
    /// Resumes on its own at this time; `None` until resumed.
    pub until: Option<Millis>,
    pub reason: Option<String>,
}

impl Pause {
    pub fn active(&self, now: Millis) -> bool {
        self.until.is_none_or(|u| now < u)
    }
}

/// A staff member answering in person; automation stays off until release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Takeover {
    pub staff: String,
    pub at: Millis,
}

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
