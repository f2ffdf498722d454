//! Property-based fuzzing of everything that parses outside input, on
//! stable Rust (proptest): webhook bodies (parser and the whole server),
//! phone numbers, plugin outputs lifted from a real component, and
//! configuration. Each asserts no panic and the documented error for each
//! class of bad input. Inputs that once broke the host are kept in
//! `tests/fuzz-corpus/` and replayed first, every run; proptest keeps the
//! ones it shrinks to in `tests/fuzz.proptest-regressions` (commit it).
//!
//! Runs are seeded, so CI repeats itself. For a longer hunt:
//! `FUZZ_SEED=random FUZZ_CASES=20 cargo test --release --test fuzz`
//! (FUZZ_CASES multiplies every test's number of cases).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, RngSeed, TestRng, TestRunner};
use serde_json::{Value, json};
use support::*;
use switchboard::ingest::{IngestError, payload};
use switchboard::phone::normalize;
use switchboard::plugins::{Failure, RouterInput, Runtime};

/// `cases` (times `FUZZ_CASES`), seeded unless `FUZZ_SEED=random`.
fn fuzz_config(cases: u32) -> RunnerConfig {
    let factor: u32 = std::env::var("FUZZ_CASES").ok().and_then(|f| f.parse().ok()).unwrap_or(1);
    let rng_seed = match std::env::var("FUZZ_SEED").as_deref() {
        Ok("random") => RngSeed::Random,
        Ok(n) => RngSeed::Fixed(n.parse().unwrap_or(20_261_202)),
        Err(_) => RngSeed::Fixed(20_261_202),
    };
    RunnerConfig { cases: cases.saturating_mul(factor), rng_seed, ..RunnerConfig::default() }
}

fn corpus(dir: &str) -> Vec<(String, Vec<u8>)> {
    let path = workspace_root().join("tests/fuzz-corpus").join(dir);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn samples() -> Vec<Value> {
    let dir = workspace_root().join("examples/payloads");
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
}

/// A JSON value of the kinds that break parsers: huge and negative
/// numbers, numbers as strings, control characters, long strings, empty
/// and nested containers.
fn hostile_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[0-9]{0,25}".prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        "[\\x00-\\x1f]{1,8}".prop_map(Value::from),
        (0usize..20_000).prop_map(|n| Value::from("é".repeat(n))),
        Just(json!("9223372036854775")),
        Just(json!("-1")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer to a value inside `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| pointers(c, format!("{at}/{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
}

/// A sample webhook body with a few of its values replaced or removed.
fn mutated_body() -> impl Strategy<Value = Vec<u8>> {
    let samples = samples();
    (0..samples.len(), prop::collection::vec((any::<prop::sample::Index>(), hostile_json(), any::<bool>()), 1..4))
        .prop_map(move |(which, edits)| {
            let mut body = samples[which].clone();
            for (index, replacement, remove) in edits {
                let mut all = Vec::new();
                pointers(&body, String::new(), &mut all);
                let target = index.get(&all).clone();
                if target.is_empty() {
                    continue;
                }
                let (parent, key) = target.rsplit_once('/').unwrap_or(("", &target));
                match body.pointer_mut(parent) {
                    Some(Value::Object(m)) if remove => {
                        m.remove(key);
                    }
                    Some(Value::Object(m)) => {
                        m.insert(key.to_string(), replacement);
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(i) = key.parse::<usize>() {
                            a[i] = replacement;
                        }
                    }
                    _ => {}
                }
            }
            serde_json::to_vec(&body).unwrap()
        })
}

/// The parser's only errors are the documented two; anything it accepts
/// has plausible times and ids, and anything it cannot read it names.
fn check_parse(body: &[u8]) -> Result<(), TestCaseError> {
    let now = 1_795_453_200_000;
    match payload::parse(body, now) {
        Ok(parsed) => {
            for change in &parsed.changes {
                for m in &change.messages {
                    prop_assert!(m.at >= 1_230_768_000_000 && m.at <= now + 86_400_000, "time {}", m.at);
                    prop_assert!(!m.wamid.is_empty() && !m.lane().is_empty());
                }
                for s in &change.statuses {
                    prop_assert!(s.at >= 1_230_768_000_000 && s.at <= now + 86_400_000);
                }
            }
            // What it could not read, it says where and why.
            for u in &parsed.unreadable {
                prop_assert!(!u.reason.is_empty() && u.path.starts_with("entry["), "{u:?}");
            }
        }
        Err(IngestError::MalformedJson(_) | IngestError::NotANotification(_)) => {}
        Err(other) => prop_assert!(false, "undocumented parse error {other:?}"),
    }
    Ok(())
}

#[test]
fn the_webhook_parser_never_panics_and_fails_only_in_documented_ways() {
    for (name, body) in corpus("webhooks") {
        check_parse(&body).unwrap_or_else(|e| panic!("corpus {name}: {e}"));
    }
    let mut runner = TestRunner::new(fuzz_config(3000));
    runner.run(&mutated_body(), |body| check_parse(&body)).unwrap();
    // Arbitrary bytes too.
    runner.run(&prop::collection::vec(any::<u8>(), 0..512), |body| check_parse(&body)).unwrap();
}

/// Mutated bodies over real HTTP, signed as Meta would sign them: the
/// server answers each with a documented status, never a 5xx, applies or
/// quarantines what it acknowledged without a panic, and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_every_mutated_webhook_and_keeps_serving() {
    let host = TestHost::start().await;
    let mut bodies: Vec<Vec<u8>> = corpus("webhooks").into_iter().map(|(_, b)| b).collect();
    let mut runner =
        TestRunner::new_with_rng(RunnerConfig::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let strategy = mutated_body();
    let mut restamped = 0;
    while bodies.len() < 400 {
        let mut body = strategy.new_tree(&mut runner).unwrap().current();
        // Half of them with plausible times, so they reach the pipeline.
        if restamped % 2 == 0
            && let Ok(mut v) = serde_json::from_slice::<Value>(&body)
        {
            payload::restamp(&mut v, Some(host.now_secs()), true);
            body = serde_json::to_vec(&v).unwrap();
        }
        restamped += 1;
        bodies.push(body);
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for body in &bodies {
        let (status, answer) = host.post_webhook(body).await;
        assert!(
            // 401/429: a mutation that removes every phone-number id leaves
            // a body only an operator secret may sign.
            [200, 400, 401, 413, 429].contains(&status),
            "status {status} ({answer}) for {}",
            String::from_utf8_lossy(body)
        );
        if status != 200 {
            assert!(answer["error"]["code"].is_string(), "the error shape: {answer}");
        }
        *statuses.entry(status).or_default() += 1;
    }
    host.settle().await;
    let metrics = host.metrics().await;
    let panics: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("switchboard_quarantined_total") && l.contains("cause=\"panic\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let quarantined = host.get("/healthz").await.1["quarantined"].as_u64().unwrap_or(0);
    eprintln!(
        "fuzz: {} requests, statuses {statuses:?}, 5xx 0, quarantined {quarantined}, panics {panics}",
        bodies.len()
    );
    assert_eq!(panics, 0, "a webhook made the pipeline panic");
    // Still serving.
    let (status, _) =
        host.post_payload(&text_message("5511987650000", "Ok", "wamid.after-fuzz", "oi", host.now_secs())).await;
    assert_eq!(status, 200);
    host.settle().await;
    assert!(host.contact("+5511987650000").await.is_some());
}

fn regions() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["BR", "US", "DE", "IT", "IN", "MX", "AR", "GB", "JP", "AU", "FR", "ES", "CO"])
            .prop_map(String::from),
        "[A-Za-z]{0,3}",
    ]
}

fn written_numbers() -> impl Strategy<Value = String> {
    prop_oneof!["[+]?[0-9 ()./-]{0,24}", "(\\+|00|011)?[1-9][0-9]{6,14}( ?(ext\\.?|x|#) ?[0-9]{1,5})?", "\\PC{0,30}",]
}

proptest! {
    #![proptest_config(fuzz_config(2000))]

    /// A number is refused, or it becomes `+`, a country code and a
    /// national number of at most 17 digits (libphonenumber's bound; German
    /// numbers run longer than E.164's 15), that reads back as itself in
    /// any region.
    #[test]
    fn phone_numbers_normalise_to_stable_e164_or_a_clear_error(written in written_numbers(), region in regions()) {
        match normalize(&written, &region) {
            Ok(phone) => {
                let digits = phone.e164.strip_prefix('+').expect("E.164 starts with +");
                prop_assert!(digits.len() <= 20 && digits.len() >= 7, "{}", phone.e164);
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
                for other in ["US", "BR", "DE", "IN"] {
                    prop_assert_eq!(&normalize(&phone.e164, other).map(|p| p.e164).ok(), &Some(phone.e164.clone()));
                }
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("is not a phone number"), "{}", text);
                prop_assert!(text.len() < 400, "the error stays short: {}", text.len());
            }
        }
    }

    #[test]
    fn whatsapp_ids_never_panic(wa_id in "[0-9]{0,20}|\\PC{0,20}") {
        if let Ok(p) = switchboard::phone::normalize_wa_id(&wa_id) {
            prop_assert!(p.e164.starts_with('+'));
        }
    }
}

fn reply_json() -> impl Strategy<Value = Value> {
    let text = prop_oneof!["\\PC{0,50}", "[\\x00-\\x1f ]{0,4}", (4090usize..4100).prop_map(|n| "a".repeat(n))];
    prop_oneof![
        text.prop_map(|t| json!({ "text": t })),
        ("[a-z_]{0,20}|\\PC{0,10}", "[a-z_A-Z]{0,16}", prop::collection::vec("\\PC{0,30}", 0..24)).prop_map(
            |(name, language, parameters)| json!({ "template": { "name": name, "language": language, "parameters": parameters } })
        ),
    ]
}

/// Any decision a plugin could return, plausible or not.
fn decision_json() -> impl Strategy<Value = Value> {
    let handler = prop_oneof![
        reply_json().prop_map(|r| json!({ "bot": r })),
        "\\PC{0,140}".prop_map(|a| json!({ "agent": a })),
        "[\\x00-\\x1f]{0,3}[a-z]{0,3}".prop_map(|t| json!({ "team": t })),
        Just(json!("nobody")),
    ];
    (
        any::<bool>(),
        handler,
        prop::option::of(reply_json()),
        prop::sample::select(vec!["low", "normal", "high", "urgent"]),
        prop::option::of(any::<u64>()),
        prop::collection::vec("\\PC{0,70}", 0..20),
        prop_oneof!["\\PC{0,60}", (1000usize..70_000).prop_map(|n| "r".repeat(n))],
    )
        .prop_map(|(needs_reply, handler, acknowledge, priority, respond_within, tags, reason)| {
            json!({ "decision": { "needs_reply": needs_reply, "handler": handler, "acknowledge": acknowledge,
                "priority": priority, "respond_within": respond_within, "tags": tags, "reason": reason } })
        })
}

/// Whatever a real component returns is lifted from WIT and validated:
/// the host gets a decision it can act on, or a fallback with the reason —
/// never a panic.
#[test]
fn plugin_outputs_lifted_from_a_component_are_valid_or_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = switchboard::config::PluginConfig::default();
    let runtime = Runtime::new(&config, dir.path()).unwrap();
    let plugin = runtime.compile(&guest("scripted_router"), None).unwrap();
    let limits = config.limits.clone();
    let input = RouterInput::default();
    let mut runner = TestRunner::new(fuzz_config(400));
    runner
        .run(&decision_json(), |script| {
            let settings = Arc::new(BTreeMap::from([("script".to_string(), script.to_string())]));
            let report = runtime.call(&plugin, &limits, settings, &input);
            match report.result {
                Ok(d) => {
                    prop_assert!(d.reason.len() <= 1024);
                    prop_assert!(
                        d.tags.len() <= 16 && d.tags.iter().all(|t| !t.is_empty() && !t.chars().any(char::is_control))
                    );
                    prop_assert!(d.respond_within_ms.is_none_or(|ms| ms <= 30 * 86_400_000));
                }
                Err(Failure::InvalidOutput(why)) => prop_assert!(!why.is_empty()),
                Err(other) => prop_assert!(false, "not an output failure: {other}"),
            }
            Ok(())
        })
        .unwrap();
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,20}".prop_map(|s| format!("{s:?}")),
        "[0-9]{1,4}(ms|s|m|h|d|x)?".prop_map(|s| format!("{s:?}")),
        Just("[]".to_string()),
        Just("{ a = 1 }".to_string()),
    ]
}

proptest! {
    #![proptest_config(fuzz_config(500))]

    /// Any configuration file is loaded or refused with a `configuration:`
    /// error naming the problem.
    #[test]
    fn configuration_files_load_or_fail_with_a_clear_error(
        entries in prop::collection::vec((
            prop::sample::select(vec!["server", "webhook", "pipeline", "conversations", "plugins", "plugins.limits",
                "outbound", "demo", "sync", "log", "nonsense"]),
            prop::sample::select(vec!["listen", "data_dir", "max_body_bytes", "dedup_window", "workers", "queue_depth",
                "fuel", "deadline", "memory_bytes", "timezone", "graph_base", "concurrency", "filter", "stall_after",
                "allow_internal_destinations", "app_secrets", "unknown_key"]),
            toml_value(),
        ), 0..8),
        garbage in prop::option::of("\\PC{0,40}"),
    ) {
        let mut text = String::new();
        for (section, key, value) in &entries {
            text.push_str(&format!("[{section}]\n{key} = {value}\n"));
        }
        if let Some(g) = garbage {
            text.push_str(&g);
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchboard.toml");
        std::fs::write(&file, &text).unwrap();
        if let Err(e) = switchboard::config::Config::load(Some(&file)) {
            prop_assert!(e.to_string().starts_with("configuration: "), "{}", e);
        }
    }
}
