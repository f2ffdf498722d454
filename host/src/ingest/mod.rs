//! Ingest: turn Meta's webhook requests into durable, de-duplicated events.
//!
//! The order is fixed by what Meta requires and what we promise: verify the
//! signature over the raw bytes (before trusting anything), parse every
//! documented message and status shape into [`InboundMessage`] and
//! [`StatusUpdate`], and hand them to the pipeline's journal, which stores
//! them durably before the webhook is answered.

pub mod payload;
pub mod quarantine;
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
    /// The sender's `wa_id` (digits, no `+`).
    pub from: String,
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
    /// The contact's `wa_id`.
    pub recipient: String,
    pub errors: Vec<WhatsAppError>,
    /// `biz_opaque_callback_data`: the host's id of the message, which it
    /// sent with the message and Meta echoes back.
    #[serde(default)]
    pub callback_data: Option<String>,
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
