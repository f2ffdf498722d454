//! Follow-up plans: what the `follow-up` world returns, as the host keeps it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Template;
use crate::clock::Millis;

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
