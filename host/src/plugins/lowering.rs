//! The conversions every WIT version shares, written once.
//!
//! bindgen gives each WIT version its own Rust types, so the same
//! conversion cannot be one function over both. Most of a world's shape is
//! the same in every version (a decision, a plan, the shared context, the
//! follow-up triggers, the feedback input); only a few records changed
//! (the contact, the message, the template). [`wit_conversions!`] expands
//! the shared part in a version's module against that module's generated
//! types ([`wit_bindings!`] generates them and names them `wit`,
//! `wit_host`, `wit_routing`, `wit_following` and `wit_learning`); the
//! module defines the conversions of what changed (`lower_contact`, `lower_message`, `lower_status`,
//! `lower_template`, `lift_template`).

/// The bindings of the WIT package in `$path` (relative to `host/`): its
/// three worlds sharing one `types` and `host`, and the names
/// [`wit_conversions!`] expects.
macro_rules! wit_bindings {
    ($path:tt) => {
        mod bindings {
            wasmtime::component::bindgen!({ path: $path, world: "router" });
        }

        pub mod follow_up_bindings {
            wasmtime::component::bindgen!({
                path: $path,
                world: "follow-up",
                with: {
                    "switchboard:plugin/types": super::bindings::switchboard::plugin::types,
                    "switchboard:plugin/host": super::bindings::switchboard::plugin::host,
                },
            });
        }

        pub mod feedback_bindings {
            wasmtime::component::bindgen!({
                path: $path,
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
        use feedback_bindings::exports::switchboard::plugin::learning as wit_learning;
        use follow_up_bindings::exports::switchboard::plugin::following as wit_following;
    };
}

/// `model::MessageKind` as a version's `message-kind`: the kinds every
/// version has, then the arms the version's module gives for the rest
/// (written with `K` for the host's kinds and `W` for the version's).
macro_rules! lower_kind {
    ($kind:expr, { $($rest:tt)* }) => {{
        use model::MessageKind as K;
        use wit::MessageKind as W;
        match $kind {
            K::Text => W::Text,
            K::Image => W::Image,
            K::Audio => W::Audio,
            K::Video => W::Video,
            K::Document => W::Document,
            K::Sticker => W::Sticker,
            K::Location => W::Location,
            K::Contacts => W::Contacts,
            K::Interactive => W::Interactive,
            K::Button => W::Button,
            K::Reaction => W::Reaction,
            K::Order => W::Order,
            K::System => W::System,
            K::Template => W::Template,
            K::Unsupported => W::Unsupported,
            $($rest)*
        }
    }};
}

/// Declares a world's pre-instantiated component: its one export, found
/// and type-checked once (see `export`), and the call on a fresh instance.
macro_rules! checked_world {
    ($pre:ident, $interface:expr, $func:literal, $input:ty, $output:ty) => {
        /// A compiled component of this world, ready to instantiate.
        pub struct $pre($crate::plugins::export::CheckedExport<(&'static $input,), (Result<$output, String>,)>);

        impl $pre {
            /// See [`CheckedExport::new`]($crate::plugins::export::CheckedExport::new).
            pub fn new(
                pre: wasmtime::component::InstancePre<HostState>,
                probe: &mut wasmtime::Store<HostState>,
            ) -> wasmtime::Result<Result<Self, String>> {
                Ok($crate::plugins::export::CheckedExport::new(pre, $interface, $func, probe)?.map($pre))
            }

            /// Calls the export on a fresh instance in `store`.
            fn call(
                &self,
                store: &mut wasmtime::Store<HostState>,
                input: &$input,
            ) -> wasmtime::Result<Result<$output, String>> {
                // SAFETY: the types `new` checked, with `input`'s lifetime
                // in place of `'static`.
                let func = unsafe { self.0.instantiate::<(&$input,), (Result<$output, String>,)>(store)? };
                Ok(func.call(&mut *store, (input,))?.0)
            }
        }
    };
}

/// The host interfaces, the three worlds and the conversions that are the
/// same in every WIT version, for the version `$version` (a literal).
macro_rules! wit_conversions {
    ($version:literal) => {
        pub const VERSION: &str = $version;

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
        pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
            use wasmtime::component::HasSelf;
            wit_host::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            wit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
            Ok(())
        }

        $crate::plugins::lowering::checked_world!(
            RouterPre,
            concat!("switchboard:plugin/routing@", $version),
            "route",
            wit_routing::Input,
            wit_routing::Decision
        );
        $crate::plugins::lowering::checked_world!(
            FollowUpPre,
            concat!("switchboard:plugin/following@", $version),
            "plan-next",
            wit_following::Input,
            wit_following::Plan
        );
        $crate::plugins::lowering::checked_world!(
            FeedbackPre,
            concat!("switchboard:plugin/learning@", $version),
            "learn",
            wit_learning::Input,
            Vec<wit_learning::SignalUpdate>
        );

        // ---- router ----

        /// Calls `route` on a fresh instance.
        pub fn route(
            pre: &RouterPre,
            store: &mut wasmtime::Store<HostState>,
            context: &$crate::context::Context,
            message: &$crate::crm::Message,
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

        fn lift_assignee(a: wit::Assignee) -> model::Assignee {
            match a {
                wit::Assignee::Agent(id) => model::Assignee::Agent(id),
                wit::Assignee::Team(id) => model::Assignee::Team(id),
            }
        }

        fn lift_priority(p: wit::Priority) -> model::Priority {
            match p {
                wit::Priority::Low => model::Priority::Low,
                wit::Priority::Normal => model::Priority::Normal,
                wit::Priority::High => model::Priority::High,
                wit::Priority::Urgent => model::Priority::Urgent,
            }
        }

        // ---- the shared context ----

        fn lower_context(c: &$crate::context::Context) -> wit::Context {
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
                    resolved: conv.status == $crate::crm::ConversationStatus::Resolved,
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

        fn lower_signals(c: &$crate::crm::Contact) -> Vec<wit::Signal> {
            c.signals
                .iter()
                .map(|(name, s)| wit::Signal { name: name.clone(), value: s.value, updated_at: s.updated_at })
                .collect()
        }

        fn lower_assignee(a: &model::Assignee) -> wit::Assignee {
            match a {
                model::Assignee::Agent(id) => wit::Assignee::Agent(id.clone()),
                model::Assignee::Team(id) => wit::Assignee::Team(id.clone()),
            }
        }

        fn lower_priority(p: model::Priority) -> wit::Priority {
            match p {
                model::Priority::Low => wit::Priority::Low,
                model::Priority::Normal => wit::Priority::Normal,
                model::Priority::High => wit::Priority::High,
                model::Priority::Urgent => wit::Priority::Urgent,
            }
        }

        fn lower_direction(d: model::Direction) -> wit::Direction {
            match d {
                model::Direction::Inbound => wit::Direction::Inbound,
                model::Direction::Outbound => wit::Direction::Outbound,
            }
        }

        fn lower_author(a: &$crate::crm::Author) -> wit::Author {
            match a {
                $crate::crm::Author::Contact => wit::Author::Contact,
                $crate::crm::Author::Bot => wit::Author::Bot,
                $crate::crm::Author::Human { .. } => wit::Author::Human,
            }
        }

        // ---- follow-up ----

        /// Calls `plan-next` on a fresh instance.
        pub fn plan_follow_up(
            pre: &FollowUpPre,
            store: &mut wasmtime::Store<HostState>,
            input: &$crate::plugins::FollowUpInput,
        ) -> wasmtime::Result<Result<model::FollowUpPlan, String>> {
            use $crate::plugins::Trigger;
            let wit_input = wit_following::Input {
                context: lower_context(&input.context),
                trigger: match &input.trigger {
                    Trigger::Inbound { message } => wit_following::Trigger::Inbound(lower_message(message)),
                    Trigger::Outbound { message } => wit_following::Trigger::Outbound(lower_message(message)),
                    Trigger::StatusChanged { message_id, status } => {
                        wit_following::Trigger::StatusChanged(wit_following::StatusChange {
                            message_id: message_id.clone(),
                            status: lower_status(*status),
                        })
                    }
                    Trigger::Routed { needs_reply, assignee, priority, reason } => {
                        wit_following::Trigger::Routed(wit_following::RoutingSummary {
                            needs_reply: *needs_reply,
                            assignee: assignee.as_ref().map(lower_assignee),
                            priority: lower_priority(*priority),
                            reason: reason.clone(),
                        })
                    }
                    Trigger::TimerFired { follow_up } => wit_following::Trigger::TimerFired(lower_scheduled(follow_up)),
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
                    model::FollowUpAction::SendTemplate { template } => {
                        wit_following::Action::SendTemplate(lower_template(template))
                    }
                    model::FollowUpAction::NotifyAssignee { note } => {
                        wit_following::Action::NotifyAssignee(note.clone())
                    }
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

        /// Calls `learn` on a fresh instance.
        pub fn learn(
            pre: &FeedbackPre,
            store: &mut wasmtime::Store<HostState>,
            input: &$crate::plugins::FeedbackInput,
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
            Ok(pre.call(store, &wit_input)?.map(|updates| {
                updates.into_iter().map(|u| model::SignalUpdate { name: u.name, value: u.value }).collect()
            }))
        }
    };
}

pub(super) use {checked_world, lower_kind, wit_bindings, wit_conversions};
