//! Pipeline cost: signed webhook POSTs over loopback to a real
//! `switchboard serve` process with the router, follow-up and feedback
//! plugins active (the demo tenant runs all three built-in defaults), beside
//! its floor in the same run — the same payloads parsed, journaled and made
//! durable by the same binary with nothing applied (`pipeline.enabled =
//! false`).
//!
//! `cargo bench -p switchboard-bench --bench pipeline`
//!
//! For each mode:
//! - acknowledgement latency (p50 / p99) at offered 100 and 1,000
//!   messages/s, one message per POST as Meta sends them when traffic is
//!   light, latency counted from each POST's scheduled time;
//! - the maximum: as fast as 64 connections allow, one message per POST
//!   and 50 per POST (Meta batches under load); for the pipeline the rate
//!   counts until every message is applied (the journal drained), for the
//!   floor until every message is acknowledged;
//! - CPU time per message of the server and of the load generator (both
//!   processes share this machine's cores).
//!
//! Modes alternate over `BENCH_ROUNDS` rounds (default 3) so drift on a
//! shared machine hits both alike; the tables give the median round.
//! `BENCH_QUICK=1` shrinks every run.

use std::time::{Duration, Instant};

use switchboard_bench::load::{self, Hours, Shape};
use switchboard_bench::{Process, own_cpu, pct};

/// The floor, then the pipeline on both of the demo router's paths: a
/// greeting answered by the bot (in hours), and handed to a person with an
/// acknowledgement, a follow-up timer and audit entries (after hours).
const MODES: [(&str, &str, Hours); 3] = [
    ("floor", "false", Hours::Tenant),
    ("pipeline (in hours)", "true", Hours::Open),
    ("pipeline (after hours)", "true", Hours::Closed),
];

#[derive(Clone, Copy)]
struct Run {
    label: &'static str,
    rate: u64,
    messages: usize,
    batch: usize,
}

#[derive(Clone)]
struct Row {
    mode: &'static str,
    run: Run,
    /// Messages per second until acknowledged (floor) or applied (pipeline).
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_cpu_us: f64,
    client_cpu_us: f64,
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let scale = |n: usize| if quick { (n / 10).max(100) } else { n };
    let runs = [
        Run { label: "100/s", rate: 100, messages: scale(3_000), batch: 1 },
        Run { label: "1,000/s", rate: 1_000, messages: scale(20_000), batch: 1 },
        Run { label: "max, 1 per POST", rate: 0, messages: scale(20_000), batch: 1 },
        Run { label: "max, 50 per POST", rate: 0, messages: scale(50_000), batch: 50 },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
    let binary = env!("CARGO_BIN_EXE_sb-serve");
    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=rounds {
        for (mode, enabled, hours) in MODES {
            let server = Process::start(binary, &[("SWITCHBOARD_PIPELINE__ENABLED", enabled)]).expect("server starts");
            rt.block_on(load::pin_hours(&http, &server.url, &server.target("").key, hours))
                .expect("pinning business hours");
            let shape = |batch| Shape { url: server.url.clone(), batch, contacts: 1_000, concurrency: 64 };
            let target = |tag: &str| load::Target { body: Hours::GREETING.into(), ..server.target(tag) };
            // Warm up: connections, plugin instances, sled's caches.
            let warm = target(&format!("warm{round}{mode}"));
            rt.block_on(load::send(&shape(1), &http, &warm, 0, 500)).expect("warm-up");
            if enabled == "true" {
                rt.block_on(load::drain(&shape(1), &http)).expect("drain");
            }
            for run in runs {
                let shape = shape(run.batch);
                let target = target(&format!("{mode}{round}{}", run.label.replace([' ', '/', ',', '(', ')'], "")));
                let posts = load::prepare(&shape, &target, run.messages).expect("payloads");
                let (server_cpu, client_cpu) = (server.cpu(), own_cpu());
                let started = Instant::now();
                let mut acks = rt.block_on(load::send_prepared(&shape, &http, posts, run.rate)).expect("load");
                if enabled == "true" {
                    rt.block_on(load::drain(&shape, &http)).expect("drain");
                }
                let took = started.elapsed();
                let per_message = |d: Duration| d.as_micros() as f64 / run.messages as f64;
                acks.sort_unstable();
                let row = Row {
                    mode,
                    run,
                    throughput: run.messages as f64 / took.as_secs_f64(),
                    p50_ms: pct(&acks, 0.5) as f64 / 1000.0,
                    p99_ms: pct(&acks, 0.99) as f64 / 1000.0,
                    server_cpu_us: per_message(server.cpu().saturating_sub(server_cpu)),
                    client_cpu_us: per_message(own_cpu().saturating_sub(client_cpu)),
                };
                eprintln!(
                    "round {round} {mode:>8} {:>16}: {:>6} msgs, {:>6.0} msg/s, ack p50 {:>6.2} ms p99 {:>7.2} ms, CPU/msg server {:>5.0} µs load {:>4.0} µs",
                    run.label,
                    run.messages,
                    row.throughput,
                    row.p50_ms,
                    row.p99_ms,
                    row.server_cpu_us,
                    row.client_cpu_us
                );
                rows.push(row);
                std::thread::sleep(Duration::from_millis(300));
            }
            server.stop();
        }
    }

    println!("\nMedian of {rounds} alternating rounds (floor, in hours, after hours, floor, …), one process each:\n");
    println!(
        "| mode | offered | messages | msg/s (floor: acknowledged; pipeline: applied) | ack p50 | ack p99 | server CPU / msg | load generator CPU / msg |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let median = |mode: &str, label: &str, f: fn(&Row) -> f64| {
        let mut v: Vec<f64> = rows.iter().filter(|r| r.mode == mode && r.run.label == label).map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    for (mode, ..) in MODES {
        for run in runs {
            println!(
                "| {mode} | {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} µs | {:.0} µs |",
                run.label,
                run.messages,
                median(mode, run.label, |r| r.throughput),
                median(mode, run.label, |r| r.p50_ms),
                median(mode, run.label, |r| r.p99_ms),
                median(mode, run.label, |r| r.server_cpu_us),
                median(mode, run.label, |r| r.client_cpu_us),
            );
        }
    }
    for label in ["max, 1 per POST", "max, 50 per POST"] {
        for (mode, ..) in &MODES[1..] {
            let (floor, full) = (median("floor", label, |r| r.throughput), median(mode, label, |r| r.throughput));
            let (floor_cpu, full_cpu) =
                (median("floor", label, |r| r.server_cpu_us), median(mode, label, |r| r.server_cpu_us));
            println!(
                "\n{label}: the {mode} sustains {full:.0} msg/s = {:.0}% of the floor's {floor:.0} msg/s; server CPU per message {full_cpu:.0} µs vs {floor_cpu:.0} µs (×{:.1})",
                100.0 * full / floor,
                full_cpu / floor_cpu
            );
        }
    }
}
