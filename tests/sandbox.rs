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
use switchboard::plugins::{CallReport, Failure, Plugin, RouterInput, Runtime};

struct Sandbox {
    runtime: Arc<Runtime>,
    plugin: Plugin,
    limits: PluginLimits,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Self::with(PluginConfig::default())
    }

    fn with(config: PluginConfig) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
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
            let report =
                runtime.call(&plugin, &limits, settings, &RouterInput { context, message: Default::default() });
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
    let report = sandbox.run(json!({ "sleep_ms": 60_000, "reason_bytes": 3 }));
    assert_eq!(reason(&report), "rrr");
    assert!(report.duration < Duration::from_secs(30), "slept for real: {:?}", report.duration);
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
    // Generous (a loaded machine is slow); what must not happen is a call
    // that waits on the host for seconds, or for ever.
    let bound = Duration::from_secs(10);
    type Expected = Box<dyn Fn(&Result<String, Failure>) -> bool>;
    let cases: Vec<(&str, Expected)> = vec![
        ("subscribe-instant-max", Box::new(|r| r.as_ref().is_ok_and(|s| s.starts_with("woke at")))),
        ("subscribe-duration-max", Box::new(|r| r.is_ok())),
        ("poll-many", Box::new(|r| r.as_deref() == Ok("39800 ready"))),
        // No sleep, so the clock never moves: the budget ends the loop (on a
        // machine too busy to give it the CPU, as the host's fault).
        (
            "wall-clock-loop",
            Box::new(|r| matches!(r, Err(Failure::FuelExhausted(_) | Failure::Timeout(_) | Failure::Host(_)))),
        ),
        ("random-huge", Box::new(|r| matches!(r, Err(Failure::Trap(why)) if why.contains("exceeds limit")))),
        (
            "random-many",
            Box::new(|r| {
                r.is_ok() || matches!(r, Err(Failure::FuelExhausted(_) | Failure::Timeout(_) | Failure::Host(_)))
            }),
        ),
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

/// One tenant's router sleeps a minute on every message; another tenant's
/// messages are decided beside it as if it did not (a real sleep would
/// hold a worker a minute per message). The latencies are printed; the
/// bounds are half a sleep, so a loaded machine still passes.
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
            Some(json!({ "config": { "script": json!({ "sleep_ms": 60_000 }).to_string() } })),
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
        // Decided — or, on a machine too busy to run it in time twice, a
        // fallback the host takes the blame for: never a deadline hit.
        let host_fault = d[0]["cause"].as_str().is_some_and(|c| c.starts_with("host:"));
        assert!(d[0]["outcome"] == "decided" || host_fault, "{}", d[0]);
        let ran = Duration::from_micros(d[0]["duration_us"].as_u64().unwrap());
        assert!(ran < Duration::from_secs(30), "the plugin slept for real: {ran:?}");
        let d = host.decisions_of(API_KEY, &format!("+55119{:08}", 50_000_000 + i)).await;
        demo_latency.push(d[0]["latency_us"].as_u64().unwrap() / 1000);
    }
    demo_latency.sort_unstable();
    eprintln!(
        "the other tenant's latency beside a sleeping plugin: p50 {} ms, max {} ms",
        demo_latency[10], demo_latency[19]
    );
    assert!(demo_latency[19] < 30_000, "another tenant waited for the sleeps: {demo_latency:?}");
}

/// Failures say what happened: a stack overflow (in wasm's stack or in the
/// guest's own, in linear memory) as such, and a plugin's error text with
/// its control characters escaped.
#[test]
fn failures_are_named_for_what_happened_and_plugin_text_is_sanitised() {
    let sandbox = Sandbox::new();
    for script in [json!({ "recurse": true }), json!({ "recurse_big": true })] {
        match sandbox.run(script.clone()).result {
            Err(Failure::Trap(why)) => assert!(why.starts_with("stack overflow"), "{script}: {why}"),
            other => panic!("{script}: {other:?}"),
        }
    }
    match sandbox.run(json!({ "error": "bad\u{0}\u{1b}[31mnews\u{7}" })).result {
        Err(Failure::PluginError(why)) => {
            assert!(!why.chars().any(|c| c.is_control()), "{why:?}");
            assert!(why.contains("bad") && why.contains("news"), "{why:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// More callers than the pool has slots wait for one: no call fails for
/// the host's limit.
#[test]
fn callers_queue_for_instance_slots_instead_of_failing() {
    let config = PluginConfig { instance_slots: 2, ..PluginConfig::default() };
    let sandbox = Arc::new(Sandbox::with(config));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let sandbox = sandbox.clone();
            std::thread::spawn(move || {
                (0..25).filter(|_| sandbox.run(json!({ "reason_bytes": 1 })).result.is_ok()).count()
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 200, "every call got a slot");
}

async fn scripted_tenant(host: &TestHost, id: &str, phone_number_id: &str, secret: &str) -> String {
    let key = host.create_tenant(id, phone_number_id, secret).await;
    let (status, body) = host.upload(&key, "router", guest("scripted_router"), true).await;
    assert_eq!(status, 201, "{body}");
    key
}

async fn router_view(host: &TestHost, key: &str) -> Value {
    host.get_as(key, "/v1/plugins/router").await.1
}

/// A version failing every other call, across many contacts, is suspended;
/// consecutive failures alone would never see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_every_other_call_is_suspended() {
    let host = TestHost::start_with(|c| c.plugins.suspend_after = 4).await;
    let key = scripted_tenant(&host, "flaky", "200000000000011", "flaky-secret").await;
    let now = host.now_secs();
    for n in 0..12 {
        let text = if n % 2 == 0 { r#"script:{"trap":true}"# } else { "oi" };
        let p = text_message(&format!("55119{:08}", 60_000_000 + n), "C", &format!("wamid.half{n}"), text, now);
        host.post_for(&p, "200000000000011", "flaky-secret").await;
        host.settle().await;
    }
    let view = router_view(&host, &key).await;
    let version = &view["versions"][0];
    assert!(version["suspended"].is_object(), "{view}");
    assert!(version["suspended"]["failures"].as_u64() >= Some(4), "{view}");
    assert_eq!(view["running"]["builtin"], "default-router", "the built-in took over");
}

/// One contact whose messages keep failing the version is quarantined —
/// its next decisions take the fallback — and the version stays active
/// for everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_contact_cannot_suspend_a_tenants_plugin() {
    let host = TestHost::start_with(|c| c.plugins.suspend_after = 4).await;
    let key = scripted_tenant(&host, "target", "200000000000012", "target-secret").await;
    let now = host.now_secs();
    let poison = "5511970000000";
    for n in 0..6 {
        let p = text_message(poison, "Attacker", &format!("wamid.poison{n}"), r#"script:{"trap":true}"#, now);
        host.post_for(&p, "200000000000012", "target-secret").await;
        host.settle().await;
    }
    let p = text_message("5511970000001", "Customer", "wamid.customer", "oi", now);
    host.post_for(&p, "200000000000012", "target-secret").await;
    host.settle().await;

    let view = router_view(&host, &key).await;
    let version = &view["versions"][0];
    assert_eq!(version["suspended"], Value::Null, "one contact suspended the version: {view}");
    assert_eq!(version["active"], true);
    let quarantined = version["quarantined_contacts"].as_array().unwrap();
    assert_eq!(quarantined.len(), 1, "{view}");
    assert!(quarantined[0]["cause"].as_str().unwrap().contains("trap"), "{view}");
    let decisions = host.decisions_of(&key, &format!("+{poison}")).await;
    let last = decisions.iter().max_by_key(|d| d["made_at"].as_i64()).unwrap();
    assert!(last["cause"].as_str().unwrap().starts_with("contact quarantined"), "{last}");
    let customer = host.decisions_of(&key, "+5511970000001").await;
    assert_eq!(customer[0]["outcome"], "decided", "everyone else keeps the version");
}

/// A plugin returning 100 MB is refused by the output cap before the host
/// copies any of it.
#[test]
fn an_oversized_output_is_refused_before_it_is_copied() {
    let sandbox = Sandbox::with(PluginConfig {
        limits: PluginLimits { fuel: u64::MAX / 2, deadline: Duration::from_secs(5), ..PluginLimits::default() },
        ..PluginConfig::default()
    });
    let small = sandbox.run(json!({ "reason_bytes": 2000 }));
    assert!(
        matches!(small.result, Err(Failure::InvalidOutput(ref why)) if why.contains("reason is longer")),
        "{:?}",
        small.result
    );
    let report = sandbox.run(json!({ "reason_bytes": 100_000_000 }));
    match &report.result {
        Err(Failure::InvalidOutput(why)) => assert!(why.contains("nothing of it was copied"), "{why}"),
        other => panic!("{other:?}"),
    }
    eprintln!("a 100 MB reason: refused in {:?} (the guest's own time to write it included)", report.duration);
}

/// However a plugin decides, the host sends one contact at most the
/// tenant's cap of automated messages a minute; the rest are suppressed
/// and audited with the rule that fired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_storm_a_contact() {
    let host = TestHost::start().await;
    let (status, _) = host.upload(API_KEY, "router", guest("scripted_router"), true).await;
    assert_eq!(status, 201);
    let bot = json!({ "decision": { "needs_reply": true, "handler": { "bot": { "text": "again!" } },
        "acknowledge": null, "priority": "normal", "respond_within": null, "tags": [], "reason": "always answer" } });
    host.call(
        Method::PUT,
        "/v1/plugins/router/config",
        API_KEY,
        Some(json!({ "config": { "script": bot.to_string() } })),
    )
    .await;
    let (status, _) = host
        .admin(
            Method::PATCH,
            "/admin/v1/tenants/demo",
            Some(json!({ "automation": { "per_contact_per_minute": 3, "per_contact_per_day": 100 } })),
        )
        .await;
    assert_eq!(status, 200);
    for n in 0..6 {
        host.post_payload(&text_message("5511980000001", "Chatty", &format!("wamid.chat{n}"), "oi", host.now_secs()))
            .await;
        host.settle().await;
    }
    let view = host.conversation_of("+5511980000001").await;
    let sent = view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "outbound").count();
    assert_eq!(sent, 3, "the cap holds: {view}");
    let (_, audit) =
        host.get(&format!("/v1/conversations/{}/audit", view["conversation"]["id"].as_str().unwrap())).await;
    let suppressed: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "automation_suppressed")
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(suppressed.len(), 3, "{audit}");
    assert!(suppressed.iter().all(|r| r.contains("storm guard") && r.contains("last minute")), "{suppressed:?}");
}

/// Monday 03:00 in São Paulo: a contact writing three times after hours
/// is acknowledged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_a_conversation_is_acknowledged_once() {
    let host = TestHost::start().await;
    host.clock.set(MONDAY_AFTERNOON_MS - 11 * 3_600_000);
    for (n, text) in ["preciso de ajuda", "alguém aí?", "olá??"].iter().enumerate() {
        let p = text_message("5511980000002", "Night", &format!("wamid.night{n}"), text, host.now_secs());
        host.post_payload(&p).await;
        host.settle().await;
    }
    let view = host.conversation_of("+5511980000002").await;
    let acks: Vec<&Value> =
        view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "outbound").collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    let decisions = view["decisions"].as_array().unwrap();
    assert!(decisions.iter().all(|d| d["decision"]["tags"].as_array().unwrap().contains(&json!("after-hours"))));
    // The default router itself asks only once (the host's guard would
    // stop a second one anyway).
    let asked = decisions.iter().filter(|d| !d["decision"]["acknowledge"].is_null()).count();
    assert_eq!(asked, 1, "{decisions:?}");
}

async fn upload_tagged(host: &TestHost, tag: &str) -> String {
    let wasm = switchboard::plugins::inspect::with_custom_section(&guest("echo_router"), tag);
    let (status, body) = host.upload(API_KEY, "router", wasm, true).await;
    assert_eq!(status, 201, "{body}");
    body["version"]["version"].as_str().unwrap().to_string()
}

/// Each rollback goes one step further back — past suspended and retired
/// versions, down to the built-in — instead of toggling between two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_walks_back_through_the_history() {
    let host = TestHost::start().await;
    let a = upload_tagged(&host, "a").await;
    let b = upload_tagged(&host, "b").await;
    let _c = upload_tagged(&host, "c").await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, record) = host.call(Method::POST, "/v1/plugins/router/rollback", API_KEY, None).await;
        assert_eq!(status, 200, "{record}");
        seen.push(record["version"].as_str().map(String::from));
    }
    assert_eq!(seen, [Some(b), Some(a), None]);
    let (_, view) = host.get("/v1/plugins/router").await;
    assert_eq!(view["running"]["builtin"], "default-router");
    let (status, body) = host.call(Method::POST, "/v1/plugins/router/rollback", API_KEY, None).await;
    assert_eq!(status, 409, "nothing further back: {body}");
}

/// Beyond the retention limit old versions are retired: their record and
/// hash stay, their bytes go, and they cannot be activated; what runs and
/// what a rollback reaches keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_versions_are_retired_beyond_the_retention_limit() {
    let host = TestHost::start_with(|c| c.plugins.max_versions = 2).await;
    let mut hashes = Vec::new();
    for tag in ["v1", "v2", "v3", "v4", "v5"] {
        hashes.push(upload_tagged(&host, tag).await);
        // Go back to the built-in each time: only the newest uploads and
        // what rollback reaches keep their bytes.
        host.call(Method::POST, "/v1/plugins/router/activate", API_KEY, Some(json!({ "version": null }))).await;
    }
    let (_, view) = host.get("/v1/plugins/router").await;
    let retired: Vec<&str> = view["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v["retired_at"].is_null())
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert!(!retired.is_empty(), "{view}");
    assert!(!retired.contains(&hashes[4].as_str()) && !retired.contains(&hashes[3].as_str()), "the newest stay");
    let (status, body) =
        host.call(Method::POST, "/v1/plugins/router/activate", API_KEY, Some(json!({ "version": retired[0] }))).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("upload it again"), "{body}");
    assert_eq!(view["versions"].as_array().unwrap().len(), 5, "records are kept");
}

/// Compiled versions that do not run are kept in memory under a budget;
/// one evicted is reloaded from the on-disk cache when needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_code_in_memory_stays_under_its_budget() {
    let budget = 4 * 1024 * 1024;
    let host = TestHost::start_with(|c| c.plugins.compiled_cache_bytes = budget).await;
    let mut hashes = Vec::new();
    for n in 0..12 {
        hashes.push(upload_tagged(&host, &format!("m{n}")).await);
    }
    let metrics = host.metrics().await;
    let held: usize = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_compiled_plugin_bytes "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("the gauge");
    assert!(held <= budget, "{held} bytes held, budget {budget}");
    // The first, long evicted, activates again (from the disk cache).
    let (status, body) =
        host.call(Method::POST, "/v1/plugins/router/activate", API_KEY, Some(json!({ "version": hashes[0] }))).await;
    assert_eq!(status, 200, "{body}");
    host.post_payload(&text_message("5511980000003", "M", "wamid.m0", "oi", host.now_secs())).await;
    host.settle().await;
    assert_eq!(host.decisions_of(API_KEY, "+5511980000003").await[0]["plugin"]["version"], hashes[0].as_str());
}

/// A plugin's randomness is a proper stream seeded from its input: the
/// same input gives the same bytes (replays hold), another message other
/// bytes, and the stream does not repeat a short seed.
#[test]
fn randomness_is_a_seeded_stream() {
    let sandbox = Sandbox::new();
    let draw = |message_id: &str| {
        let settings = Arc::new(BTreeMap::from([("script".to_string(), json!({ "wasi": "random-64" }).to_string())]));
        let context = switchboard::context::Context { tenant: "t".into(), ..Default::default() };
        let message = switchboard::crm::Message { id: message_id.into(), ..Default::default() };
        let input = RouterInput { context, message };
        let report = sandbox.runtime.call(&sandbox.plugin, &sandbox.limits, settings, &input);
        report.result.expect("a decision").reason
    };
    let (a, again, b) = (draw("wamid.1"), draw("wamid.1"), draw("wamid.2"));
    assert_eq!(a, again, "same input, same bytes");
    assert_ne!(a, b, "another message, other bytes");
    let bytes = hex::decode(&a).unwrap();
    assert_ne!(bytes[..8], bytes[8..16], "not a repeated 8-byte seed: {a}");
}

/// The cheap checks run before compiling, and nothing refused is cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_refused_before_compiling_and_not_cached() {
    let host = TestHost::start().await;
    let wasm = guest("net_router");
    let started = std::time::Instant::now();
    let (status, body) = host.upload(API_KEY, "router", wasm.clone(), false).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("forbidden_import")), "{body}");
    eprintln!("refused in {:?}", started.elapsed());
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&wasm));
    let cache = host.dir.path().join("plugin-cache");
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(!cached.iter().any(|f| f.starts_with(&hash)), "a refused component was cached: {cached:?}");
    assert!(!cached.is_empty(), "the built-ins are cached in {}", cache.display());
}

/// Uploads compile on their own low-priority thread behind a bounded
/// queue: one that takes longer than `upload_wait` is answered `202` with
/// where to follow it; a tenant that already has `uploads_per_tenant`
/// waiting is refused with `429`; and the compile thread runs at nice 10,
/// as `/proc` (what `top` reads) shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_queue_for_a_low_priority_compile_thread_with_a_cap_per_tenant() {
    let host = TestHost::start_with(|c| {
        c.plugins.upload_wait = Duration::ZERO;
        c.plugins.compile_threads = 1;
        c.plugins.uploads_per_tenant = 2;
    })
    .await;
    // Six distinct versions at once; the one compile thread takes them one
    // at a time, far slower than six requests arrive over loopback.
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..6 {
        let wasm = switchboard::plugins::inspect::with_custom_section(&guest("echo_router"), &format!("queued-{n}"));
        let request = host.http.put(format!("{}/v1/plugins/router", host.base)).bearer_auth(API_KEY).body(wasm);
        sends.spawn(async move {
            let response = request.send().await.expect("upload");
            let location = response.headers().get("location").map(|l| l.to_str().unwrap_or_default().to_string());
            (response.status().as_u16(), location, response.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let answers = sends.join_all().await;
    eprintln!("six uploads at once: {:?}", answers.iter().map(|(s, ..)| s).collect::<Vec<_>>());
    let refused = answers.iter().filter(|(s, _, b)| *s == 429 && b["error"]["code"] == "uploads_busy").count();
    assert!(refused >= 1, "a tenant's third waiting upload is refused: {answers:?}");
    let mut followed = 0;
    for (status, location, body) in answers.iter().filter(|(s, ..)| *s != 429) {
        assert_eq!(*status, 202, "{body}");
        assert!(["queued", "compiling"].contains(&body["state"].as_str().unwrap_or_default()), "{body}");
        let location = location.clone().expect("a 202 says where to follow the upload");
        assert_eq!(location, format!("/v1/plugins/uploads/{}", body["id"].as_str().unwrap()));
        let done = wait_for("the upload to finish", || async {
            let (_, view) = host.get(&location).await;
            (view["state"] == "accepted" || view["state"] == "rejected").then_some(view)
        })
        .await;
        assert_eq!(done["state"], "accepted", "{done}");
        followed += 1;
    }
    assert!(followed >= 1, "{answers:?}");

    // Every compile thread in this process runs at nice 10. (Other tests
    // start servers meanwhile: a thread just spawned sets its nice value
    // as its first step, so this waits for the condition.)
    wait_for("every compile thread at nice 10", || async { compile_threads_at_nice_10().then_some(()) }).await;
}

/// Whether this process has compile threads and all run at nice 10.
fn compile_threads_at_nice_10() -> bool {
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("plugin-compile") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis start at the 3rd;
        // the nice value is the 19th (proc(5)).
        let nice = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(16).map(String::from));
        if nice.as_deref() != Some("10") {
            return false;
        }
        found = true;
    }
    found
}
