//! The Wasm plugin runtime: where tenants' decisions run, sandboxed.
//!
//! One shared [`Engine`](wasmtime::Engine) compiles each component once
//! (cached on disk, so a restart does not recompile) and pre-instantiates it
//! against the linker of the WIT version it targets. Every decision then
//! gets a fresh `Store` and instance from the pooling allocator, with fuel,
//! an epoch deadline and memory/table caps, so nothing leaks between
//! contacts or tenants and a runaway plugin costs at most its budget.
//!
//! Every world has the same host-side shape — prepare the input, call with
//! limits, validate the output — written once in [`Runtime::call`] over
//! the [`Call`] trait each world's input implements (`router`,
//! `follow_up`, `feedback`); the pipeline's `ask` adds the active version,
//! the tenant's limits and settings, and the record of the call, once.

mod cache;
pub mod call;
mod compiled;
mod export;
pub mod feedback;
pub mod follow_up;
pub mod health;
mod input;
pub mod inspect;
pub mod logs;
mod lowering;
mod outcome;
pub mod registry;
pub mod router;
mod runtime;
mod sandbox;
pub mod uploads;
pub mod v0_1;
pub mod v0_2;
pub mod versions;

pub use call::Call;
pub use input::{FeedbackInput, FollowUpInput, RouterInput, Trigger};
pub use logs::PluginLogs;
pub use outcome::sanitize;
pub use registry::{Registry, UploadError};
pub use runtime::{Plugin, Runtime};

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;

/// The kinds of decision a tenant can hand to a plugin.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum World {
    Router,
    FollowUp,
    Feedback,
}

impl World {
    pub const ALL: [World; 3] = [World::Router, World::FollowUp, World::Feedback];

    pub fn as_str(self) -> &'static str {
        match self {
            World::Router => "router",
            World::FollowUp => "follow-up",
            World::Feedback => "feedback",
        }
    }

    pub fn parse(s: &str) -> Option<World> {
        World::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// The interface a component of this world exports.
    pub fn export_interface(self) -> &'static str {
        match self {
            World::Router => "routing",
            World::FollowUp => "following",
            World::Feedback => "learning",
        }
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a compiled plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PluginMeta {
    /// sha256 of the component bytes, hex.
    pub hash: String,
    pub world: World,
    /// The `switchboard:plugin` version it targets, e.g. `0.1.0`.
    pub wit_version: String,
    pub size: usize,
    /// Set for the plugins shipped with the host.
    pub builtin: Option<String>,
}

/// One line a plugin logged or printed during a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    pub at: Millis,
    pub level: &'static str,
    /// `log` (the host import), `stdout` or `stderr`.
    pub source: &'static str,
    pub message: String,
}

/// Why a call did not produce a usable decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("trap: {0}")]
    Trap(String),
    #[error("fuel exhausted: the call used its whole budget of {0} instructions")]
    FuelExhausted(u64),
    #[error("deadline exceeded: the call ran longer than {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    ResourceLimit(String),
    #[error("the plugin returned an error: {0}")]
    PluginError(String),
    #[error("invalid output: {0}")]
    InvalidOutput(String),
    /// The host, not the plugin, could not run the call (overloaded, out
    /// of instance slots): the message still falls back, and the plugin's
    /// health is not charged.
    #[error("host: {0}")]
    Host(String),
    /// The contact's messages kept making this version fail: its decisions
    /// skip the version for a while (see `health`). No call was made.
    #[error("contact quarantined: {0}")]
    ContactQuarantined(String),
}

impl Failure {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Trap(_) => "trap",
            Failure::FuelExhausted(_) => "fuel",
            Failure::Timeout(_) => "timeout",
            Failure::ResourceLimit(_) => "memory",
            Failure::PluginError(_) => "plugin_error",
            Failure::InvalidOutput(_) => "invalid_output",
            Failure::Host(_) => "host",
            Failure::ContactQuarantined(_) => "contact_quarantined",
        }
    }

    /// Whether the plugin is to blame (counts toward suspending it).
    pub fn blames_plugin(&self) -> bool {
        !matches!(self, Failure::Host(_) | Failure::ContactQuarantined(_))
    }
}

/// The outcome of one plugin call, with what it cost.
#[derive(Debug, Clone)]
pub struct CallReport<T> {
    pub result: Result<T, Failure>,
    pub fuel_used: u64,
    pub duration: Duration,
    pub logs: Vec<LogLine>,
}

impl<T> CallReport<T> {
    /// A call not made, with why.
    pub fn skipped(failure: Failure) -> CallReport<T> {
        CallReport { result: Err(failure), fuel_used: 0, duration: Duration::ZERO, logs: Vec::new() }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> Result<U, Failure>) -> CallReport<U> {
        CallReport {
            result: self.result.and_then(f),
            fuel_used: self.fuel_used,
            duration: self.duration,
            logs: self.logs,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("{0}")]
    WrongWorld(String),
    #[error("{0}")]
    UnsupportedVersion(String),
    #[error("{0}")]
    ForbiddenImport(String),
    #[error("the component is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("compiling failed: {0}")]
    Compile(String),
    #[error("the plugin runtime could not start: {0}")]
    Engine(String),
}
