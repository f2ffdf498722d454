//! What a call did, said plainly: which limit stopped it, whether the
//! plugin or the host is to blame, and text from the guest made safe to
//! show and store.

use std::time::Duration;

use wasmtime::{Trap, WasmBacktrace};

use super::Failure;
use crate::config::PluginLimits;

/// Frames of wasm backtrace kept when a call traps (only then: the happy
/// path pays nothing), enough to see recursion.
pub(super) const BACKTRACE_FRAMES: usize = 32;

/// The time a call took on the wall clock and on its thread's CPU.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spent {
    pub wall: Duration,
    pub cpu: Duration,
}

/// Whether a call stopped at its deadline had the CPU for it: the deadline
/// is a CPU budget (see `Runtime::cpu_deadline`), so a call stopped with
/// less than half of it was stopped by the wall-clock backstop — the
/// machine was busy with others (the host's fault, not the plugin's).
fn had_the_cpu(spent: Spent, limits: &PluginLimits) -> bool {
    spent.cpu * 2 >= limits.deadline
}

/// The failure an error from a call means. `limit` is the memory or table
/// cap the limiter saw hit, if any.
pub(super) fn classify(error: &wasmtime::Error, limit: Option<String>, limits: &PluginLimits, spent: Spent) -> Failure {
    if let Some(limit) = limit {
        return Failure::ResourceLimit(limit);
    }
    if let Some(pool) = error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return Failure::Host(format!("no instance slot was free ({pool}); the decision was not the plugin's fault"));
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::FuelExhausted(limits.fuel),
        Some(Trap::Interrupt) if had_the_cpu(spent, limits) => Failure::Timeout(limits.deadline),
        Some(Trap::Interrupt) => Failure::Host(overloaded(spent, limits)),
        Some(Trap::StackOverflow) => Failure::Trap("stack overflow: the plugin recursed too deep".into()),
        Some(Trap::MemoryOutOfBounds) if deep(error) => Failure::Trap(
            "stack overflow: the plugin recursed until its stack (in linear memory) ran out \
             (reported by the engine as an out-of-bounds memory access)"
                .into(),
        ),
        Some(trap) => Failure::Trap(trap.to_string()),
        // wasmtime's own error type for it is private; its message is the
        // one public trace.
        None if error.to_string().contains("fuel allocated for hostcalls has been exhausted") => {
            Failure::InvalidOutput(format!(
                "the output is larger than the {} bytes a call may return; nothing of it was copied",
                limits.output_bytes.max(super::runtime::MIN_COPY_BUDGET)
            ))
        }
        None => Failure::Trap(sanitize(&format!("{error:#}"), 1024)),
    }
}

/// A call that returned in time for its CPU but not for the wall clock is
/// fine; one that used more CPU than its deadline overran it, even if the
/// epoch check came too late to stop it.
pub(super) fn overran(spent: Spent, limits: &PluginLimits, tick: Duration) -> Option<Failure> {
    (spent.wall > limits.deadline + tick * 2 && spent.cpu > limits.deadline)
        .then_some(Failure::Timeout(limits.deadline))
}

fn overloaded(spent: Spent, limits: &PluginLimits) -> String {
    format!(
        "the host was overloaded: the call had {:?} of CPU in {:?} on the clock (deadline {:?}); \
         not counted against the plugin",
        spent.cpu, spent.wall, limits.deadline
    )
}

/// A trap whose innermost frames are one function calling itself, again
/// and again (a helper like `memset` may sit on top): unbounded recursion.
/// (How deep it gets first depends on its frames' size: a Rust guest's
/// stack in linear memory is 1 MiB, and a few large frames fill it.)
fn deep(error: &wasmtime::Error) -> bool {
    let Some(trace) = error.downcast_ref::<WasmBacktrace>() else { return false };
    let innermost: Vec<u32> = trace.frames().iter().take(16).map(|f| f.func_index()).collect();
    let longest_run = innermost.chunk_by(|a, b| a == b).map(<[u32]>::len).max().unwrap_or(0);
    longest_run >= RECURSION_RUN
}

/// Consecutive frames of one function that read as runaway recursion.
const RECURSION_RUN: usize = 6;

/// Text from a guest, safe to log, store and show: control characters
/// (NUL, escape sequences, bells…) become `\u{…}` escapes, and it is cut
/// to `max` bytes on a character boundary.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
        if out.len() >= max {
            let cut = out.floor_char_boundary(max);
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spent(wall_ms: u64, cpu_ms: u64) -> Spent {
        Spent { wall: Duration::from_millis(wall_ms), cpu: Duration::from_millis(cpu_ms) }
    }

    #[test]
    fn a_deadline_hit_without_the_cpu_is_the_hosts_fault() {
        let limits = PluginLimits::default(); // 50 ms
        let interrupt = wasmtime::Error::from(Trap::Interrupt);
        let busy_host = classify(&interrupt, None, &limits, spent(400, 5));
        assert!(matches!(&busy_host, Failure::Host(why) if why.contains("overloaded")), "{busy_host}");
        assert!(!busy_host.blames_plugin());
        let spinning = classify(&interrupt, None, &limits, spent(52, 50));
        assert_eq!(spinning, Failure::Timeout(limits.deadline));
        assert!(spinning.blames_plugin());
    }

    #[test]
    fn an_overrun_is_a_deadline_hit_only_on_the_plugins_own_cpu() {
        let limits = PluginLimits::default();
        let tick = Duration::from_millis(1);
        assert_eq!(overran(spent(300, 280), &limits, tick), Some(Failure::Timeout(limits.deadline)));
        assert_eq!(overran(spent(300, 3), &limits, tick), None, "descheduled, not slow");
        assert_eq!(overran(spent(20, 20), &limits, tick), None);
    }

    #[test]
    fn control_characters_are_escaped_and_length_is_bounded() {
        assert_eq!(sanitize("bad\0\u{1b}[31mnews\u{7}", 100), "bad\\u{0}\\u{1b}[31mnews\\u{7}");
        assert_eq!(sanitize("line\nnext", 100), "line\nnext");
        let long = sanitize(&"é".repeat(100), 11);
        assert!(long.len() <= 11 + '…'.len_utf8() && long.ends_with('…'), "{long}");
        assert_eq!(sanitize(&"\0".repeat(5000), 20).chars().filter(|c| *c == '\0').count(), 0);
    }
}
