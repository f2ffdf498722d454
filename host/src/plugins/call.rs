//! One call path for every world.
//!
//! A world is its input type implementing [`Call`]. The input says which
//! world it belongs to, how each WIT version of that world is called, what
//! a valid output is, and which sample every upload is tried on.
//! [`Runtime::call`] is then the only way to call a plugin: the pipeline,
//! the upload check, `switchboard plugin run` and the benchmarks all use
//! it. Adding a world takes a variant of [`World`], an input type with
//! this impl, an arm in [`for_world`] and its compiled form in `runtime`'s
//! `Pre`. Adding a WIT version takes a module like `v0_1` and an arm in
//! each `Call::call`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasmtime::Store;

use super::runtime::Pre;
use super::sandbox::HostState;
use super::{CallReport, Failure, FeedbackInput, FollowUpInput, Plugin, RouterInput, Runtime, World};
use crate::clock::Millis;
use crate::config::PluginLimits;

pub trait Call: Serialize + DeserializeOwned + Sized {
    const WORLD: World;
    /// The input every upload of this world must handle well before it is
    /// accepted; `switchboard plugin init` writes it next to a new plugin.
    const SAMPLE: &'static str;
    /// What `switchboard plugin run` calls the output.
    const OUTPUT: &'static str;
    type Output: Serialize;

    /// The decision's frozen "now": what the plugin's clock reads.
    fn now(&self) -> Millis;

    /// Seeds the plugin's random numbers: the same input replays exactly.
    fn seed(&self) -> u64;

    /// Lowers the input into the WIT version `pre` was compiled for, calls
    /// the world's export on a fresh instance, and lifts the output.
    fn call(&self, pre: &Pre, store: &mut Store<HostState>) -> wasmtime::Result<Result<Self::Output, String>>;

    /// Refuses an output the host could not carry out or store safely.
    fn validate(&self, output: Self::Output, limits: &PluginLimits) -> Result<Self::Output, Failure>;
}

impl Runtime {
    /// Calls `plugin` on `input` in a fresh sandbox with `limits`; the
    /// report's error says why the caller must fall back.
    pub fn call<C: Call>(
        &self,
        plugin: &Plugin,
        limits: &PluginLimits,
        config: Arc<BTreeMap<String, String>>,
        input: &C,
    ) -> CallReport<C::Output> {
        if plugin.meta.world != C::WORLD {
            let why = format!("a {} plugin was asked for a {} decision", plugin.meta.world, C::WORLD);
            return CallReport::skipped(Failure::Host(why));
        }
        let report = self.invoke(limits, config, input.now(), input.seed(), |store| input.call(&plugin.pre, store));
        report.map(|output| input.validate(output, limits))
    }
}

/// Code generic over the world, for a world known only at run time.
pub trait ForWorld {
    type Out;
    fn run<C: Call>(self) -> Self::Out;
}

/// Runs `v` with the input type of `world`: the one `match` on worlds.
pub fn for_world<V: ForWorld>(world: World, v: V) -> V::Out {
    match world {
        World::Router => v.run::<RouterInput>(),
        World::FollowUp => v.run::<FollowUpInput>(),
        World::Feedback => v.run::<FeedbackInput>(),
    }
}

/// The world's sample input.
pub fn sample(world: World) -> &'static str {
    struct Sample;
    impl ForWorld for Sample {
        type Out = &'static str;
        fn run<C: Call>(self) -> &'static str {
            C::SAMPLE
        }
    }
    for_world(world, Sample)
}

/// Runs `plugin` on its world's sample input; the failure, if any.
pub fn sample_run(runtime: &Runtime, plugin: &Plugin, limits: &PluginLimits) -> Option<Failure> {
    struct SampleRun<'a>(&'a Runtime, &'a Plugin, &'a PluginLimits);
    impl ForWorld for SampleRun<'_> {
        type Out = Option<Failure>;
        fn run<C: Call>(self) -> Option<Failure> {
            let SampleRun(runtime, plugin, limits) = self;
            let input: C = match serde_json::from_str(C::SAMPLE) {
                Ok(i) => i,
                Err(e) => return Some(Failure::Trap(format!("the built-in sample input is broken: {e}"))),
            };
            runtime.call(plugin, limits, Arc::default(), &input).result.err()
        }
    }
    for_world(plugin.meta.world, SampleRun(runtime, plugin, limits))
}

/// A JSON input for `plugin`'s world, run as the host would: what
/// `switchboard plugin run` prints. The error is the input's.
pub fn run_json(
    runtime: &Runtime,
    plugin: &Plugin,
    limits: &PluginLimits,
    config: Arc<BTreeMap<String, String>>,
    input: &str,
) -> Result<(&'static str, CallReport<serde_json::Value>), serde_json::Error> {
    struct RunJson<'a>(&'a Runtime, &'a Plugin, &'a PluginLimits, Arc<BTreeMap<String, String>>, &'a str);
    impl ForWorld for RunJson<'_> {
        type Out = Result<(&'static str, CallReport<serde_json::Value>), serde_json::Error>;
        fn run<C: Call>(self) -> Self::Out {
            let RunJson(runtime, plugin, limits, config, input) = self;
            let input: C = serde_json::from_str(input)?;
            let report = runtime.call(plugin, limits, config, &input);
            let report = report.map(|o| serde_json::to_value(o).map_err(|e| Failure::Host(e.to_string())));
            Ok((C::OUTPUT, report))
        }
    }
    for_world(plugin.meta.world, RunJson(runtime, plugin, limits, config, input))
}
