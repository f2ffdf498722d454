//! Ingest: turn Meta's webhook requests into durable, de-duplicated events.
//!
//! The order is fixed by what Meta requires and what we promise: verify the
//! signature over the raw bytes (before trusting anything), parse every
//! documented message and status shape into [`InboundMessage`] and
//! [`StatusUpdate`], and hand them to the pipeline's journal, which stores
//! them durably before the webhook is answered.

pub mod fields;
mod history;
pub mod payload;
pub mod quarantine;
pub mod raw;
pub mod signature;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
pub use crate::model::WhatsAppError;
use crate::model::{DeliveryStatus, Forwarded, MessageKind};

/// One inbound WhatsApp message, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub tenant: String,
    pub phone_number_id: String,
    pub wamid: String,
    /// The sender's `wa_id` (digits, no `+`). Absent when Meta omits the
    /// phone number: a user with a username the business has not talked
    /// to by phone lately is known only by their BSUID.
    pub from: Option<String>,
    /// The sender's business-scoped user id (`from_user_id`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The sender's WhatsApp username, if they adopted one.
    #[serde(default)]
    pub username: Option<String>,
    /// The WhatsApp profile name from the same change, if given.
    pub profile_name: Option<String>,
    /// WhatsApp's timestamp of the message.
    pub at: Millis,
    pub received_at: Millis,
    /// Wall-clock µs at receipt, to measure how long routing took.
    #[serde(default)]
    pub receipt_us: i64,
    pub kind: MessageKind,
    /// What a person would read: body, caption, title, emoji…
    pub text: Option<String>,
    /// The type-specific object exactly as Meta sent it.
    pub content: serde_json::Value,
    /// `context.id`: the message this one answers (or reacts to).
    pub reply_to: Option<String>,
    /// Click-to-WhatsApp ad referral, if any.
    pub referral: Option<serde_json::Value>,
    #[serde(default)]
    pub forwarded: Forwarded,
    /// Sent by the business itself from the WhatsApp Business app
    /// (`smb_message_echoes`): `from` and `user_id` name its recipient.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub echo: bool,
    /// A past message of the WhatsApp Business app, sent once after the
    /// number joined the Cloud API (the `history` field): kept in the
    /// conversation, never answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Synced>,
    /// The item as Meta sent it, on its way to [`raw`]; not journaled.
    #[serde(skip)]
    pub raw: Option<raw::RawJson>,
}

/// What Meta's `history` field says of a past message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Synced {
    /// `history_context.status`, for the business's own messages: how far
    /// they got (`delivered`, `read`…), when it is one we know.
    pub status: Option<DeliveryStatus>,
}

/// A delivery status for a message the tenant sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub tenant: String,
    pub phone_number_id: String,
    /// The `wamid` of the outbound message.
    pub wamid: String,
    pub status: DeliveryStatus,
    pub at: Millis,
    pub received_at: Millis,
    /// The contact's `wa_id` (absent for a user known only by BSUID).
    pub recipient: Option<String>,
    /// The contact's business-scoped user id (`recipient_user_id`).
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    pub errors: Vec<WhatsAppError>,
    /// `biz_opaque_callback_data`: the host's id of the message, which it
    /// sent with the message and Meta echoes back.
    #[serde(default)]
    pub callback_data: Option<String>,
    /// The item as Meta sent it, on its way to [`raw`]; not journaled.
    #[serde(skip)]
    pub raw: Option<raw::RawJson>,
}

impl InboundMessage {
    /// A `history` message that names its media: Meta sends the app's past
    /// media messages first without their media ids, then again, with
    /// them, for the last 14 days. The second copy completes the first
    /// instead of being a duplicate of it.
    pub fn completes_history_media(&self) -> bool {
        self.history.is_some() && self.content.get("id").is_some_and(|id| id.is_string())
    }

    /// The sender's lane, as [`Contact::lane`](crate::crm::Contact::lane):
    /// the BSUID when Meta gave one, else the phone number. A `system`
    /// message moving the person to a new id takes the new id's lane, so
    /// it is applied before the messages that come from the new id.
    pub fn lane(&self) -> &str {
        let new_id = |field: &str| self.content.get(field).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        let moved = match self.content.get("type").and_then(|t| t.as_str()) {
            Some("user_changed_number" | "user_changed_user_id") if self.kind == MessageKind::System => {
                new_id("user_id").or_else(|| new_id("wa_id"))
            }
            _ => None,
        };
        moved.or(self.user_id.as_deref()).or(self.from.as_deref()).unwrap_or_default()
    }
}

impl StatusUpdate {
    /// As [`InboundMessage::lane`], for the recipient.
    pub fn lane(&self) -> &str {
        self.recipient_user_id.as_deref().or(self.recipient.as_deref()).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IngestError {
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the body is not a WhatsApp notification: {0}")]
    NotANotification(String),
    #[error("signature header X-Hub-Signature-256 is missing")]
    MissingSignature,
    #[error("signature does not match the body")]
    BadSignature,
}
