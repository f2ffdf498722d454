//! What a plugin instance may touch: nothing but its input, two host
//! functions, and stub WASI that grants no capability.
//!
//! A std Rust guest imports a dozen WASI interfaces even if it never uses
//! them, so WASI is linked — but with no preopened directories, no
//! environment, no arguments, no network, a clock frozen at the decision's
//! `now` and randomness seeded from the input. A refused capability reaches
//! the guest as an error value, never as access.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::LogLine;
use crate::clock::Millis;

/// Most log lines kept from one call; more are counted, not stored.
pub const MAX_LOG_LINES: usize = 64;
/// Longest log line kept, in bytes.
pub const MAX_LOG_LINE: usize = 2048;
const STDIO_CAPTURE: usize = 16 * 1024;

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
}

/// The WASI context and the pipes that capture the guest's stdout/stderr.
struct Wasi {
    ctx: WasiCtx,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Wasi {
    /// No capability granted: no files, environment, arguments or network,
    /// the clock frozen at `now`, randomness from `seed`.
    fn new(now: Millis, seed: u64) -> Wasi {
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE);
        let seed_bytes = seed.to_le_bytes().to_vec();
        let ctx = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FrozenWallClock(now))
            .monotonic_clock(FrozenMonotonicClock)
            .secure_random(wasmtime_wasi::Deterministic::new(seed_bytes.clone()))
            .insecure_random(wasmtime_wasi::Deterministic::new(seed_bytes))
            .insecure_random_seed(u128::from(seed))
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
        }
    }

    pub(super) fn push_log(&mut self, level: &'static str, source: &'static str, message: &str) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.dropped_logs += 1;
            return;
        }
        let mut message = message.to_string();
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.logs.push(LogLine { at: self.now, level, source, message });
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
        let (now, seed) = (self.now, self.seed);
        let wasi = self.wasi.get_or_insert_with(|| Wasi::new(now, seed));
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

/// The wall clock reads the decision's `now`, always.
struct FrozenWallClock(Millis);

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.max(0) as u64)
    }
}

/// A monotonic clock that does not move: plugins measure nothing.
struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}
