//! What a plugin instance may touch: nothing but its input, two host
//! functions, and stub WASI that grants no capability.
//!
//! A std Rust guest imports a dozen WASI interfaces even if it never uses
//! them, so WASI is linked — but with no preopened directories, no
//! environment, no arguments, no network, and randomness from a PRNG
//! seeded from the input. A refused capability reaches the guest as an
//! error value, never as access.
//!
//! Time is virtual. The clocks start at the decision's `now` (wall) and 0
//! (monotonic) and move only when the guest sleeps: `subscribe-duration`
//! and `subscribe-instant` return a pollable that is ready at once and
//! advance the clocks by the time asked for. So no guest call ever waits
//! on the host — a `std::thread::sleep` returns immediately — the
//! deadline measures only the guest's own work, and a replay sees the
//! same times.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::LogLine;
use crate::clock::Millis;

/// Most log lines kept from one call; more are counted, not stored.
pub const MAX_LOG_LINES: usize = 64;
/// Longest log line kept, in bytes.
pub const MAX_LOG_LINE: usize = 2048;
/// What a call may print to stdout and to stderr, each; a write past it
/// fails in the guest (its stream is closed), it does not trap the host.
pub const STDIO_CAPTURE: usize = 16 * 1024;
/// Most random bytes one `get-random-bytes` call may ask for: generating
/// them is the host's time, outside the guest's deadline.
const MAX_RANDOM_BYTES: u64 = 64 * 1024;

/// Per-store state: one per call, dropped after it.
pub struct HostState {
    /// Built on the guest's first WASI call: most decisions make none, and
    /// building a context is a twentieth of a decision's cost.
    wasi: Option<Wasi>,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    config: Arc<BTreeMap<String, String>>,
    pub(super) logs: Vec<LogLine>,
    pub(super) dropped_logs: usize,
    now: Millis,
    seed: u64,
    time: VirtualTime,
}

/// The WASI context and the pipes that capture the guest's stdout/stderr.
struct Wasi {
    ctx: WasiCtx,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Wasi {
    /// No capability granted: no files, environment, arguments or network,
    /// virtual clocks from `now`, randomness from `seed`.
    fn new(now: Millis, seed: u64, time: &VirtualTime) -> Wasi {
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE);
        let ctx = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(VirtualWallClock { start: now, time: time.clone() })
            .monotonic_clock(VirtualMonotonicClock(time.clone()))
            .secure_random(StdRng::seed_from_u64(seed))
            .insecure_random(StdRng::seed_from_u64(seed.rotate_left(32) ^ 0x5bd1_e995))
            .insecure_random_seed(u128::from(seed) << 64 | u128::from(!seed))
            .max_random_size(MAX_RANDOM_BYTES)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        Wasi { ctx, stdout, stderr }
    }
}

impl HostState {
    pub fn new(
        now: Millis,
        seed: u64,
        config: Arc<BTreeMap<String, String>>,
        memory_bytes: usize,
        table_elements: usize,
    ) -> Self {
        HostState {
            wasi: None,
            table: ResourceTable::new(),
            limiter: Limiter { memory_bytes, table_elements, exceeded: None },
            config,
            logs: Vec::new(),
            dropped_logs: 0,
            now,
            seed,
            time: VirtualTime::default(),
        }
    }

    pub(super) fn push_log(&mut self, level: &'static str, source: &'static str, message: &str) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.dropped_logs += 1;
            return;
        }
        let cut = message.floor_char_boundary(MAX_LOG_LINE);
        let mut shown = message[..cut].to_string();
        if cut < message.len() {
            shown.push('…');
        }
        self.logs.push(LogLine { at: self.now, level, source, message: shown });
    }

    pub(super) fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    /// Moves what the guest printed into its log lines.
    pub(super) fn drain_stdio(&mut self) {
        let Some(wasi) = &self.wasi else { return };
        for (source, pipe) in [("stdout", wasi.stdout.clone()), ("stderr", wasi.stderr.clone())] {
            let bytes = pipe.contents();
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let level = if source == "stderr" { "warn" } else { "info" };
                self.push_log(level, source, line);
            }
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (now, seed, time) = (self.now, self.seed, &self.time);
        let wasi = self.wasi.get_or_insert_with(|| Wasi::new(now, seed, time));
        WasiCtxView { ctx: &mut wasi.ctx, table: &mut self.table }
    }
}

/// Memory and table caps that remember which one was hit, so the host can
/// say "memory limit" rather than "unreachable".
pub struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    pub(super) exceeded: Option<String>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            let msg = format!("memory limit: the plugin asked for {desired} bytes, the cap is {}", self.memory_bytes);
            self.exceeded = Some(msg.clone());
            return Err(wasmtime::Error::msg(msg));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            let msg =
                format!("table limit: the plugin asked for {desired} elements, the cap is {}", self.table_elements);
            self.exceeded = Some(msg.clone());
            return Err(wasmtime::Error::msg(msg));
        }
        Ok(true)
    }
}

/// Nanoseconds the guest has slept during one call.
#[derive(Clone, Default)]
pub(super) struct VirtualTime(Arc<AtomicU64>);

impl VirtualTime {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Moves time forward to `when` (never back).
    fn advance_to(&self, when: u64) {
        self.0.fetch_max(when, Ordering::Relaxed);
    }
}

/// The decision's `now`, plus what the guest slept.
struct VirtualWallClock {
    start: Millis,
    time: VirtualTime,
}

impl HostWallClock for VirtualWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.start.max(0) as u64).saturating_add(Duration::from_nanos(self.time.now()))
    }
}

/// Starts at 0; moves only when the guest sleeps.
struct VirtualMonotonicClock(VirtualTime);

impl HostMonotonicClock for VirtualMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.now()
    }
}

/// Replaces WASI's `monotonic-clock` (linked by `wasmtime-wasi`, whose
/// pollables wait in real time) with the virtual one. Call after linking
/// WASI, with shadowing allowed.
pub(super) fn link_virtual_clock(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    monotonic_clock::add_to_linker::<HostState, VirtualClock>(linker, |s| VirtualClockView {
        table: &mut s.table,
        time: &s.time,
    })
}

struct VirtualClock;

impl HasData for VirtualClock {
    type Data<'a> = VirtualClockView<'a>;
}

struct VirtualClockView<'a> {
    table: &'a mut ResourceTable,
    time: &'a VirtualTime,
}

impl VirtualClockView<'_> {
    fn ready(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(Ready)?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }
}

impl monotonic_clock::Host for VirtualClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(self.time.now())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        self.time.advance_to(when);
        self.ready()
    }

    fn subscribe_duration(&mut self, duration: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        self.time.advance_to(self.time.now().saturating_add(duration));
        self.ready()
    }
}

/// A pollable that is always ready: a sleep that has already happened.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}
