//! Hot-swap under load: while at least 500 messages/s arrive, the router is
//! swapped 20 times; no message fails, is lost or is applied twice, and
//! every decision names the version that made it.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use support::*;

const CONTACTS: usize = 100;
const BATCH: usize = 10;
const POSTS: usize = 400; // 4,000 messages
const TICK: Duration = Duration::from_millis(20); // 50 POSTs/s × 10 = 500 messages/s

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_swaps_under_500_messages_per_second_lose_and_duplicate_nothing() {
    let host = TestHost::start_with(|c| c.pipeline.workers = 4).await;
    let (_, echo) = host.upload(API_KEY, "router", guest("echo_router"), false).await;
    let (_, flaky) = host.upload(API_KEY, "router", guest("flaky_router"), false).await;
    let versions = [
        echo["version"]["version"].as_str().unwrap().to_string(),
        flaky["version"]["version"].as_str().unwrap().to_string(),
    ];
    let now = host.now_secs();

    // The load: open loop, one POST of 10 messages every 20 ms.
    let load = {
        let (http, base) = (host.http.clone(), host.base.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut posts = Vec::new();
            for i in 0..POSTS {
                tokio::time::sleep_until((started + TICK * i as u32).into()).await;
                let mut p = payload("text.json", now);
                let v = first_value(&mut p);
                let messages: Vec<_> = (0..BATCH)
                    .map(|j| {
                        let n = i * BATCH + j;
                        json!({ "from": format!("55119770{:05}", n % CONTACTS), "id": format!("wamid.HS{n:05}"),
                                "timestamp": now.to_string(), "type": "text", "text": { "body": format!("msg {n}") } })
                    })
                    .collect();
                v["messages"] = json!(messages);
                v["contacts"] = json!([]);
                let body = serde_json::to_vec(&p).unwrap();
                let sig = switchboard::ingest::signature::sign(APP_SECRET.as_bytes(), &body);
                let (http, url) = (http.clone(), format!("{base}/webhooks/whatsapp"));
                posts.push(tokio::spawn(async move {
                    let r = http.post(url).header("x-hub-signature-256", sig).body(body).send().await.unwrap();
                    (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
                }));
            }
            let mut results = Vec::new();
            for p in posts {
                results.push(p.await.unwrap());
            }
            (results, started.elapsed())
        })
    };

    // Meanwhile: 20 swaps, alternating versions.
    let mut swaps = 0;
    while swaps < 20 {
        tokio::time::sleep(Duration::from_millis(350)).await;
        let version = &versions[swaps % 2];
        let (status, body) =
            host.call(Method::POST, "/v1/plugins/router/activate", API_KEY, Some(json!({ "version": version }))).await;
        assert_eq!(status, 200, "{body}");
        swaps += 1;
    }
    let (results, took) = load.await.unwrap();
    let messages = POSTS * BATCH;
    eprintln!(
        "offered {} messages/s; {messages} messages acknowledged in {:.2}s ({:.0}/s) across {swaps} swaps",
        BATCH as f64 / TICK.as_secs_f64(),
        took.as_secs_f64(),
        messages as f64 / took.as_secs_f64()
    );
    assert!(BATCH as f64 / TICK.as_secs_f64() >= 500.0);
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["accepted"], BATCH, "nothing dropped as a duplicate: {body}");
    }
    host.settle().await;

    // Every message once, every decision once, each naming its version.
    let builtin = host.server().state.stages().plugins.builtin(switchboard::plugins::World::Router).unwrap().meta.hash;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut decided: HashMap<String, usize> = HashMap::new();
    let mut used = HashSet::new();
    let (_, page) = host.get("/v1/contacts?limit=500").await;
    assert_eq!(page["contacts"].as_array().unwrap().len(), CONTACTS);
    for c in page["contacts"].as_array().unwrap() {
        for conv in host.conversations(c["id"].as_str().unwrap()).await {
            let view = host.conversation(conv["id"].as_str().unwrap()).await;
            for m in view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "inbound") {
                *seen.entry(m["id"].as_str().unwrap().to_string()).or_default() += 1;
            }
            for d in view["decisions"].as_array().unwrap() {
                *decided.entry(d["message_id"].as_str().unwrap().to_string()).or_default() += 1;
                // A swap never fails a decision. (A machine too loaded to run
                // a call before its deadline, twice, is the host's fault and
                // says so: it is not the swap's.)
                let host_fault = d["cause"].as_str().is_some_and(|c| c.starts_with("host:"));
                assert!(d["outcome"] == "decided" || host_fault, "no failed decision: {d}");
                let v = d["plugin"]["version"].as_str().unwrap().to_string();
                assert!(versions.contains(&v) || v == builtin, "unknown version {v}");
                used.insert(v);
            }
        }
    }
    assert_eq!(seen.len(), messages, "no message lost");
    assert!(seen.values().all(|&n| n == 1), "no message recorded twice");
    assert_eq!(decided.len(), messages, "every message decided");
    assert!(decided.values().all(|&n| n == 1), "no message decided twice");
    assert!(used.contains(&versions[0]) && used.contains(&versions[1]), "both versions made decisions: {used:?}");
}
