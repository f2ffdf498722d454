//! The feedback world on the host side: how it is called, and the check
//! of the signals it returns.

use wasmtime::Store;

use super::call::Call;
use super::router::{invalid, seed_of};
use super::runtime::Pre;
use super::sandbox::HostState;
use super::{Failure, FeedbackInput, World, v0_1, v0_2};
use crate::clock::Millis;
use crate::config::PluginLimits;
use crate::model::SignalUpdate;

const MAX_SIGNALS: usize = 32;

impl Call for FeedbackInput {
    const WORLD: World = World::Feedback;
    const SAMPLE: &'static str = include_str!("../../../examples/inputs/feedback-replied.json");
    const OUTPUT: &'static str = "signals";
    type Output = Vec<SignalUpdate>;

    fn now(&self) -> Millis {
        self.now
    }

    fn seed(&self) -> u64 {
        seed_of(&self.contact.id, &self.interaction.conversation_id)
    }

    fn call(&self, pre: &Pre, store: &mut Store<HostState>) -> wasmtime::Result<Result<Vec<SignalUpdate>, String>> {
        match pre {
            Pre::FeedbackV0_1(pre) => v0_1::learn(pre, store, self),
            Pre::FeedbackV0_2(pre) => v0_2::learn(pre, store, self),
            _ => Err(wasmtime::Error::msg("not a feedback plugin")),
        }
    }

    fn validate(&self, updates: Vec<SignalUpdate>, _: &PluginLimits) -> Result<Vec<SignalUpdate>, Failure> {
        validate(updates)
    }
}

pub fn validate(updates: Vec<SignalUpdate>) -> Result<Vec<SignalUpdate>, Failure> {
    if updates.len() > MAX_SIGNALS {
        return Err(invalid(format!("{} signals; at most {MAX_SIGNALS}", updates.len())));
    }
    for u in &updates {
        let name_ok = !u.name.is_empty()
            && u.name.len() <= 64
            && u.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !name_ok {
            return Err(invalid(format!("signal name {:?} must be 1–64 of a-z 0-9 _ -", u.name)));
        }
        if !u.value.is_finite() {
            return Err(invalid(format!("signal {} is not a finite number", u.name)));
        }
    }
    Ok(updates)
}
