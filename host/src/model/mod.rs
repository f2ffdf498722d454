//! The shared vocabulary of the stages: message kinds, delivery states,
//! assignees, routing decisions. Records that a stage owns live in that
//! stage (contacts and conversations in `crm`); these small value types
//! travel between all of them.

mod feedback;
mod follow_up;
mod human;
mod rich;
mod template;

pub use feedback::{CloseReason, Interaction, SignalUpdate};
pub use follow_up::{FollowUpAction, FollowUpPlan, PlanKind, ScheduledFollowUp};
pub use human::{Pause, Takeover};
pub use rich::{ListRow, ListSection, MediaKind, ReplyButton};
pub use template::{ButtonParameter, HeaderParameter, Parameter, Template, TemplateCategory, TypedParameter};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;

/// Prefixed, time-ordered ids (`ct_…`, `cv_…`): readable in logs, sortable
/// by creation in key scans.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Inbound,
    Outbound,
}

/// WhatsApp message types; `other` keeps types Meta adds later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    #[default]
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    Interactive,
    Button,
    Reaction,
    Order,
    System,
    Template,
    Unsupported,
    /// The sender changed an earlier message (`edit.original_message_id`).
    Edit,
    /// The sender deleted an earlier message for everyone.
    Revoke,
    /// The user opened the chat for the first time and asks for a welcome.
    RequestWelcome,
    /// A WhatsApp voice call began or ended (the `calls` webhook field).
    Call,
    /// The user changed a messaging preference with WhatsApp (the
    /// `user_preferences` field: marketing messages stopped or resumed).
    Preference,
    Other,
}

impl MessageKind {
    pub fn parse(s: &str) -> MessageKind {
        match s {
            "text" => MessageKind::Text,
            "image" => MessageKind::Image,
            "audio" | "voice" => MessageKind::Audio,
            "video" => MessageKind::Video,
            "document" => MessageKind::Document,
            "sticker" => MessageKind::Sticker,
            "location" => MessageKind::Location,
            "contacts" => MessageKind::Contacts,
            "interactive" => MessageKind::Interactive,
            "button" => MessageKind::Button,
            "reaction" => MessageKind::Reaction,
            "order" => MessageKind::Order,
            "system" => MessageKind::System,
            "template" => MessageKind::Template,
            "unsupported" | "unknown" => MessageKind::Unsupported,
            "edit" => MessageKind::Edit,
            "revoke" => MessageKind::Revoke,
            "request_welcome" => MessageKind::RequestWelcome,
            "call" => MessageKind::Call,
            "preference" => MessageKind::Preference,
            _ => MessageKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::Audio => "audio",
            MessageKind::Video => "video",
            MessageKind::Document => "document",
            MessageKind::Sticker => "sticker",
            MessageKind::Location => "location",
            MessageKind::Contacts => "contacts",
            MessageKind::Interactive => "interactive",
            MessageKind::Button => "button",
            MessageKind::Reaction => "reaction",
            MessageKind::Order => "order",
            MessageKind::System => "system",
            MessageKind::Template => "template",
            MessageKind::Unsupported => "unsupported",
            MessageKind::Edit => "edit",
            MessageKind::Revoke => "revoke",
            MessageKind::RequestWelcome => "request_welcome",
            MessageKind::Call => "call",
            MessageKind::Preference => "preference",
            MessageKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Forwarded {
    #[default]
    No,
    Forwarded,
    /// Forwarded through a chain of five or more chats.
    FrequentlyForwarded,
}

impl Forwarded {
    pub fn is_not(&self) -> bool {
        *self == Forwarded::No
    }
}

/// An error object from WhatsApp (in a failed status or a send response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhatsAppError {
    pub code: i64,
    pub title: String,
    pub details: Option<String>,
}

/// Delivery state of an outbound message. Ranked so that a status can only
/// move forward: a `delivered` arriving after `read` changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting in the host's send queue.
    Pending,
    /// The host crashed while sending it: Meta may or may not have it.
    /// Automated messages in this state are not sent again (a duplicate is
    /// worse than a gap); a status webhook that names it settles it.
    Unknown,
    /// Recorded without sending: the tenant has no WhatsApp credentials.
    DryRun,
    Sent,
    /// WhatsApp refused or could not deliver it.
    Failed,
    Delivered,
    Read,
    /// A voice message was played (so it was read too).
    Played,
    /// The user deleted the message. Recorded in the message's history;
    /// it is not a step of delivery, so it never becomes its status.
    Deleted,
    /// WhatsApp warns about the message (its errors say why). Recorded in
    /// the history, never the message's status.
    Warning,
}

impl DeliveryStatus {
    /// `failed` outranks `sent` (the send did not get through) but not
    /// `delivered`, `read` or `played`, which prove it did. `None`: not a
    /// step of delivery.
    fn rank(self) -> Option<u8> {
        Some(match self {
            DeliveryStatus::Pending => 0,
            DeliveryStatus::Unknown => 1,
            DeliveryStatus::DryRun => 2,
            DeliveryStatus::Sent => 2,
            DeliveryStatus::Failed => 3,
            DeliveryStatus::Delivered => 4,
            DeliveryStatus::Read => 5,
            DeliveryStatus::Played => 6,
            DeliveryStatus::Deleted | DeliveryStatus::Warning => return None,
        })
    }

    /// Whether this is a step of delivery (and can become a message's
    /// status), rather than an event recorded beside it.
    pub fn is_ordered(self) -> bool {
        self.rank().is_some()
    }

    /// Whether moving from `self` to `next` is progress.
    pub fn advances_to(self, next: DeliveryStatus) -> bool {
        matches!((self.rank(), next.rank()), (Some(now), Some(then)) if then > now)
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        Some(match s {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            "played" => DeliveryStatus::Played,
            "deleted" => DeliveryStatus::Deleted,
            "warning" => DeliveryStatus::Warning,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Unknown => "unknown",
            DeliveryStatus::DryRun => "dry_run",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Played => "played",
            DeliveryStatus::Deleted => "deleted",
            DeliveryStatus::Warning => "warning",
        }
    }
}

/// Who a conversation is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Assignee {
    Agent(String),
    Team(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

/// What goes out to the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Text {
        body: String,
    },
    Template(Template),
    /// A file: Meta's media id (uploaded to the number) or a public link.
    Media {
        kind: MediaKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
        /// Images, videos and documents only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// The name a document is shown with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    /// Up to three reply buttons.
    Buttons {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    /// A menu of up to ten rows, opened by a button.
    List {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        /// The label of the button that opens the list.
        button: String,
        sections: Vec<ListSection>,
    },
    /// A button that opens a URL.
    CtaUrl {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        display_text: String,
        url: String,
    },
    /// Asks the contact to share their location.
    LocationRequest {
        body: String,
    },
    /// An emoji on one of the contact's messages (`""` removes it).
    Reaction {
        message_id: String,
        emoji: String,
    },
}

impl Reply {
    /// Text a person would read in the conversation log.
    pub fn preview(&self) -> String {
        match self {
            Reply::Text { body } => body.clone(),
            Reply::Template(t) => format!("[template {}] {}", t.name, t.parameter_texts().join(" | ")),
            Reply::Media { kind, caption, filename, .. } => {
                let about = caption.as_deref().or(filename.as_deref()).unwrap_or_default();
                format!("[{}] {about}", kind.as_str()).trim_end().to_string()
            }
            Reply::Buttons { body, buttons, .. } => {
                let titles: Vec<&str> = buttons.iter().map(|b| b.title.as_str()).collect();
                format!("{body} [{}]", titles.join(" | "))
            }
            Reply::List { body, button, .. } => format!("{body} [{button}]"),
            Reply::CtaUrl { body, display_text, url, .. } => format!("{body} [{display_text}: {url}]"),
            Reply::LocationRequest { body } => format!("{body} [send location]"),
            Reply::Reaction { emoji, .. } => format!("[reaction] {emoji}"),
        }
    }

    /// What kind of message it is in the log.
    pub fn kind(&self) -> MessageKind {
        match self {
            Reply::Text { .. } => MessageKind::Text,
            Reply::Template(_) => MessageKind::Template,
            Reply::Media { kind, .. } => match kind {
                MediaKind::Image => MessageKind::Image,
                MediaKind::Audio => MessageKind::Audio,
                MediaKind::Video => MessageKind::Video,
                MediaKind::Document => MessageKind::Document,
                MediaKind::Sticker => MessageKind::Sticker,
            },
            Reply::Buttons { .. } | Reply::List { .. } | Reply::CtaUrl { .. } | Reply::LocationRequest { .. } => {
                MessageKind::Interactive
            }
            Reply::Reaction { .. } => MessageKind::Reaction,
        }
    }

    /// Only a template may go outside the 24-hour window.
    pub fn needs_window(&self) -> bool {
        !matches!(self, Reply::Template(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Handler {
    Bot { reply: Reply },
    Human { assignee: Assignee },
    Nobody,
}

/// A routing decision as the host records it (the plugin's, or the
/// fallback that replaced it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoutingDecision {
    pub needs_reply: bool,
    pub handler: Handler,
    pub acknowledge: Option<Reply>,
    pub priority: Priority,
    pub respond_within_ms: Option<u64>,
    pub tags: Vec<String>,
    pub reason: String,
}

/// The team every fallback routes to.
pub const HUMAN_QUEUE: &str = "human-queue";

impl RoutingDecision {
    /// The templates it would send (its bot reply, its acknowledgement).
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        let reply = match &self.handler {
            Handler::Bot { reply } => Some(reply),
            _ => None,
        };
        reply.into_iter().chain(self.acknowledge.as_ref()).filter_map(|r| match r {
            Reply::Template(t) => Some(t),
            _ => None,
        })
    }

    /// The safe fallback: a human looks at it, nothing is sent.
    pub fn fallback(cause: &str) -> RoutingDecision {
        RoutingDecision {
            needs_reply: true,
            handler: Handler::Human { assignee: Assignee::Team(HUMAN_QUEUE.into()) },
            acknowledge: None,
            priority: Priority::Normal,
            respond_within_ms: None,
            tags: vec!["fallback".into()],
            reason: format!("fallback to the human queue: {cause}"),
        }
    }
}

/// Milliseconds as an optional deadline.
pub fn deadline(from: Millis, within_ms: Option<u64>) -> Option<Millis> {
    within_ms.map(|w| from.saturating_add(i64::try_from(w).unwrap_or(i64::MAX)))
}
