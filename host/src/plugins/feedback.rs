//! The feedback world on the host side: call, then check the signals.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::router::{invalid, seed_of};
use super::runtime::Pre;
use super::{CallReport, Failure, Plugin, Runtime, v0_1};
use crate::config::PluginLimits;
use crate::model::{FeedbackInput, SignalUpdate};

const MAX_SIGNALS: usize = 32;

impl Runtime {
    pub fn learn(
        &self,
        plugin: &Plugin,
        limits: &PluginLimits,
        config: Arc<BTreeMap<String, String>>,
        input: &FeedbackInput,
    ) -> CallReport<Vec<SignalUpdate>> {
        let seed = seed_of(&input.contact.id, &input.interaction.conversation_id);
        let report = self.invoke(limits, config, input.now, seed, |store| match &*plugin.pre {
            Pre::FeedbackV0_1(pre) => v0_1::learn(pre, store, input),
            _ => Err(wasmtime::Error::msg(format!("a {} plugin cannot learn", plugin.meta.world))),
        });
        report.map(validate)
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
