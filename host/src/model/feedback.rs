//! Feedback: the measures of a closed exchange, and the signals a
//! `feedback` plugin derives from them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    ContactReplied,
    FollowUpUnanswered,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Interaction {
    pub conversation_id: String,
    pub closed_by: CloseReason,
    pub started_at: Millis,
    pub ended_at: Millis,
    pub first_response_ms: Option<u64>,
    pub contact_reply_latency_ms: Option<u64>,
    pub turns: u32,
    pub inbound_messages: u32,
    pub outbound_messages: u32,
    pub mean_inbound_length: u32,
    pub follow_ups_sent: u32,
    pub follow_up_answered: bool,
    pub clarifying_questions: u32,
    /// Local hours (0…23) in which the contact wrote.
    pub active_hours: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignalUpdate {
    pub name: String,
    pub value: f64,
}
