//! The engine, the linker per WIT version, compilation and the one
//! sandboxed call path every world uses.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

use super::cache::CompileCache;
use super::inspect::{Shape, inspect};
use super::outcome::{self, Spent};
use super::sandbox::HostState;
use super::{CallReport, Failure, PluginError, PluginMeta, World, v0_1, v0_2};
use crate::clock::{Millis, thread_cpu_time};
use crate::config::{PluginConfig, PluginLimits};

/// WIT package versions this host serves, newest first.
pub const SERVED_VERSIONS: &[&str] = &[v0_2::VERSION, v0_1::VERSION];

/// A compiled, pre-instantiated plugin. Cheap to clone (`Arc` inside).
#[derive(Clone)]
pub struct Plugin {
    pub meta: PluginMeta,
    pub(super) pre: Arc<Pre>,
    component: Component,
}

impl Plugin {
    /// Bytes of machine code it holds in memory.
    pub fn code_bytes(&self) -> usize {
        let range = self.component.image_range();
        (range.end as usize).saturating_sub(range.start as usize)
    }
}

/// A component compiled and pre-instantiated for its world at one WIT
/// version. Public only so `Call` can name it: outside `plugins` the
/// type cannot be named, so no one else can implement a world.
pub enum Pre {
    RouterV0_1(v0_1::RouterPre),
    FollowUpV0_1(v0_1::FollowUpPre),
    FeedbackV0_1(v0_1::FeedbackPre),
    RouterV0_2(v0_2::RouterPre),
    FollowUpV0_2(v0_2::FollowUpPre),
    FeedbackV0_2(v0_2::FeedbackPre),
}

pub struct Runtime {
    engine: Engine,
    /// One linker for every served version: each version's interfaces
    /// have names of their own (`switchboard:plugin/host@0.1.0`…).
    linker: Linker<HostState>,
    cache: CompileCache,
    tick: Duration,
    stop_ticker: Arc<AtomicBool>,
    slots: Slots,
    /// The operator's default limits, for the one probe instantiation that
    /// type-checks a freshly compiled component's export.
    probe_limits: PluginLimits,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(config: &PluginConfig, cache_dir: &Path) -> Result<Runtime, PluginError> {
        let engine = engine(config, Allocation::PoolingResident)
            .or_else(|e| {
                tracing::info!(error = %e, "PAGEMAP_SCAN unavailable (Linux < 6.7?); instance memory is reset with madvise");
                engine(config, Allocation::Pooling)
            })
            .or_else(|e| {
                tracing::warn!(error = %e, "pooling allocator unavailable (address space?); using on-demand allocation");
                engine(config, Allocation::OnDemand)
            })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        linker.allow_shadowing(true);
        super::sandbox::link_virtual_clock(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        linker.allow_shadowing(false);
        v0_1::add_to_linker(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        v0_2::add_to_linker(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.weak(), config.epoch_tick, stop_ticker.clone());
        Ok(Runtime {
            cache: CompileCache::new(cache_dir, &engine),
            engine,
            linker,
            tick: config.epoch_tick,
            stop_ticker,
            slots: Slots::new(config.instance_slots),
            probe_limits: config.limits.clone(),
        })
    }

    /// Validates and compiles a component: it must be a component, target a
    /// WIT version we serve, implement exactly one world, and import nothing
    /// beyond the allowed interfaces — all read from its bytes before any
    /// compiling (see `inspect`). The error says what to fix. Nothing is
    /// cached: [`Runtime::remember`] does that for accepted versions only.
    pub fn compile(&self, wasm: &[u8], builtin: Option<&str>) -> Result<Plugin, PluginError> {
        let Shape { world, wit_version } = inspect(wasm, SERVED_VERSIONS)?;
        let hash = hex::encode(Sha256::digest(wasm));
        let component = match self.cache.load(&self.engine, &hash) {
            Some(c) => c,
            None => Component::new(&self.engine, wasm).map_err(|e| PluginError::Compile(format!("{e:#}")))?,
        };
        let pre = match (world, wit_version.as_str()) {
            (World::Router, v0_1::VERSION) => Pre::RouterV0_1(self.pre(&component, v0_1::RouterPre::new)?),
            (World::FollowUp, v0_1::VERSION) => Pre::FollowUpV0_1(self.pre(&component, v0_1::FollowUpPre::new)?),
            (World::Feedback, v0_1::VERSION) => Pre::FeedbackV0_1(self.pre(&component, v0_1::FeedbackPre::new)?),
            (World::Router, v0_2::VERSION) => Pre::RouterV0_2(self.pre(&component, v0_2::RouterPre::new)?),
            (World::FollowUp, v0_2::VERSION) => Pre::FollowUpV0_2(self.pre(&component, v0_2::FollowUpPre::new)?),
            (World::Feedback, v0_2::VERSION) => Pre::FeedbackV0_2(self.pre(&component, v0_2::FeedbackPre::new)?),
            (_, other) => {
                return Err(PluginError::UnsupportedVersion(format!(
                    "the component targets switchboard:plugin@{other}; this host serves {}",
                    SERVED_VERSIONS.join(", ")
                )));
            }
        };
        Ok(Plugin {
            meta: PluginMeta { hash, world, wit_version, size: wasm.len(), builtin: builtin.map(String::from) },
            pre: Arc::new(pre),
            component,
        })
    }

    /// Keeps an accepted plugin's compiled code on disk, so a restart or a
    /// reload after eviction does not compile it again.
    pub fn remember(&self, plugin: &Plugin) {
        if !self.cache.contains(&plugin.meta.hash) {
            self.cache.store(&plugin.meta.hash, &plugin.component);
        }
    }

    fn pre<P>(
        &self,
        component: &Component,
        make: impl FnOnce(
            wasmtime::component::InstancePre<HostState>,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<P, String>>,
    ) -> Result<P, PluginError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| PluginError::ForbiddenImport(format!("the component cannot be linked: {e:#}")))?;
        // `make` instantiates once (sandboxed, within the default limits)
        // to type-check the world's export.
        let probe = self.invoke_once(&self.probe_limits, Arc::default(), 0, 0, |store| make(instance_pre, store));
        probe.result.map_err(|failure| match failure {
            Failure::PluginError(why) => PluginError::WrongWorld(why),
            other => PluginError::WrongWorld(format!("instantiating the component failed: {other}")),
        })
    }

    /// Runs `call` in a fresh store with `limits`. Traps, limit hits and
    /// the plugin's own errors come back as a [`Failure`], never a panic.
    ///
    /// A call the host could not give its time to (the machine was too busy
    /// to run it before its deadline) is tried once more: the plugin has
    /// not had its turn yet.
    pub(super) fn invoke<R>(
        &self,
        limits: &PluginLimits,
        config: Arc<BTreeMap<String, String>>,
        now: Millis,
        seed: u64,
        call: impl Fn(&mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> CallReport<R> {
        let first = self.invoke_once(limits, config.clone(), now, seed, &call);
        let Err(Failure::Host(why)) = &first.result else { return first };
        tracing::debug!(%why, "trying a plugin call again");
        let mut second = self.invoke_once(limits, config, now, seed, &call);
        second.duration += first.duration;
        second.logs.splice(0..0, first.logs);
        second
    }

    /// [`Runtime::invoke`], once.
    fn invoke_once<R>(
        &self,
        limits: &PluginLimits,
        config: Arc<BTreeMap<String, String>>,
        now: Millis,
        seed: u64,
        call: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> CallReport<R> {
        // Wait for a pool slot rather than fail the call for the host's limit.
        let _slot = self.slots.acquire();
        let state = HostState::new(now, seed, config, limits.memory_bytes, limits.table_elements);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Bounds what is copied out of the guest per call (its result, each
        // host import's arguments) before the copy: a 100 MB `reason` is
        // refused without the host allocating it.
        store.set_hostcall_fuel(limits.output_bytes.max(MIN_COPY_BUDGET));
        let (start, cpu_start) = (Instant::now(), thread_cpu_time());
        self.cpu_deadline(&mut store, limits.deadline, start, cpu_start);
        let result = match store.set_fuel(limits.fuel) {
            Ok(()) => call(&mut store),
            Err(e) => Err(e),
        };
        let spent = Spent { wall: start.elapsed(), cpu: thread_cpu_time().saturating_sub(cpu_start) };
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data_mut();
        state.drain_stdio();
        let result = match result {
            Ok(Ok(value)) => match outcome::overran(spent, limits, self.tick) {
                Some(failure) => Err(failure),
                None => Ok(value),
            },
            Ok(Err(message)) => Err(Failure::PluginError(outcome::sanitize(&message, 1024))),
            Err(e) => Err(outcome::classify(&e, state.limiter.exceeded.take(), limits, spent)),
        };
        if state.dropped_logs > 0 {
            let n = state.dropped_logs;
            state.logs.push(super::LogLine {
                at: now,
                level: "warn",
                source: "host",
                message: format!("{n} more log lines dropped (limit {} per call)", super::sandbox::MAX_LOG_LINES),
            });
        }
        let logs = std::mem::take(&mut state.logs);
        CallReport { result, fuel_used, duration: spent.wall, logs }
    }
}

impl Runtime {
    /// Makes `deadline` a budget of the call's own CPU time. The epoch
    /// ticker checks in when the wall clock reaches the deadline; if the
    /// call has not had that much CPU yet (the machine was busy with
    /// others), it goes on for the CPU still due. Only a spinning plugin
    /// is stopped at its deadline however loaded the host; a call the host
    /// cannot run at all within [`WALL_BACKSTOP`] deadlines is stopped too,
    /// and `outcome` says it was the host's fault.
    fn cpu_deadline(&self, store: &mut Store<HostState>, deadline: Duration, start: Instant, cpu_start: Duration) {
        let tick = self.tick.as_nanos().max(1);
        let ticks = move |d: Duration| (d.as_nanos().div_ceil(tick) as u64).max(1);
        store.set_epoch_deadline(ticks(deadline) + 1);
        let backstop = (deadline * WALL_BACKSTOP).max(Duration::from_secs(1));
        store.epoch_deadline_callback(move |_| {
            let cpu = thread_cpu_time().saturating_sub(cpu_start);
            if cpu >= deadline || start.elapsed() >= backstop {
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(ticks(deadline - cpu)))
        });
    }
}

/// The least a call may copy out of the guest, whatever the output cap:
/// room for its log lines and printed output (16 KiB each).
pub(super) const MIN_COPY_BUDGET: usize = 1 << 20;

/// How many deadlines of wall-clock time a call may take when the host
/// cannot give it the CPU (see `cpu_deadline`).
const WALL_BACKSTOP: u32 = 20;

/// The pool's slots, as a counting semaphore: callers queue for one
/// instead of failing when every slot is taken.
struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

impl Slots {
    fn new(n: u32) -> Slots {
        Slots { free: Mutex::new(n.max(1)), freed: Condvar::new() }
    }

    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// How instances get their memory, best first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allocation {
    /// Pooled slots whose dirty pages are found with Linux's `PAGEMAP_SCAN`
    /// and reset in place with `memset`: a fresh instance per decision then
    /// takes no page faults and no `madvise` (with its TLB shootdowns), which
    /// was half of a decision's cost. Without the scan, `keep_resident`
    /// would `memset` the lowest bytes whether touched or not, so it is only
    /// used with it.
    PoolingResident,
    Pooling,
    OnDemand,
}

/// Bytes of a slot's memory (and table) reset in place rather than given
/// back to the kernel. Covers what a Rust or JavaScript guest dirties in a
/// decision; pages beyond it are released with `madvise` as usual.
const KEEP_RESIDENT_MEMORY: usize = 16 << 20;
const KEEP_RESIDENT_TABLE: usize = 4096;

fn engine(config: &PluginConfig, allocation: Allocation) -> Result<Engine, PluginError> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.consume_fuel(true);
    c.epoch_interruption(true);
    c.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // One compile, one thread: compiles run on the upload pool's
    // low-priority threads (see `uploads`) and must not spread over every
    // core, where they would compete with decisions.
    c.parallel_compilation(false);
    // A trap's wasm backtrace is kept (only traps pay for it): a deep one
    // tells a stack overflow from a stray memory access (see `outcome`).
    c.wasm_backtrace_max_frames(NonZeroUsize::new(outcome::BACKTRACE_FRAMES));
    if allocation != Allocation::OnDemand {
        let slots = config.instance_slots.max(1);
        let mut pool = PoolingAllocationConfig::default();
        if allocation == Allocation::PoolingResident {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
                .table_keep_resident(KEEP_RESIDENT_TABLE);
        }
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            .max_memories_per_component(4)
            .max_tables_per_component(8)
            .max_core_instances_per_component(64)
            .max_memory_size(config.limits.memory_bytes.max(config.max_memory_bytes))
            .table_elements(config.limits.table_elements.max(config.max_table_elements))
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&c).map_err(|e| PluginError::Engine(format!("{e:#}")))
}

/// Advances the engine's epoch every `tick` until the runtime is dropped.
/// Holds only a weak handle so it never keeps the engine alive.
fn spawn_epoch_ticker(engine: wasmtime::EngineWeak, tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(tick);
            match engine.upgrade() {
                Some(e) => e.increment_epoch(),
                None => return,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker; plugin deadlines will not fire: {e}");
    }
}
