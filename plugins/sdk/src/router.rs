//! The `router` world: decide who answers an inbound message.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "router",
        pub_export_macro: true,
        export_macro_name: "__export_router_world",
        default_bindings_module: "switchboard_plugin::router::bindings",
        runtime_path: "switchboard_plugin::__wit_bindgen::rt",
    });
}

pub use bindings::exports::switchboard::plugin::routing::{Decision, Guest as Router, Handler, Input, Reply};

crate::__shared_helpers!();

impl Decision {
    /// A human (agent or team) answers, at normal priority.
    pub fn human(assignee: Assignee, reason: impl Into<String>) -> Self {
        Decision {
            needs_reply: true,
            handler: Handler::Human(assignee),
            acknowledge: None,
            priority: Priority::Normal,
            respond_within: None,
            tags: Vec::new(),
            reason: reason.into(),
        }
    }

    /// The bot answers at once with `reply`.
    pub fn bot(reply: Reply, reason: impl Into<String>) -> Self {
        Decision {
            needs_reply: true,
            handler: Handler::Bot(reply),
            acknowledge: None,
            priority: Priority::Normal,
            respond_within: None,
            tags: Vec::new(),
            reason: reason.into(),
        }
    }

    /// Nothing to answer (a reaction, a "thanks").
    pub fn no_reply(reason: impl Into<String>) -> Self {
        Decision {
            needs_reply: false,
            handler: Handler::Nobody,
            acknowledge: None,
            priority: Priority::Low,
            respond_within: None,
            tags: Vec::new(),
            reason: reason.into(),
        }
    }

    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Respond within this many minutes.
    pub fn within_minutes(mut self, minutes: u64) -> Self {
        self.respond_within = Some(minutes * 60_000);
        self
    }

    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Send `reply` at once while a human handler is on the way.
    pub fn acknowledged_with(mut self, reply: Reply) -> Self {
        self.acknowledge = Some(reply);
        self
    }
}

/// Export `$t` (which implements [`Router`]) as this component's router.
#[macro_export]
macro_rules! export_router {
    ($t:ident) => {
        $crate::router::bindings::__export_router_world!($t);
    };
}
