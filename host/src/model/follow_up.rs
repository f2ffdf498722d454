//! Follow-up plans: what the `follow-up` world returns, as the host keeps it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Assignee, DeliveryStatus, Priority, Template};
use crate::clock::Millis;
use crate::context::Context;
use crate::crm::Message;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FollowUpAction {
    /// Free-form text; sent only inside the 24-hour window.
    SendText {
        body: String,
    },
    /// An approved template; allowed outside the window.
    SendTemplate {
        template: Template,
    },
    /// Remind the conversation's assignee.
    NotifyAssignee {
        note: String,
    },
    CloseConversation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduledFollowUp {
    pub at: Millis,
    pub action: FollowUpAction,
    /// Unanswered follow-ups in this conversation, counting this one.
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlanKind {
    Nothing,
    CancelPending,
    Schedule { follow_up: ScheduledFollowUp },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FollowUpPlan {
    pub kind: PlanKind,
    pub reason: String,
}

impl FollowUpPlan {
    /// The safe fallback for a failed follow-up call: schedule nothing.
    pub fn fallback(cause: &str) -> FollowUpPlan {
        FollowUpPlan { kind: PlanKind::Nothing, reason: format!("fallback, nothing scheduled: {cause}") }
    }
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
