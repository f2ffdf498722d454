//! Hardening: each test here reproduces a defect found by attacking the
//! host (as a hostile tenant, a broken sender, a crash) and checks it stays
//! fixed. Process-level ones (SIGKILL, a full disk, the log) are in
//! `tests/crash.rs`.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use switchboard::ingest::signature;
use switchboard::pipeline::Event;
use switchboard::store::Batch;

/// The decisions of `phone`'s conversations, oldest first.
async fn decisions(host: &TestHost, phone: &str) -> Vec<Value> {
    let mut all = host.decisions_of(API_KEY, phone).await;
    all.sort_by_key(|d| d["made_at"].as_i64());
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implausible_timestamp_is_quarantined_with_its_reason() {
    let host = TestHost::start().await;
    let mut p = text_message("5511987654321", "Ana", "wamid.poison", "oi", host.now_secs());
    first_value(&mut p)["messages"][0]["timestamp"] = json!("9223372036854775");
    let (status, body) = host.post_payload(&p).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["accepted"].as_u64(), body["quarantined"].as_u64()), (Some(0), Some(1)), "{body}");
    let (_, kept) = host.get("/v1/quarantine").await;
    let reason = kept["items"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("timestamp") && reason.contains("plausible"), "{kept}");
    assert_eq!(kept["items"][0]["path"], "entry[0].changes[0].value.messages[0]");
    // The tenant goes on.
    let (status, _) = host.post_payload(&text_message("5511987654321", "Ana", "wamid.ok", "oi", host.now_secs())).await;
    assert_eq!(status, 200);
    host.settle().await;
    assert_eq!(decisions(&host, "+5511987654321").await.len(), 1);
}

/// An event an older version journaled, whose time overflows the host's
/// arithmetic, panics the worker applying it. It is quarantined with the
/// panic as its cause after a bounded number of attempts, and the same
/// contact's later events, and the tenant's, are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_panics_is_quarantined_and_its_contact_and_tenant_go_on() {
    let mut host = TestHost::start_with(|c| c.pipeline.enabled = false).await;
    let now = host.now_secs();
    let ana = "5511987654321";
    host.post_payload(&text_message(ana, "Ana", "wamid.a1", "primeira", now)).await;
    let mut poisoned = switchboard::ingest::payload::parse(
        &serde_json::to_vec(&text_message(ana, "Ana", "wamid.a2", "veneno", now)).unwrap(),
        host.clock_now(),
    )
    .unwrap()
    .changes
    .remove(0)
    .messages
    .remove(0);
    poisoned.tenant = "demo".into();
    poisoned.at = i64::MAX - 1000;
    host.server().state.pipeline.submit(vec![Event::Inbound(poisoned)], Batch::new()).unwrap();
    host.post_payload(&text_message(ana, "Ana", "wamid.a3", "terceira", now)).await;
    host.post_payload(&text_message("5521998765432", "Bia", "wamid.b1", "oi", now)).await;

    host.config.pipeline.enabled = true;
    host.restart().await;
    host.settle().await;
    let (status, health) = host.get("/healthz").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["quarantined"], 1, "{health}");
    assert_eq!(health["journal_pending"], 0);
    let ana_messages: Vec<String> = host.conversation_of("+5511987654321").await["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ana_messages, ["wamid.a1", "wamid.a3"], "the contact's next event went on");
    assert_eq!(decisions(&host, "+5521998765432").await.len(), 1, "the tenant's other contacts too");
    let metrics = host.metrics().await;
    assert!(metrics.contains("switchboard_quarantined_total{kind=\"inbound\",cause=\"panic\"} 1"), "{metrics}");
    assert!(metrics.contains("switchboard_stalled_lanes 0"), "{metrics}");
}

/// One contact's burst of 400 messages must not hold up the tenant's other
/// contacts: they are decided while the burst drains, not after it. (Before
/// contacts were parked, the tenant's 256 in-memory slots filled with the
/// burst and the others waited for at least 144 of its messages.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_busy_contact_does_not_hold_up_the_tenants_other_contacts() {
    let host = TestHost::start_with(|c| c.pipeline.enabled = false).await;
    let now = host.now_secs();
    let busy = "5511900000001";
    for batch in 0..8 {
        let mut p = text_message(busy, "Busy", "x", "oi", now);
        let template = first_value(&mut p)["messages"][0].clone();
        let messages: Vec<Value> = (0..50)
            .map(|i| {
                let mut m = template.clone();
                m["id"] = json!(format!("wamid.busy.{batch}.{i}"));
                m
            })
            .collect();
        first_value(&mut p)["messages"] = json!(messages);
        assert_eq!(host.post_payload(&p).await.0, 200);
    }
    let others: Vec<String> = (0..20).map(|i| format!("55119{:08}", 10_000_000 + i)).collect();
    for (i, phone) in others.iter().enumerate() {
        host.post_payload(&text_message(phone, "Other", &format!("wamid.other.{i}"), "oi", now)).await;
    }
    // Everything is journaled; now let the pipeline run.
    let mut host = host;
    host.config.pipeline.enabled = true;
    host.restart().await;
    host.settle().await;

    let busy_decisions = decisions(&host, "+5511900000001").await;

    assert_eq!(busy_decisions.len(), 400);
    let mut other_latency_ms = Vec::new();
    let mut last_other = i64::MIN;
    for phone in &others {
        let d = decisions(&host, &format!("+{phone}")).await;
        assert_eq!(d.len(), 1);
        last_other = last_other.max(d[0]["made_at"].as_i64().unwrap());
        other_latency_ms.push(d[0]["latency_us"].as_u64().unwrap() / 1000);
    }
    let busy_done_before = busy_decisions.iter().filter(|d| d["made_at"].as_i64().unwrap() < last_other).count();
    other_latency_ms.sort_unstable();
    let busy_last_ms = busy_decisions.last().unwrap()["latency_us"].as_u64().unwrap() / 1000;
    println!(
        "other contacts' latency: median {} ms, max {} ms; the busy contact's last message: {busy_last_ms} ms; \
         busy messages decided before the last other contact: {busy_done_before} of 400",
        other_latency_ms[other_latency_ms.len() / 2],
        other_latency_ms.last().unwrap()
    );
    assert!(
        busy_done_before < 100,
        "the other contacts waited for {busy_done_before} of the busy contact's 400 messages"
    );
}

async fn failing_endpoint(host: &TestHost, key: &str) -> (String, u16) {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/crm-of-{key}");
    let (status, body) = host.call(Method::POST, "/v1/sync/endpoints", key, Some(json!({ "url": url }))).await;
    assert_eq!(status, 201, "{body}");
    (url, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_delivery_errors_are_only_its_own_tenants() {
    let host = TestHost::start().await;
    let acme = host.create_tenant("acme", "200000000000001", "acme-secret").await;
    let (demo_url, demo_port) = failing_endpoint(&host, API_KEY).await;
    let (acme_url, acme_port) = failing_endpoint(&host, &acme).await;
    let now = host.now_secs();
    for i in 0..4 {
        host.post_payload(&text_message(&format!("551198765{i:04}"), "D", &format!("wamid.d{i}"), "oi", now)).await;
        let p = text_message(&format!("551198764{i:04}"), "A", &format!("wamid.a{i}"), "oi", now);
        host.post_for(&p, "200000000000001", "acme-secret").await;
    }
    let errors = |key: String| {
        let host = &host;
        async move {
            let (_, eps) = host.get_as(&key, "/v1/sync/endpoints").await;
            let health = &eps["endpoints"][0]["health"];
            (health["failed_attempts"].as_u64() >= Some(3)).then(|| health["last_error"].as_str().map(String::from))?
        }
    };
    let demo_error = wait_for("demo's endpoint to fail", || errors(API_KEY.to_string())).await;
    let acme_error = wait_for("acme's endpoint to fail", || errors(acme.clone())).await;
    assert!(demo_error.contains(&demo_port.to_string()), "{demo_error}");
    assert!(!demo_error.contains(&acme_port.to_string()), "demo sees acme's endpoint {acme_url}: {demo_error}");
    assert!(acme_error.contains(&acme_port.to_string()), "{acme_error}");
    assert!(!acme_error.contains(&demo_port.to_string()), "acme sees demo's endpoint {demo_url}: {acme_error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_endpoints_cannot_reach_internal_addresses_unless_the_operator_allows_it() {
    let host = TestHost::start_with(|c| c.sync.allow_internal_destinations = false).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hook",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost:8080/",
        "http://0.0.0.0/",
    ] {
        let (status, body) = host.post_json("/v1/sync/endpoints", json!({ "url": url })).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["code"], "internal_destination", "{url}");
    }

    // A name is checked where it is resolved, at connect time: this
    // machine's own host name resolves to a loopback address.
    let hits = Arc::new(Mutex::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let hits = counted.clone();
        async move {
            *hits.lock().unwrap() += 1;
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let name = hostname();
    let resolved: Vec<std::net::IpAddr> =
        tokio::net::lookup_host((name.as_str(), port)).await.map(|a| a.map(|a| a.ip()).collect()).unwrap_or_default();
    if !resolved.iter().any(|ip| ip.is_loopback()) {
        eprintln!(
            "SKIPPED the connect-time half: this machine's host name {name:?} resolves to {resolved:?}, not loopback"
        );
        return;
    }
    let url = format!("http://{name}:{port}/hook");
    let (status, body) = host.post_json("/v1/sync/endpoints", json!({ "url": url })).await;
    assert_eq!(status, 201, "a name is accepted at creation: {body}");
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    let error = wait_for("the delivery to be refused", || async {
        let (_, eps) = host.get("/v1/sync/endpoints").await;
        eps["endpoints"][0]["health"]["last_error"].as_str().map(String::from)
    })
    .await;
    assert!(error.contains("internal address"), "{error}");
    assert_eq!(*hits.lock().unwrap(), 0, "nothing reached the internal service");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_written_internationally_keep_their_country_whatever_the_tenants_region() {
    let host = TestHost::start().await;
    let (status, _) = host
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({ "id": "usco", "name": "US Co", "phone_number_ids": ["300000000000001"],
                "app_secret": "us-secret", "timezone": "America/New_York", "default_region": "US" })),
        )
        .await;
    assert_eq!(status, 201);
    let (_, key) = host.admin(Method::POST, "/admin/v1/tenants/usco/api-keys", Some(json!({ "label": "t" }))).await;
    let key = key["key"].as_str().unwrap().to_string();
    // (written, stored) — libphonenumber's readings with region US.
    for (written, stored) in [
        ("+4915112345678", "+4915112345678"),
        ("+55 11 98765-4321", "+5511987654321"),
        ("011 49 1511 2345679", "+4915112345679"),
        ("0049 1511 2345670", "+4915112345670"),
        ("(650) 253-0000", "+16502530000"),
    ] {
        let (status, body) =
            host.call(Method::POST, "/v1/contacts", &key, Some(json!({ "phone": written, "name": written }))).await;
        assert_eq!(status, 201, "{written}: {body}");
        assert_eq!(body["phone"], stored, "{written}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_tenant_id_give_one_201_and_409s() {
    let host = TestHost::start().await;
    let attempts =
        (0..8).map(|i| {
            host.admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({ "id": "race", "name": format!("Race {i}"), "phone_number_ids": [format!("40000000000000{i}")],
                "app_secret": "race-app-secret", "timezone": "UTC", "default_region": "US" })),
        )
        });
    let results = futures::future::join_all(attempts).await;
    let created: Vec<&Value> = results.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert!(
        results.iter().all(|(s, b)| *s == 201 || (*s == 409 && b["error"]["code"] == "already_exists")),
        "{results:?}"
    );
    let (_, tenant) = host.admin(Method::GET, "/admin/v1/tenants/race", None).await;
    assert_eq!(tenant["name"], created[0]["name"], "the first create is the one kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_for_the_operator_only() {
    let host = TestHost::start().await;
    let anonymous = host.http.get(format!("{}/metrics", host.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let (status, _) = host.get("/metrics").await; // a tenant's key
    assert_eq!(status, 401);
    assert!(host.metrics().await.contains("switchboard_journal_pending"));

    let host = TestHost::start_with(|c| c.server.metrics_listen = Some("127.0.0.1:0".into())).await;
    let on_main = host.http.get(format!("{}/metrics", host.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(on_main.status().as_u16(), 404, "not on the main port");
    let addr = host.server().metrics_addr.unwrap();
    let text = host.http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("switchboard_journal_pending"), "{text}");
}

/// Every POST is signed, whatever it carries: a body with only statuses,
/// or only a field other than `messages`, is refused unsigned or signed
/// with the wrong secret, like one with messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_without_messages_must_be_signed_too() {
    let host = TestHost::start().await;
    let statuses =
        serde_json::to_vec(&status_payload("status-read.json", "wamid.X", "5511987654321", host.now_secs())).unwrap();
    let account_update = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "account_update",
            "value": { "phone_number": "15550783881", "event": "VERIFIED_ACCOUNT" } }] }]
    }))
    .unwrap();
    for body in [&statuses, &account_update] {
        assert_eq!(host.post_raw(body, None).await.0, 401, "unsigned");
        assert_eq!(host.post_raw(body, Some(&signature::sign(b"guess", body))).await.0, 401, "wrongly signed");
    }
    let (status, ack) = host.post_raw(&statuses, Some(&signature::sign(APP_SECRET.as_bytes(), &statuses))).await;
    assert_eq!(status, 200, "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_for_unknown_numbers_must_be_signed_with_an_operator_secret() {
    let host = TestHost::start_with(|c| c.webhook.app_secrets = vec!["operator-app-secret".into()]).await;
    let mut p = payload("text.json", host.now_secs());
    first_value(&mut p)["metadata"]["phone_number_id"] = json!("999999999999999");
    let body = serde_json::to_vec(&p).unwrap();
    assert_eq!(host.post_raw(&body, None).await.0, 401, "unsigned");
    assert_eq!(host.post_raw(&body, Some(&signature::sign(b"guess", &body))).await.0, 401, "wrongly signed");
    let (status, ack) = host.post_raw(&body, Some(&signature::sign(b"operator-app-secret", &body))).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["unknown_phone_numbers"], 1);
    assert!(host.metrics().await.contains("switchboard_unverified_webhooks_total 2"));
    // A flood of unverified bodies is cut short.
    let mut statuses = HashMap::new();
    for _ in 0..80 {
        *statuses.entry(host.post_raw(&body, None).await.0).or_insert(0) += 1;
    }
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_keys_expire_by_age_and_a_late_redelivery_is_reported_as_a_duplicate() {
    let host = TestHost::start_with(|c| c.webhook.dedup_window = std::time::Duration::from_secs(60)).await;
    let ana = "5511987654321";
    let message = text_message(ana, "Ana", "wamid.once", "oi", host.now_secs());
    assert_eq!(host.post_payload(&message).await.1["accepted"], 1);
    host.settle().await;
    host.clock.advance(120_000);
    let (status, again) = host.post_payload(&message).await;
    assert_eq!(status, 200);
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(1)), "{again}");

    // A status key older than the window no longer counts, sweep or not.
    let status_body = status_payload("status-delivered.json", "wamid.someone-elses", ana, host.now_secs());
    assert_eq!(host.post_payload(&status_body).await.1["accepted"], 1);
    assert_eq!(host.post_payload(&status_body).await.1["duplicates"], 1, "within the window");
    host.clock.advance(120_000);
    assert_eq!(host.post_payload(&status_body).await.1["accepted"], 1, "after the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_naming_an_inbound_message_changes_nothing() {
    let host = TestHost::start().await;
    let ana = "5511987654321";
    host.post_payload(&text_message(ana, "Ana", "wamid.inbound", "oi", host.now_secs())).await;
    host.settle().await;
    host.post_payload(&status_payload("status-read.json", "wamid.inbound", ana, host.now_secs())).await;
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let inbound = view["messages"].as_array().unwrap().iter().find(|m| m["id"] == "wamid.inbound").unwrap().clone();
    assert_eq!(inbound["status"], Value::Null, "{inbound}");
    assert_eq!(inbound["status_history"], json!([]));
}
