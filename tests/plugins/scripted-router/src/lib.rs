//! Does what its script says, so one component can play every kind of
//! plugin a test needs: return any decision (valid or not), fail, sleep,
//! recurse, burn time or return huge output.
//!
//! The script is JSON, from the message text when it starts with
//! `script:` (per message), else from the tenant's `script` setting.
use serde::Deserialize;
use switchboard_plugin::router::*;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Script {
    /// Return this decision.
    decision: Option<D>,
    /// Return this error.
    error: Option<String>,
    /// A reason of this many bytes (on a no-reply decision).
    reason_bytes: Option<usize>,
    /// Call WASI's sleep for this long first.
    sleep_ms: Option<u64>,
    /// Poll a WASI clock until it has moved this many ms.
    spin_clock_ms: Option<u64>,
    /// Recurse without end.
    recurse: bool,
    /// Recurse without end, with 4 KiB of locals per frame (on the shadow
    /// stack in linear memory, as a Rust guest keeps arrays).
    recurse_big: bool,
    /// Trap.
    trap: bool,
    /// Print this many bytes to stdout.
    print_bytes: Option<usize>,
    /// Call one WASI import directly (see `raw_wasi`).
    wasi: Option<String>,
}

/// Calls one WASI import the way a hostile guest would; returns what came
/// back, for the reason.
fn raw_wasi(call: &str) -> Result<String, String> {
    use wasi::clocks::{monotonic_clock, wall_clock};
    use wasi::io::poll;
    Ok(match call {
        "subscribe-instant-max" => {
            monotonic_clock::subscribe_instant(u64::MAX).block();
            format!("woke at {}", monotonic_clock::now())
        }
        "subscribe-duration-max" => {
            monotonic_clock::subscribe_duration(u64::MAX).block();
            format!("woke at {}", monotonic_clock::now())
        }
        "poll-many" => {
            let pollables: Vec<_> = (1..200u64).map(|i| monotonic_clock::subscribe_duration(i * 1_000_000_000)).collect();
            let refs: Vec<&poll::Pollable> = pollables.iter().collect();
            let mut ready = 0;
            for _ in 0..200 {
                ready += poll::poll(&refs).len();
            }
            format!("{ready} ready")
        }
        "wall-clock-loop" => {
            let start = wall_clock::now();
            loop {
                let t = wall_clock::now();
                if t.seconds > start.seconds + 10 {
                    break format!("ten seconds passed: {}", t.seconds);
                }
            }
        }
        "random-huge" => format!("{} bytes", wasi::random::random::get_random_bytes(u64::MAX).len()),
        "random-many" => {
            let mut n = 0;
            for _ in 0..10_000 {
                n += wasi::random::random::get_random_bytes(65_536).len();
            }
            format!("{n} bytes")
        }
        "stdin-read" => {
            let stdin = wasi::cli::stdin::get_stdin();
            format!("{:?}", stdin.blocking_read(1 << 30).map(|b| b.len()))
        }
        "stdout-flood" => {
            let out = wasi::cli::stdout::get_stdout();
            let chunk = vec![b'x'; 4096];
            let mut results = Vec::new();
            for _ in 0..64 {
                results.push(out.blocking_write_and_flush(&chunk).is_ok());
            }
            format!("{} writes ok", results.iter().filter(|r| **r).count())
        }
        "stdout-subscribe-block" => {
            let out = wasi::cli::stdout::get_stdout();
            for _ in 0..1000 {
                out.subscribe().block();
            }
            "subscribed".into()
        }
        "random-64" => {
            let bytes = wasi::random::random::get_random_bytes(64);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
        "preopens" => format!("{} directories", wasi::filesystem::preopens::get_directories().len()),
        "environment" => format!("{} variables", wasi::cli::environment::get_environment().len()),
        other => return Err(format!("unknown wasi call {other}")),
    })
}

#[derive(Deserialize)]
struct D {
    needs_reply: bool,
    handler: H,
    acknowledge: Option<R>,
    priority: String,
    respond_within: Option<u64>,
    tags: Vec<String>,
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum H {
    Bot(R),
    Agent(String),
    Team(String),
    Nobody,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum R {
    Text(String),
    Template { name: String, language: String, parameters: Vec<String> },
}

fn reply(r: R) -> Reply {
    match r {
        R::Text(t) => Reply::Text(t),
        R::Template { name, language, parameters } => Reply::Template(Template { name, language, parameters }),
    }
}

#[inline(never)]
fn deep_frames(n: u64) -> u64 {
    let mut frame = [0u8; 4096];
    frame[(n % 4096) as usize] = n as u8;
    let frame = std::hint::black_box(frame);
    std::hint::black_box(deep_frames(n + 1)) + u64::from(frame[(n % 4096) as usize])
}

fn depth(n: u64) -> u64 {
    // Not a tail call: each level keeps a frame.
    std::hint::black_box(depth(n + 1)) + std::hint::black_box(n)
}

struct Scripted;

impl Router for Scripted {
    fn route(input: Input) -> Result<Decision, String> {
        let text = input.message.text.clone().unwrap_or_default();
        let source = match text.strip_prefix("script:") {
            Some(s) => s.to_string(),
            None => config("script").unwrap_or_default(),
        };
        let script: Script = if source.trim().is_empty() {
            Script::default()
        } else {
            serde_json::from_str(&source).map_err(|e| format!("bad script: {e}"))?
        };
        if let Some(ms) = script.sleep_ms {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if let Some(ms) = script.spin_clock_ms {
            let start = std::time::Instant::now();
            while start.elapsed() < std::time::Duration::from_millis(ms) {}
        }
        if script.recurse_big {
            return Ok(Decision::no_reply(deep_frames(0).to_string()));
        }
        if script.recurse {
            return Ok(Decision::no_reply(depth(0).to_string()));
        }
        if script.trap {
            core::arch::wasm32::unreachable();
        }
        if let Some(call) = &script.wasi {
            return raw_wasi(call).map(Decision::no_reply);
        }
        if let Some(n) = script.print_bytes {
            println!("{}", "x".repeat(n));
        }
        if let Some(e) = script.error {
            return Err(e);
        }
        if let Some(n) = script.reason_bytes {
            return Ok(Decision::no_reply("r".repeat(n)));
        }
        let Some(d) = script.decision else { return Ok(Decision::no_reply("no script")) };
        Ok(Decision {
            needs_reply: d.needs_reply,
            handler: match d.handler {
                H::Bot(r) => Handler::Bot(reply(r)),
                H::Agent(a) => Handler::Human(Assignee::Agent(a)),
                H::Team(t) => Handler::Human(Assignee::Team(t)),
                H::Nobody => Handler::Nobody,
            },
            acknowledge: d.acknowledge.map(reply),
            priority: match d.priority.as_str() {
                "low" => Priority::Low,
                "high" => Priority::High,
                "urgent" => Priority::Urgent,
                _ => Priority::Normal,
            },
            respond_within: d.respond_within,
            tags: d.tags,
            reason: d.reason,
        })
    }
}

switchboard_plugin::export_router!(Scripted);
