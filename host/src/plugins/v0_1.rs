//! Bindings for `switchboard:plugin@0.1.0` and the conversions between the
//! host's values and that version's WIT types.
//!
//! One module per WIT version (as Zed does for extensions): when `@0.2.0`
//! arrives it gets its own module beside this one, and components built
//! against `@0.1.0` keep working unchanged.

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::export::CheckedExport;
use super::sandbox::HostState;
use crate::context::Context;
use crate::crm::{Author, Contact, ConversationStatus, Message};
use crate::model;

pub const VERSION: &str = "0.1.0";

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "router",
    });
}

pub mod follow_up_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "follow-up",
        with: {
            "switchboard:plugin/types": super::bindings::switchboard::plugin::types,
            "switchboard:plugin/host": super::bindings::switchboard::plugin::host,
        },
    });
}

pub mod feedback_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "feedback",
        with: {
            "switchboard:plugin/types": super::bindings::switchboard::plugin::types,
            "switchboard:plugin/host": super::bindings::switchboard::plugin::host,
        },
    });
}

use bindings::exports::switchboard::plugin::routing as wit_routing;
use bindings::switchboard::plugin::host as wit_host;
use bindings::switchboard::plugin::types as wit;

impl wit_host::Host for HostState {
    fn log(&mut self, level: wit_host::LogLevel, message: String) {
        let level = match level {
            wit_host::LogLevel::Trace => "trace",
            wit_host::LogLevel::Debug => "debug",
            wit_host::LogLevel::Info => "info",
            wit_host::LogLevel::Warn => "warn",
            wit_host::LogLevel::Error => "error",
        };
        self.push_log(level, "log", &message);
    }

    fn config(&mut self, key: String) -> Option<String> {
        HostState::config(self, &key)
    }
}

impl wit::Host for HostState {}

/// Adds this version's host interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit_host::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    wit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

/// Declares a world's pre-instantiated component: its one export, found
/// and type-checked once (see `export`), and the call on a fresh instance.
macro_rules! checked_world {
    ($pre:ident, $interface:literal, $func:literal, $input:ty, $output:ty) => {
        /// A compiled component of this world, ready to instantiate.
        pub struct $pre(CheckedExport<(&'static $input,), (Result<$output, String>,)>);

        impl $pre {
            /// See [`CheckedExport::new`].
            pub fn new(
                pre: InstancePre<HostState>,
                probe: &mut Store<HostState>,
            ) -> wasmtime::Result<Result<Self, String>> {
                Ok(CheckedExport::new(pre, $interface, $func, probe)?.map($pre))
            }

            /// Calls the export on a fresh instance in `store`.
            fn call(&self, store: &mut Store<HostState>, input: &$input) -> wasmtime::Result<Result<$output, String>> {
                // SAFETY: the types `new` checked, with `input`'s lifetime
                // in place of `'static`.
                let func = unsafe { self.0.instantiate::<(&$input,), (Result<$output, String>,)>(store)? };
                Ok(func.call(&mut *store, (input,))?.0)
            }
        }
    };
}

checked_world!(RouterPre, "switchboard:plugin/routing@0.1.0", "route", wit_routing::Input, wit_routing::Decision);
checked_world!(
    FollowUpPre,
    "switchboard:plugin/following@0.1.0",
    "plan-next",
    wit_following::Input,
    wit_following::Plan
);
checked_world!(
    FeedbackPre,
    "switchboard:plugin/learning@0.1.0",
    "learn",
    wit_learning::Input,
    Vec<wit_learning::SignalUpdate>
);

// ---- router ----

/// Calls `route` on a fresh instance.
pub fn route(
    pre: &RouterPre,
    store: &mut wasmtime::Store<HostState>,
    context: &Context,
    message: &Message,
) -> wasmtime::Result<Result<model::RoutingDecision, String>> {
    let input = wit_routing::Input { context: lower_context(context), message: lower_message(message) };
    Ok(pre.call(store, &input)?.map(lift_decision))
}

fn lift_decision(d: wit_routing::Decision) -> model::RoutingDecision {
    model::RoutingDecision {
        needs_reply: d.needs_reply,
        handler: match d.handler {
            wit_routing::Handler::Bot(reply) => model::Handler::Bot { reply: lift_reply(reply) },
            wit_routing::Handler::Human(a) => model::Handler::Human { assignee: lift_assignee(a) },
            wit_routing::Handler::Nobody => model::Handler::Nobody,
        },
        acknowledge: d.acknowledge.map(lift_reply),
        priority: lift_priority(d.priority),
        respond_within_ms: d.respond_within,
        tags: d.tags,
        reason: d.reason,
    }
}

fn lift_reply(r: wit_routing::Reply) -> model::Reply {
    match r {
        wit_routing::Reply::Text(body) => model::Reply::Text { body },
        wit_routing::Reply::Template(t) => model::Reply::Template(lift_template(t)),
    }
}

pub(super) fn lift_template(t: wit::Template) -> model::Template {
    model::Template { name: t.name, language: t.language, parameters: t.parameters, category: None }
}

pub(super) fn lift_assignee(a: wit::Assignee) -> model::Assignee {
    match a {
        wit::Assignee::Agent(id) => model::Assignee::Agent(id),
        wit::Assignee::Team(id) => model::Assignee::Team(id),
    }
}

pub(super) fn lift_priority(p: wit::Priority) -> model::Priority {
    match p {
        wit::Priority::Low => model::Priority::Low,
        wit::Priority::Normal => model::Priority::Normal,
        wit::Priority::High => model::Priority::High,
        wit::Priority::Urgent => model::Priority::Urgent,
    }
}

// ---- lowering the shared context ----

pub(super) fn lower_context(c: &Context) -> wit::Context {
    let conv = &c.conversation;
    wit::Context {
        tenant: c.tenant.clone(),
        now: c.now,
        local_time: wit::LocalTime {
            utc_offset_minutes: c.local_time.utc_offset_minutes,
            weekday: c.local_time.weekday,
            minute_of_day: c.local_time.minute_of_day,
        },
        contact: lower_contact(&c.contact),
        company: c.company.as_ref().map(|co| wit::Company {
            id: co.id.clone(),
            name: co.name.clone(),
            domain: co.domain.clone(),
        }),
        deal: c.deal.as_ref().map(|d| wit::Deal {
            id: d.id.clone(),
            name: d.name.clone(),
            stage: d.stage.clone(),
            amount_minor: d.amount_minor,
            currency: d.currency.clone(),
            owner: d.owner.clone(),
        }),
        conversation: wit::Conversation {
            id: conv.id.clone(),
            opened_at: conv.opened_at,
            resolved: conv.status == ConversationStatus::Resolved,
            assignee: conv.assignee.as_ref().map(lower_assignee),
            priority: lower_priority(conv.priority),
            last_inbound_at: conv.last_inbound_at,
            last_outbound_at: conv.last_outbound_at,
            window: wit::ServiceWindow { open: c.window.open, closes_at: c.window.closes_at },
            history: c.history.iter().map(lower_message).collect(),
            tags: conv.tags.clone(),
        },
        stats: wit::Stats {
            inbound_messages: c.contact.stats.inbound_messages,
            outbound_messages: c.contact.stats.outbound_messages,
            conversations: c.contact.stats.conversations,
            median_reply_latency: c.contact.stats.median_reply_latency_ms(),
        },
    }
}

pub(super) fn lower_contact(c: &Contact) -> wit::Contact {
    wit::Contact {
        id: c.id.clone(),
        // 0.1.0 plugins were written when every contact had a phone: one
        // known only by BSUID shows an empty one (0.2.0 says which).
        phone: c.phone.clone().unwrap_or_default(),
        name: c.display_name().map(String::from),
        country: c.country.clone(),
        email: c.email.clone(),
        tags: c.tags.clone(),
        opted_out: c.opted_out,
        signals: c
            .signals
            .iter()
            .map(|(name, s)| wit::Signal { name: name.clone(), value: s.value, updated_at: s.updated_at })
            .collect(),
    }
}

pub(super) fn lower_assignee(a: &model::Assignee) -> wit::Assignee {
    match a {
        model::Assignee::Agent(id) => wit::Assignee::Agent(id.clone()),
        model::Assignee::Team(id) => wit::Assignee::Team(id.clone()),
    }
}

pub(super) fn lower_priority(p: model::Priority) -> wit::Priority {
    match p {
        model::Priority::Low => wit::Priority::Low,
        model::Priority::Normal => wit::Priority::Normal,
        model::Priority::High => wit::Priority::High,
        model::Priority::Urgent => wit::Priority::Urgent,
    }
}

pub(super) fn lower_message(m: &Message) -> wit::Message {
    wit::Message {
        id: m.id.clone(),
        direction: match m.direction {
            model::Direction::Inbound => wit::Direction::Inbound,
            model::Direction::Outbound => wit::Direction::Outbound,
        },
        author: match m.author {
            Author::Contact => wit::Author::Contact,
            Author::Bot => wit::Author::Bot,
            Author::Human { .. } => wit::Author::Human,
        },
        kind: lower_kind(m.kind),
        text: m.text.clone(),
        at: m.at,
        reply_to: m.reply_to.clone(),
        status: m.status.map(lower_status),
    }
}

fn lower_kind(k: model::MessageKind) -> wit::MessageKind {
    use model::MessageKind as K;
    match k {
        K::Text => wit::MessageKind::Text,
        K::Image => wit::MessageKind::Image,
        K::Audio => wit::MessageKind::Audio,
        K::Video => wit::MessageKind::Video,
        K::Document => wit::MessageKind::Document,
        K::Sticker => wit::MessageKind::Sticker,
        K::Location => wit::MessageKind::Location,
        K::Contacts => wit::MessageKind::Contacts,
        K::Interactive => wit::MessageKind::Interactive,
        K::Button => wit::MessageKind::Button,
        K::Reaction => wit::MessageKind::Reaction,
        K::Order => wit::MessageKind::Order,
        K::System => wit::MessageKind::System,
        K::Template => wit::MessageKind::Template,
        K::Unsupported => wit::MessageKind::Unsupported,
        K::Edit | K::Revoke | K::RequestWelcome | K::Call | K::Preference | K::Other => wit::MessageKind::Other,
    }
}

pub(super) fn lower_status(s: model::DeliveryStatus) -> wit::DeliveryStatus {
    use model::DeliveryStatus as S;
    match s {
        // 0.1.0 has no "unknown": to its plugins it is still unconfirmed.
        S::Pending | S::Unknown => wit::DeliveryStatus::Pending,
        S::DryRun => wit::DeliveryStatus::DryRun,
        S::Sent => wit::DeliveryStatus::Sent,
        S::Failed => wit::DeliveryStatus::Failed,
        S::Delivered => wit::DeliveryStatus::Delivered,
        // 0.1.0 ends at `read`: a played voice message was read. `deleted`
        // and `warning` are never a message's status (only its history's).
        S::Read | S::Played | S::Deleted | S::Warning => wit::DeliveryStatus::Read,
    }
}

// ---- follow-up ----

use follow_up_bindings::exports::switchboard::plugin::following as wit_following;

/// Calls `plan-next` on a fresh instance.
pub fn plan_follow_up(
    pre: &FollowUpPre,
    store: &mut wasmtime::Store<HostState>,
    input: &super::FollowUpInput,
) -> wasmtime::Result<Result<model::FollowUpPlan, String>> {
    let wit_input = wit_following::Input {
        context: lower_context(&input.context),
        trigger: match &input.trigger {
            super::Trigger::Inbound { message } => wit_following::Trigger::Inbound(lower_message(message)),
            super::Trigger::Outbound { message } => wit_following::Trigger::Outbound(lower_message(message)),
            super::Trigger::StatusChanged { message_id, status } => {
                wit_following::Trigger::StatusChanged(wit_following::StatusChange {
                    message_id: message_id.clone(),
                    status: lower_status(*status),
                })
            }
            super::Trigger::Routed { needs_reply, assignee, priority, reason } => {
                wit_following::Trigger::Routed(wit_following::RoutingSummary {
                    needs_reply: *needs_reply,
                    assignee: assignee.as_ref().map(lower_assignee),
                    priority: lower_priority(*priority),
                    reason: reason.clone(),
                })
            }
            super::Trigger::TimerFired { follow_up } => wit_following::Trigger::TimerFired(lower_scheduled(follow_up)),
        },
        pending: input.pending.as_ref().map(lower_scheduled),
        unanswered_attempts: input.unanswered_attempts,
    };
    Ok(pre.call(store, &wit_input)?.map(|p| model::FollowUpPlan {
        kind: match p.kind {
            wit_following::PlanKind::Nothing => model::PlanKind::Nothing,
            wit_following::PlanKind::CancelPending => model::PlanKind::CancelPending,
            wit_following::PlanKind::Schedule(s) => model::PlanKind::Schedule { follow_up: lift_scheduled(s) },
        },
        reason: p.reason,
    }))
}

fn lower_scheduled(s: &model::ScheduledFollowUp) -> wit_following::Scheduled {
    wit_following::Scheduled {
        at: s.at,
        action: match &s.action {
            model::FollowUpAction::SendText { body } => wit_following::Action::SendText(body.clone()),
            model::FollowUpAction::SendTemplate { template } => wit_following::Action::SendTemplate(wit::Template {
                name: template.name.clone(),
                language: template.language.clone(),
                parameters: template.parameters.clone(),
            }),
            model::FollowUpAction::NotifyAssignee { note } => wit_following::Action::NotifyAssignee(note.clone()),
            model::FollowUpAction::CloseConversation => wit_following::Action::CloseConversation,
        },
        attempt: s.attempt,
    }
}

fn lift_scheduled(s: wit_following::Scheduled) -> model::ScheduledFollowUp {
    model::ScheduledFollowUp {
        at: s.at,
        action: match s.action {
            wit_following::Action::SendText(body) => model::FollowUpAction::SendText { body },
            wit_following::Action::SendTemplate(t) => {
                model::FollowUpAction::SendTemplate { template: lift_template(t) }
            }
            wit_following::Action::NotifyAssignee(note) => model::FollowUpAction::NotifyAssignee { note },
            wit_following::Action::CloseConversation => model::FollowUpAction::CloseConversation,
        },
        attempt: s.attempt,
    }
}

// ---- feedback ----

use feedback_bindings::exports::switchboard::plugin::learning as wit_learning;

/// Calls `learn` on a fresh instance.
pub fn learn(
    pre: &FeedbackPre,
    store: &mut wasmtime::Store<HostState>,
    input: &super::FeedbackInput,
) -> wasmtime::Result<Result<Vec<model::SignalUpdate>, String>> {
    let i = &input.interaction;
    let wit_input = wit_learning::Input {
        now: input.now,
        contact: lower_contact(&input.contact),
        interaction: wit_learning::Interaction {
            conversation_id: i.conversation_id.clone(),
            closed_by: match i.closed_by {
                model::CloseReason::ContactReplied => wit_learning::CloseReason::ContactReplied,
                model::CloseReason::FollowUpUnanswered => wit_learning::CloseReason::FollowUpUnanswered,
                model::CloseReason::Resolved => wit_learning::CloseReason::Resolved,
            },
            started_at: i.started_at,
            ended_at: i.ended_at,
            first_response: i.first_response_ms,
            contact_reply_latency: i.contact_reply_latency_ms,
            turns: i.turns,
            inbound_messages: i.inbound_messages,
            outbound_messages: i.outbound_messages,
            mean_inbound_length: i.mean_inbound_length,
            follow_ups_sent: i.follow_ups_sent,
            follow_up_answered: i.follow_up_answered,
            clarifying_questions: i.clarifying_questions,
            active_hours: i.active_hours.clone(),
        },
    };
    Ok(pre
        .call(store, &wit_input)?
        .map(|updates| updates.into_iter().map(|u| model::SignalUpdate { name: u.name, value: u.value }).collect()))
}
