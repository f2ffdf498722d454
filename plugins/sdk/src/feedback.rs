//! The `feedback` world: turn a closed exchange into signals about the contact.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "feedback",
        pub_export_macro: true,
        export_macro_name: "__export_feedback_world",
        default_bindings_module: "switchboard_plugin::feedback::bindings",
        runtime_path: "switchboard_plugin::__wit_bindgen::rt",
    });
}

pub use bindings::exports::switchboard::plugin::learning::{
    CloseReason, Guest as Feedback, Input, Interaction, SignalUpdate,
};

crate::__shared_helpers!();

/// Export `$t` (which implements [`Feedback`]) as this component's feedback plugin.
#[macro_export]
macro_rules! export_feedback {
    ($t:ident) => {
        $crate::feedback::bindings::__export_feedback_world!($t);
    };
}
