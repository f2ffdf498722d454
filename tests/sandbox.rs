//! The sandbox against a hostile tenant: every way a guest can spend time
//! or host resources, through every WASI import it can reach, stays inside
//! its own budget — and never blocks a host thread.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use switchboard::config::{PluginConfig, PluginLimits};
use switchboard::plugins::{CallReport, Failure, Plugin, Runtime};

struct Sandbox {
    runtime: Arc<Runtime>,
    plugin: Plugin,
    limits: PluginLimits,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let config = PluginConfig::default();
        let runtime = Arc::new(Runtime::new(&config, dir.path()).unwrap());
        let plugin = runtime.compile(&guest("scripted_router"), None).unwrap();
        Sandbox { runtime, plugin, limits: config.limits, _dir: dir }
    }

    /// Runs the scripted router with `script`, on another thread: a call
    /// that blocks its thread fails the test after 30 s instead of hanging.
    fn run(&self, script: Value) -> CallReport<switchboard::model::RoutingDecision> {
        let (runtime, plugin, limits) = (self.runtime.clone(), self.plugin.clone(), self.limits.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let settings = Arc::new(BTreeMap::from([("script".to_string(), script.to_string())]));
            let context = switchboard::context::Context { now: MONDAY_AFTERNOON_MS, ..Default::default() };
            let report = runtime.route(&plugin, &limits, settings, &context, &Default::default());
            let _ = tx.send(report);
        });
        rx.recv_timeout(Duration::from_secs(30)).expect("the call blocked its thread for 30 s")
    }
}

fn reason(report: &CallReport<switchboard::model::RoutingDecision>) -> String {
    match &report.result {
        Ok(d) => d.reason.clone(),
        Err(f) => panic!("expected a decision, got {f}"),
    }
}

/// A sleep returns at once against virtual time; the decision goes on.
#[test]
fn a_sleep_returns_at_once_and_advances_only_the_guests_clock() {
    let sandbox = Sandbox::new();
    let report = sandbox.run(json!({ "sleep_ms": 5000, "reason_bytes": 3 }));
    assert_eq!(reason(&report), "rrr");
    assert!(report.duration < Duration::from_millis(2500), "slept for real: {:?}", report.duration);
    // The clocks moved by exactly the time slept (and only then).
    let woke = reason(&sandbox.run(json!({ "wasi": "subscribe-duration-max" })));
    assert_eq!(woke, format!("woke at {}", u64::MAX));
}

/// Each WASI import a guest can reach, called the way a hostile guest
/// would: none blocks the host, none escapes the budget, and each ends as
/// documented (a value, or a failure that says what happened).
#[test]
fn every_reachable_wasi_import_stays_within_the_budget() {
    let sandbox = Sandbox::new();
    let bound = sandbox.limits.deadline * 20;
    let cases: Vec<(&str, Box<dyn Fn(&Result<String, Failure>) -> bool>)> = vec![
        ("subscribe-instant-max", Box::new(|r| r.as_ref().is_ok_and(|s| s.starts_with("woke at")))),
        ("subscribe-duration-max", Box::new(|r| r.is_ok())),
        ("poll-many", Box::new(|r| r.as_deref() == Ok("39800 ready"))),
        // No sleep, so the clock never moves: the budget ends the loop.
        ("wall-clock-loop", Box::new(|r| matches!(r, Err(Failure::FuelExhausted(_) | Failure::Timeout(_))))),
        ("random-huge", Box::new(|r| matches!(r, Err(Failure::Trap(why)) if why.contains("exceeds limit")))),
        ("random-many", Box::new(|r| r.is_ok() || matches!(r, Err(Failure::FuelExhausted(_) | Failure::Timeout(_))))),
        ("stdin-read", Box::new(|r| r.as_ref().is_ok_and(|s| s.starts_with("Err")))),
        ("stdout-flood", Box::new(|r| r.is_ok() || matches!(r, Err(Failure::Trap(_))))),
        ("stdout-subscribe-block", Box::new(|r| r.as_deref() == Ok("subscribed"))),
        ("preopens", Box::new(|r| r.as_deref() == Ok("0 directories"))),
        ("environment", Box::new(|r| r.as_deref() == Ok("0 variables"))),
    ];
    for (call, expected) in cases {
        let report = sandbox.run(json!({ "wasi": call }));
        let outcome = report.result.as_ref().map(|d| d.reason.clone()).map_err(Clone::clone);
        eprintln!("{call}: {outcome:?} in {:?}", report.duration);
        assert!(expected(&outcome), "{call}: {outcome:?}");
        assert!(report.duration < bound, "{call} took {:?}", report.duration);
    }
}

/// One tenant's router sleeps five seconds on every message; another
/// tenant's messages are decided as fast as ever beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_plugin_sleeps_does_not_slow_another_tenant() {
    let host = TestHost::start().await;
    let sleepy = host.create_tenant("sleepy", "200000000000009", "sleepy-secret").await;
    let (status, body) = host.upload(&sleepy, "router", guest("scripted_router"), true).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = host
        .call(
            Method::PUT,
            "/v1/plugins/router/config",
            &sleepy,
            Some(json!({ "config": { "script": json!({ "sleep_ms": 5000 }).to_string() } })),
        )
        .await;
    assert_eq!(status, 200);
    let now = host.now_secs();
    let host = &host;
    let posts = (0..20).map(|i| async move {
        let p = text_message(&format!("55119{:08}", 40_000_000 + i), "S", &format!("wamid.sleepy{i}"), "oi", now);
        host.post_for(&p, "200000000000009", "sleepy-secret").await;
        let p = text_message(&format!("55119{:08}", 50_000_000 + i), "D", &format!("wamid.demo{i}"), "oi", now);
        host.post_payload(&p).await;
    });
    futures::future::join_all(posts).await;
    host.settle().await;

    let mut demo_latency = Vec::new();
    for i in 0..20 {
        let d = host.decisions_of(&sleepy, &format!("+55119{:08}", 40_000_000 + i)).await;
        assert_eq!(d[0]["outcome"], "decided", "{}", d[0]);
        let ran = Duration::from_micros(d[0]["duration_us"].as_u64().unwrap());
        assert!(ran < Duration::from_millis(2500), "the plugin slept for real: {ran:?}");
        let d = host.decisions_of(API_KEY, &format!("+55119{:08}", 50_000_000 + i)).await;
        demo_latency.push(d[0]["latency_us"].as_u64().unwrap() / 1000);
    }
    demo_latency.sort_unstable();
    eprintln!(
        "the other tenant's latency beside a sleeping plugin: p50 {} ms, max {} ms",
        demo_latency[10], demo_latency[19]
    );
    assert!(demo_latency[19] < 2500, "another tenant waited for the sleeps: {demo_latency:?}");
}
