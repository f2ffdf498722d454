//! The guest SDK for Switchboard plugins.
//!
//! A plugin is a WebAssembly component that makes one kind of decision for
//! a tenant: `router`, `follow-up` or `feedback`. This crate hides the
//! component-model bindings: enable the feature for your world, implement
//! one trait, call one macro.
//!
//! ```ignore
//! use switchboard_plugin::router::*;
//!
//! struct MyRouter;
//!
//! impl Router for MyRouter {
//!     fn route(input: Input) -> Result<Decision, String> {
//!         Ok(Decision::human(Assignee::Team("support".into()), "everything goes to support"))
//!     }
//! }
//!
//! switchboard_plugin::export_router!(MyRouter);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! in `target/wasm32-wasip2/release/` is the component to upload.
//!
//! Plugins are pure functions of their input: the host passes the time,
//! the context and the tenant's settings (`config`). There is no clock,
//! network or filesystem to reach for, so a decision can be replayed.

// Lets the generated export macros name this crate as `switchboard_plugin`
// from inside it and from the author's crate alike.
extern crate self as switchboard_plugin;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The WIT package version this SDK targets.
pub const WIT_VERSION: &str = "0.1.0";

#[cfg(feature = "router")]
pub mod router;

#[cfg(feature = "follow-up")]
pub mod follow_up;

#[cfg(feature = "feedback")]
pub mod feedback;

/// Helpers over the shared types, written once as a macro because each
/// world's bindings generate their own copy of those types.
#[doc(hidden)]
#[macro_export]
macro_rules! __shared_helpers {
    () => {
        pub use bindings::switchboard::plugin::host::LogLevel;
        pub use bindings::switchboard::plugin::types::*;

        /// A tenant setting for this plugin, or `None` when unset.
        pub fn config(key: &str) -> Option<String> {
            bindings::switchboard::plugin::host::config(key)
        }

        /// A tenant setting parsed as `T`, or `default` when unset or invalid.
        pub fn config_or<T: core::str::FromStr>(key: &str, default: T) -> T {
            config(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
        }

        /// Append a line to the plugin's log (readable through the API).
        pub fn log(level: LogLevel, message: &str) {
            bindings::switchboard::plugin::host::log(level, message)
        }

        impl Contact {
            /// The current value of a learned signal, if the contact has it.
            pub fn signal(&self, name: &str) -> Option<f64> {
                self.signals.iter().find(|s| s.name == name).map(|s| s.value)
            }
        }

        impl Message {
            /// The message text, lower-cased, or an empty string.
            pub fn lowercase_text(&self) -> String {
                self.text.as_deref().unwrap_or_default().to_lowercase()
            }
        }

        impl LocalTime {
            /// Local hour of day, 0…23.
            pub fn hour(&self) -> u8 {
                (self.minute_of_day / 60) as u8
            }
        }
    };
}
