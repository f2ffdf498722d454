//! What each world's plugin is given. These embed the records and the
//! context the host built, so they live with the plugins rather than in
//! `model`, which every stage (the CRM included) depends on.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::context::Context;
use crate::crm::{Contact, Message};
use crate::model::{Assignee, DeliveryStatus, Interaction, Priority, ScheduledFollowUp};

/// The input of a routing decision (also the JSON format of
/// `switchboard plugin run --world router --input FILE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RouterInput {
    pub context: Context,
    /// The inbound message being routed.
    pub message: Message,
}

/// What just happened in the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    Inbound { message: Message },
    Outbound { message: Message },
    StatusChanged { message_id: String, status: DeliveryStatus },
    Routed { needs_reply: bool, assignee: Option<Assignee>, priority: Priority, reason: String },
    TimerFired { follow_up: ScheduledFollowUp },
}

/// The input of a follow-up decision (also the JSON format of
/// `switchboard plugin run --world follow-up --input FILE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowUpInput {
    pub context: Context,
    pub trigger: Trigger,
    #[serde(default)]
    pub pending: Option<ScheduledFollowUp>,
    #[serde(default)]
    pub unanswered_attempts: u32,
}

/// The input of a feedback call (also the JSON format of
/// `switchboard plugin run --world feedback --input FILE`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedbackInput {
    pub now: Millis,
    pub contact: Contact,
    pub interaction: Interaction,
}
