//! CRM sync end to end: every change lands in the outbox with the change,
//! and reaches the example receiver (examples/crm-receiver, a real HTTP
//! server on loopback) signed, in order per contact, at least once — also
//! across a receiver outage — with dead letters that can be replayed.

mod support;

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use switchboard_crm_receiver::{Receiver, app};

async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::new("");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let served = receiver.clone();
    tokio::spawn(async move { axum::serve(listener, app(served)).await });
    (receiver, url)
}

async fn add_endpoint(host: &TestHost, receiver: &Receiver, url: &str) -> Value {
    let (status, created) = host.post_json("/v1/sync/endpoints", json!({ "url": url })).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["endpoint"].get("secret").is_none(), "the secret is only in `secret`");
    *receiver.secret.lock().unwrap() = created["secret"].as_str().unwrap().to_string();
    created
}

/// Per contact, the event types as they arrived (after de-duplication).
fn arrivals(receiver: &Receiver) -> HashMap<String, Vec<Value>> {
    receiver.crm.lock().unwrap().arrivals.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn assert_in_order(events: &[Value]) {
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "contact.created", "{kinds:?}");
    let logged: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "message.logged")
        .map(|e| e["data"]["log_seq"].as_u64().unwrap())
        .collect();
    let mut sorted = logged.clone();
    sorted.sort_unstable();
    assert_eq!(logged, sorted, "messages arrive in the order they were logged");
    let opened = kinds.iter().position(|k| *k == "conversation.opened").unwrap();
    let first_message = kinds.iter().position(|k| *k == "message.logged").unwrap();
    assert!(opened < first_message, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_crm_signed_in_order_and_as_hubspot_objects() {
    let host = TestHost::start().await;
    let (receiver, url) = start_receiver().await;
    add_endpoint(&host, &receiver, &url).await;
    let (_, co) = host.post_json("/v1/companies", json!({ "name": "Acme", "domain": "acme.com" })).await;
    let (_, c) = host
        .post_json("/v1/contacts", json!({ "phone": "+5511987654321", "name": "Ana Souza", "email": "ana@acme.com" }))
        .await;
    host.post_json("/v1/deals", json!({ "contact_id": c["id"], "name": "Anual", "stage": "proposal" })).await;
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;
    let cv = host.conversation_of("+5511987654321").await["conversation"]["id"].as_str().unwrap().to_string();
    host.staff("marta", &format!("/v1/conversations/{cv}/takeover"), None).await;
    host.staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(json!({ "text": "Olá Ana!" }))).await;
    host.settle().await;

    let contact_id = c["id"].as_str().unwrap().to_string();
    let events = wait_for("events to be delivered", || async {
        let a = arrivals(&receiver);
        let events = a.get(&contact_id).cloned().unwrap_or_default();
        events.iter().any(|e| e["type"] == "human.action" && e["data"]["action"] == "human_reply").then_some(events)
    })
    .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "contact.created",
        "conversation.opened",
        "message.logged",
        "decision.made",
        "conversation.assigned",
        "human.action",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_in_order(&events);
    let crm = receiver.crm.lock().unwrap();
    assert_eq!(crm.rejected_signatures, 0);
    let hs = &crm.contacts[&contact_id];
    assert_eq!(hs["properties"]["firstname"], "Ana");
    assert_eq!(hs["properties"]["phone"], "+5511987654321");
    assert_eq!(hs["associations"][0]["to"]["id"], co["id"]);
    assert!(crm.companies.contains_key(co["id"].as_str().unwrap()));
    assert_eq!(crm.deals.len(), 1, "the conversation's deal");
    assert!(crm.notes.iter().any(|n| n["properties"]["hs_note_body"].as_str().unwrap().contains("Oi, bom dia!")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_for_a_while_loses_nothing_and_gets_nothing_out_of_order() {
    let host = TestHost::start_with(|c| c.sync.initial_backoff = std::time::Duration::from_millis(50)).await;
    let (receiver, url) = start_receiver().await;
    add_endpoint(&host, &receiver, &url).await;
    receiver.crm.lock().unwrap().fail_next = 25;
    for i in 0..30 {
        let from = format!("55119876{:05}", 10000 + i % 5);
        host.post_payload(&text_message(
            &from,
            "C",
            &format!("wamid.SY{i}"),
            &format!("mensagem {i}"),
            host.now_secs(),
        ))
        .await;
    }
    host.settle().await;
    wait_for("the outbox to drain", || async {
        let (_, eps) = host.get("/v1/sync/endpoints").await;
        (eps["endpoints"][0]["pending"] == 0).then_some(())
    })
    .await;
    let failed = receiver.crm.lock().unwrap().failed;
    assert_eq!(failed, 25, "it really was down for a while");
    let all = arrivals(&receiver);
    assert_eq!(all.len(), 5);
    let mut logged = 0;
    for events in all.values() {
        assert_in_order(events);
        logged += events.iter().filter(|e| e["type"] == "message.logged").count();
    }
    assert_eq!(logged, 30, "every message, once");
    let (_, dead) = host.get("/v1/sync/dead-letters").await;
    assert_eq!(dead["dead_letters"], json!([]));
    let metrics = host.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("switchboard_sync_deliveries_total") && l.contains("result=\"failed\""))
    );
    assert!(
        metrics.lines().any(|l| l.starts_with("switchboard_sync_endpoint_failing") && l.ends_with(" 0")),
        "healthy again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_keeps_failing_is_dead_lettered_and_can_be_replayed() {
    let host = TestHost::start_with(|c| {
        c.sync.max_attempts = 2;
        c.sync.initial_backoff = std::time::Duration::from_millis(20);
    })
    .await;
    let (receiver, url) = start_receiver().await;
    add_endpoint(&host, &receiver, &url).await;
    receiver.crm.lock().unwrap().fail_next = 2;
    host.post_json("/v1/contacts", json!({ "phone": "+5511987654321" })).await;
    let dead = wait_for("the dead letter", || async {
        let (_, d) = host.get("/v1/sync/dead-letters").await;
        d["dead_letters"].as_array().filter(|l| !l.is_empty()).map(|l| l[0].clone())
    })
    .await;
    assert_eq!(dead["event"]["type"], "contact.created");
    assert_eq!(dead["attempts"], 2);
    assert!(dead["last_error"].as_str().unwrap().contains("503"));
    assert!(arrivals(&receiver).is_empty());
    let (status, _) = host
        .call(Method::POST, &format!("/v1/sync/dead-letters/{}/replay", dead["id"].as_str().unwrap()), API_KEY, None)
        .await;
    assert_eq!(status, 202);
    wait_for("the replayed event", || async { (!arrivals(&receiver).is_empty()).then_some(()) }).await;
    let (_, d) = host.get("/v1/sync/dead-letters").await;
    assert_eq!(d["dead_letters"], json!([]));
}
