//! The audit log: every human action and every automated action the host
//! took or suppressed, with actor, time and reason. Append-only: entries are
//! written in the same commit as the change they describe and never edited.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::model::new_id;
use crate::store::{Batch, Result, Store, Tree, keys};
use crate::sync::EventKind;

const ENTRIES: Tree = Tree("audit.entries");
const BY_CONVERSATION: Tree = Tree("audit.by_conversation");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A member of the tenant's staff.
    Staff { id: String },
    /// A plugin's decision, carried out by the host.
    Plugin { world: String, version: String },
    /// The host itself (rules it enforces, timers, opt-outs).
    Host,
}

/// What an audit entry records. Stored and served as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    // Staff
    Takeover,
    Release,
    HumanReply,
    RoutingOverridden,
    ConversationResolved,
    AutomationPaused,
    AutomationResumed,
    // The contact, through keywords
    OptedOut,
    OptedIn,
    /// WhatsApp said the contact changed phone number or BSUID.
    IdentityChanged,
    /// Meta reported a change to a business number's quality, limit, name
    /// or account standing.
    NumberHealthChanged,
    /// The contact told WhatsApp to stop, or resume, marketing messages.
    MarketingStopped,
    MarketingResumed,
    // Automation carried out or stopped by the host
    BotReply,
    AutomationSuppressed,
    SendOutcomeUnknown,
    FollowUpScheduled,
    FollowUpCancelled,
    FollowUpDeferred,
    FollowUpSuppressed,
    FollowUpSent,
    AssigneeNotified,
    SignalsUpdated,
    /// An action this host does not know (written by a newer one): the
    /// entry is still shown, never dropped.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: Millis,
    pub actor: Actor,
    pub action: AuditAction,
    pub conversation_id: Option<String>,
    pub contact_id: Option<String>,
    /// Why, in words.
    pub reason: String,
    #[schema(value_type = serde_json::Value)]
    pub details: serde_json::Value,
}

impl AuditEntry {
    pub fn new(at: Millis, actor: Actor, action: AuditAction, reason: impl Into<String>) -> AuditEntry {
        AuditEntry {
            id: new_id("au"),
            at,
            actor,
            action,
            conversation_id: None,
            contact_id: None,
            reason: reason.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn about(mut self, conversation: Option<&str>, contact: Option<&str>) -> Self {
        self.conversation_id = conversation.map(String::from);
        self.contact_id = contact.map(String::from);
        self
    }

    pub fn with(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

#[derive(Clone)]
pub struct Audit {
    store: Store,
    sync: crate::sync::Outbox,
}

impl Audit {
    pub fn new(store: Store, sync: crate::sync::Outbox) -> Self {
        Audit { store, sync }
    }

    /// Adds `entry` to `batch`: it lands with the change it describes (and,
    /// for follow-ups and staff actions, with its CRM event).
    pub fn record(&self, batch: &mut Batch, tenant: &str, entry: &AuditEntry) -> Result<()> {
        let kind = match (&entry.actor, entry.action) {
            (_, AuditAction::FollowUpSent) => Some(EventKind::FollowUpSent),
            (_, AuditAction::FollowUpSuppressed) => Some(EventKind::FollowUpSuppressed),
            (Actor::Staff { .. }, _) => Some(EventKind::HumanAction),
            _ => None,
        };
        if let Some(kind) = kind {
            self.sync.emit(batch, tenant, entry.contact_id.as_deref().unwrap_or(""), kind, entry.at, entry)?;
        }
        let key = keys::join(&[tenant.as_bytes(), &keys::ts(entry.at), entry.id.as_bytes()]);
        if let Some(c) = &entry.conversation_id {
            let idx = keys::join(&[tenant.as_bytes(), c.as_bytes(), &keys::ts(entry.at), entry.id.as_bytes()]);
            batch.put(BY_CONVERSATION, idx, key.clone());
        }
        batch.put_json(ENTRIES, key, entry)
    }

    /// The tenant's latest entries, newest first.
    pub fn recent(&self, tenant: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        self.store.scan_prefix(ENTRIES, &keys::tenant_prefix(tenant))?.values().rev().take(limit).collect()
    }

    /// One conversation's entries, oldest first.
    pub fn of_conversation(&self, tenant: &str, conversation: &str) -> Result<Vec<AuditEntry>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), conversation.as_bytes()]);
        let mut out = Vec::new();
        for entry in self.store.scan_prefix(BY_CONVERSATION, &prefix)? {
            let (_, key) = entry?;
            out.extend(self.store.get_json::<AuditEntry>(ENTRIES, &key)?);
        }
        Ok(out)
    }
}
