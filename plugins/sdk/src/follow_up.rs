//! The `follow-up` world: decide whether and when to follow up.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "follow-up",
        pub_export_macro: true,
        export_macro_name: "__export_follow_up_world",
        default_bindings_module: "switchboard_plugin::follow_up::bindings",
        runtime_path: "switchboard_plugin::__wit_bindgen::rt",
    });
}

pub use bindings::exports::switchboard::plugin::following::{
    Action, Guest as FollowUp, Input, Plan, PlanKind, RoutingSummary, Scheduled, StatusChange, Trigger,
};

crate::__shared_helpers!();

impl Plan {
    pub fn nothing(reason: impl Into<String>) -> Self {
        Plan { kind: PlanKind::Nothing, reason: reason.into() }
    }

    pub fn cancel(reason: impl Into<String>) -> Self {
        Plan { kind: PlanKind::CancelPending, reason: reason.into() }
    }

    pub fn schedule(at: Timestamp, action: Action, attempt: u32, reason: impl Into<String>) -> Self {
        Plan { kind: PlanKind::Schedule(Scheduled { at, action, attempt }), reason: reason.into() }
    }
}

/// Export `$t` (which implements [`FollowUp`]) as this component's follow-up planner.
#[macro_export]
macro_rules! export_follow_up {
    ($t:ident) => {
        $crate::follow_up::bindings::__export_follow_up_world!($t);
    };
}
