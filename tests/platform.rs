//! The multi-tenant plugin platform end to end: tenants and keys, uploads
//! and their validation, versions, activation and rollback, automatic
//! suspension, per-tenant limits, logs and settings, and isolation.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::*;

const B_PHONE: &str = "200000000000002";
const B_SECRET: &str = "tenant-b-secret-🔐";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_manage_tenants_and_keys_and_secrets_are_never_returned() {
    let host = TestHost::start().await;
    let (status, err) = host.call(Method::GET, "/admin/v1/tenants", "wrong", None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, err) = host.call(Method::GET, "/admin/v1/tenants", API_KEY, None).await;
    assert_eq!(status, 401, "a tenant key is not an admin token: {err}");

    let key = host.create_tenant("acme", B_PHONE, B_SECRET).await;
    let (status, t) = host.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    assert_eq!(status, 200);
    assert_eq!(t["has_app_secret"], true);
    assert_eq!(t["phone_number_ids"], json!([B_PHONE]));
    let everything = host.admin(Method::GET, "/admin/v1/tenants", None).await.1.to_string();
    assert!(!everything.contains("tenant-b-secret"), "the app secret never comes back");
    assert!(!everything.contains(APP_SECRET));

    // Bad input is refused with the reason.
    for (body, needle) in [
        (json!({ "id": "Bad Id", "name": "x", "phone_number_ids": ["1"], "app_secret": "12345678" }), "id"),
        (
            json!({ "id": "ok", "name": "x", "phone_number_ids": ["1"], "app_secret": "12345678", "timezone": "Mars/Base" }),
            "timezone",
        ),
        (json!({ "id": "ok", "name": "x", "phone_number_ids": [], "app_secret": "12345678" }), "phone_number_ids"),
    ] {
        let (status, err) = host.admin(Method::POST, "/admin/v1/tenants", Some(body)).await;
        assert_eq!(status, 400, "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(needle), "{err}");
    }
    let (status, err) = host
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({ "id": "thief", "name": "x", "phone_number_ids": [B_PHONE], "app_secret": "12345678" })),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("already_exists")),
        "one tenant per phone-number id"
    );

    // Access token is write-only, and can be cleared.
    let (status, t) = host
        .admin(
            Method::PATCH,
            "/admin/v1/tenants/acme",
            Some(json!({ "access_token": "EAA-secret", "name": "Acme Ltd" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!((t["has_access_token"].as_bool(), t["name"].as_str()), (Some(true), Some("Acme Ltd")));
    assert!(!t.to_string().contains("EAA-secret"));
    let (_, t) = host.admin(Method::PATCH, "/admin/v1/tenants/acme", Some(json!({ "access_token": null }))).await;
    assert_eq!(t["has_access_token"], false);

    // Keys: shown once, listed without the key, revoked at once.
    let (status, page) = host.get_as(&key, "/v1/contacts").await;
    assert_eq!(status, 200, "{page}");
    let (_, keys) = host.admin(Method::GET, "/admin/v1/tenants/acme/api-keys", None).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert!(!keys.to_string().contains(&key));
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = host.admin(Method::DELETE, &format!("/admin/v1/tenants/acme/api-keys/{key_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = host.get_as(&key, "/v1/contacts").await;
    assert_eq!(status, 401, "a revoked key stops working");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_find_their_tenant_by_phone_number_id_and_its_secret() {
    let host = TestHost::start().await;
    let key = host.create_tenant("acme", B_PHONE, B_SECRET).await;
    let p = text_message("5511987654321", "Ana", "wamid.B1", "oi", host.now_secs());

    let (status, _) = host.post_for(&p, B_PHONE, APP_SECRET).await;
    assert_eq!(status, 401, "another tenant's secret does not verify");
    let (status, body) = host.post_for(&p, B_PHONE, B_SECRET).await;
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(1)));

    // An unknown number no secret verifies is refused (see tests/hardening.rs
    // for the operator's own app secrets).
    let (status, body) =
        host.post_for(&text_message("5511900000000", "X", "wamid.U1", "oi", host.now_secs()), "999", "whatever").await;
    assert_eq!(status, 401, "{body}");
    host.settle().await;

    let (_, mine) = host.get_as(&key, "/v1/contacts").await;
    assert_eq!(mine["contacts"].as_array().unwrap().len(), 1);
    let (_, demo) = host.get("/v1/contacts").await;
    assert_eq!(demo["contacts"], json!([]), "the demo tenant got nothing");
    let metrics = host.metrics().await;
    assert!(metrics.contains("switchboard_unverified_webhooks_total 1"), "{metrics}");

    // A disabled tenant's webhooks are acknowledged and ignored; its keys stop.
    host.admin(Method::PATCH, "/admin/v1/tenants/acme", Some(json!({ "disabled": true }))).await;
    let (status, body) = host
        .post_for(&text_message("5511987654321", "Ana", "wamid.B2", "oi", host.now_secs()), B_PHONE, B_SECRET)
        .await;
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(0)));
    let forged = text_message("5511987654321", "Ana", "wamid.B3", "oi", host.now_secs());
    assert_eq!(host.post_for(&forged, B_PHONE, "forged").await.0, 401, "still verified with its secret");
    assert_eq!(host.get_as(&key, "/v1/contacts").await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_validated_with_messages_that_say_what_to_fix() {
    let host = TestHost::start().await;
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        ("router", b"not wasm at all".to_vec(), 422, "not_a_component", "wasm32-wasip2"),
        // A core module, not a component.
        ("router", b"\0asm\x01\0\0\0".to_vec(), 422, "not_a_component", "component"),
        ("follow-up", guest("echo_router"), 422, "wrong_world", "router component"),
        ("router", guest("net_router"), 422, "forbidden_import", "wasi:sockets"),
        ("router", guest("future_router"), 422, "unsupported_wit_version", "0.1.0"),
        ("router", guest("trap_router"), 422, "sample_run_failed", "trap"),
        ("router", guest("loop_router"), 422, "sample_run_failed", "fuel"),
        ("gizmo", guest("echo_router"), 404, "not_found", "router, follow-up or feedback"),
    ];
    for (world, wasm, status, code, needle) in cases {
        let (got, err) = host.upload(API_KEY, world, wasm, false).await;
        assert_eq!(got, status, "{world} {code}: {err}");
        assert_eq!(err["error"]["code"], code, "{err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{code}: {message:?} should mention {needle:?}");
    }
    // The size cap is the tenant's.
    host.admin(
        Method::PATCH,
        "/admin/v1/tenants/demo",
        Some(json!({ "limits": { "component_bytes": 1000, "fuel": 50000000, "deadline": "50ms", "memory_bytes": 134217728 } })),
    )
    .await;
    let (status, err) = host.upload(API_KEY, "router", guest("echo_router"), false).await;
    assert_eq!((status, err["error"]["code"].as_str()), (413, Some("component_too_large")));
    let (_, plugins) = host.get("/v1/plugins/router").await;
    assert_eq!(plugins["versions"], json!([]), "nothing rejected was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_content_addressed_activated_atomically_and_rolled_back_in_one_call() {
    let host = TestHost::start().await;
    let echo = guest("echo_router");
    let flaky = guest("flaky_router");
    let (status, up) = host.upload(API_KEY, "router", echo.clone(), false).await;
    assert_eq!(status, 201, "{up}");
    let echo_hash = hex::encode(Sha256::digest(&echo));
    assert_eq!(up["version"]["version"], echo_hash.as_str());
    assert_eq!(up["version"]["wit_version"], "0.1.0");
    assert_eq!(up["version"]["uploaded_by"].as_str().unwrap().split(' ').next(), Some("demo"));
    let (status, again) = host.upload(API_KEY, "router", echo.clone(), false).await;
    assert_eq!((status, again["new"].as_bool()), (200, Some(false)), "immutable: the same bytes are the same version");

    // Not active until activated.
    let send = |n: u32| text_message(&format!("55119876001{n:02}"), "V", &format!("wamid.V{n}"), "oi", host.now_secs());
    host.post_payload(&send(1)).await;
    host.settle().await;
    let builtin = host.server().state.stages().plugins.builtin(switchboard::plugins::World::Router).unwrap().meta.hash;
    assert_eq!(host.decisions_of(API_KEY, "+5511987600101").await[0]["plugin"]["version"], builtin.as_str());

    let (status, active) =
        host.call(Method::POST, "/v1/plugins/router/activate", API_KEY, Some(json!({ "version": echo_hash }))).await;
    assert_eq!(status, 200, "{active}");
    host.post_payload(&send(2)).await;
    host.settle().await;
    let (_, up) = host.upload(API_KEY, "router", flaky.clone(), true).await;
    let flaky_hash = up["version"]["version"].as_str().unwrap().to_string();
    host.post_payload(&send(3)).await;
    host.settle().await;
    assert_eq!(host.decisions_of(API_KEY, "+5511987600102").await[0]["plugin"]["version"], echo_hash.as_str());
    assert_eq!(host.decisions_of(API_KEY, "+5511987600103").await[0]["plugin"]["version"], flaky_hash.as_str());

    // Rollback with no body: the version active before (echo).
    let (status, back) = host.call(Method::POST, "/v1/plugins/router/rollback", API_KEY, None).await;
    assert_eq!((status, back["version"].as_str()), (200, Some(echo_hash.as_str())), "{back}");
    host.post_payload(&send(4)).await;
    host.settle().await;
    assert_eq!(host.decisions_of(API_KEY, "+5511987600104").await[0]["plugin"]["version"], echo_hash.as_str());
    // …or to any version, or to the built-in.
    let (_, back) =
        host.call(Method::POST, "/v1/plugins/router/rollback", API_KEY, Some(json!({ "version": flaky_hash }))).await;
    assert_eq!(back["version"], flaky_hash.as_str());
    let (_, back) =
        host.call(Method::POST, "/v1/plugins/router/activate", API_KEY, Some(json!({ "version": null }))).await;
    assert_eq!(back["version"], Value::Null);

    let (_, view) = host.get("/v1/plugins/router").await;
    assert_eq!(view["versions"].as_array().unwrap().len(), 2);
    assert_eq!(view["running"]["builtin"], "default-router");

    // Active versions survive a restart, loaded from the compile cache.
    host.call(Method::POST, "/v1/plugins/router/activate", API_KEY, Some(json!({ "version": echo_hash }))).await;
    let cached = std::fs::read_dir(host.dir.path().join("plugin-cache")).unwrap().count();
    assert!(cached >= 3, "compiled code is cached on disk ({cached} entries)");
    let mut host = host;
    host.restart().await;
    let (_, view) = host.get("/v1/plugins/router").await;
    assert_eq!(view["running"]["hash"], echo_hash.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_keeps_failing_is_suspended_and_the_last_good_one_takes_over() {
    let host = TestHost::start_with(|c| c.plugins.suspend_after = 3).await;
    let (_, echo) = host.upload(API_KEY, "router", guest("echo_router"), true).await;
    let echo_hash = echo["version"]["version"].as_str().unwrap().to_string();
    let (_, flaky) = host.upload(API_KEY, "router", guest("flaky_router"), true).await;
    let flaky_hash = flaky["version"]["version"].as_str().unwrap().to_string();

    // Three different contacts' messages fail it: the version's fault.
    for n in 0..4 {
        let from = format!("551198765050{n}");
        host.post_payload(&text_message(&from, "Boom", &format!("wamid.BOOM{n}"), "boom!", host.now_secs())).await;
        host.settle().await;
    }
    let mut decisions = Vec::new();
    for n in 0..4 {
        decisions.extend(host.decisions_of(API_KEY, &format!("+551198765050{n}")).await);
    }
    let versions: Vec<&str> = decisions.iter().map(|d| d["plugin"]["version"].as_str().unwrap()).collect();
    assert_eq!(versions, vec![flaky_hash.as_str(); 3].into_iter().chain([echo_hash.as_str()]).collect::<Vec<_>>());
    assert!(decisions[..3].iter().all(|d| d["outcome"] == "fallback"));
    assert_eq!(decisions[3]["outcome"], "decided", "the last good version decides");

    let (_, view) = host.get("/v1/plugins/router").await;
    assert_eq!(view["running"]["hash"], echo_hash.as_str());
    let flaky_view = view["versions"].as_array().unwrap().iter().find(|v| v["version"] == flaky_hash.as_str()).unwrap();
    let suspension = &flaky_view["suspended"];
    assert_eq!((suspension["failures"].as_u64(), suspension["calls"].as_u64()), (Some(3), Some(3)), "{suspension}");
    assert_eq!(suspension["replaced_by"], echo_hash.as_str());
    assert!(suspension["reason"].as_str().unwrap().contains("trap"), "{suspension}");
    assert_eq!(flaky_view["health"]["failures"], 3);
    let (_, logs) = host.get("/v1/plugins/router/logs").await;
    assert!(
        logs["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["source"] == "host" && l["message"].as_str().unwrap().contains("suspended"))
    );
    let (_, overview) = host.get("/v1/plugins").await;
    assert_eq!(overview["worlds"][0]["suspended"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_apply_to_the_next_decision_and_limits_are_per_tenant() {
    let host = TestHost::start().await;
    let b_key = host.create_tenant("acme", B_PHONE, B_SECRET).await;
    host.upload(API_KEY, "router", guest("flaky_router"), true).await;
    let (status, cfg) = host
        .call(Method::PUT, "/v1/plugins/router/config", API_KEY, Some(json!({ "config": { "team": "vendas" } })))
        .await;
    assert_eq!(status, 200, "{cfg}");
    let (_, cfg) = host.get("/v1/plugins/router/config").await;
    assert_eq!(cfg["config"]["team"], "vendas");
    host.post_payload(&text_message("5511987650600", "C", "wamid.CFG1", "oi", host.now_secs())).await;
    host.settle().await;
    assert_eq!(
        host.decisions_of(API_KEY, "+5511987650600").await[0]["decision"]["handler"]["assignee"]["id"],
        "vendas"
    );

    // Tenant B gets a tiny fuel budget: its router falls back, A's does not.
    host.upload(&b_key, "router", guest("flaky_router"), true).await;
    host.admin(
        Method::PATCH,
        "/admin/v1/tenants/acme",
        Some(json!({ "limits": { "fuel": 1000, "deadline": "50ms", "memory_bytes": 134217728 } })),
    )
    .await;
    host.post_for(&text_message("5511987650601", "D", "wamid.LIM1", "oi", host.now_secs()), B_PHONE, B_SECRET).await;
    host.post_payload(&text_message("5511987650602", "E", "wamid.LIM2", "oi", host.now_secs())).await;
    host.settle().await;
    let b = &host.decisions_of(&b_key, "+5511987650601").await[0];
    assert!(b["cause"].as_str().unwrap().contains("fuel exhausted"), "{b}");
    assert_eq!(host.decisions_of(API_KEY, "+5511987650602").await[0]["outcome"], "decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_key_never_reaches_another_tenants_data() {
    let host = TestHost::start().await;
    let b_key = host.create_tenant("acme", B_PHONE, B_SECRET).await;
    // Tenant B's records and plugin.
    let (_, company) = host.call(Method::POST, "/v1/companies", &b_key, Some(json!({ "name": "B Corp" }))).await;
    let (_, contact) = host
        .call(
            Method::POST,
            "/v1/contacts",
            &b_key,
            Some(json!({ "phone": "+5511911112222", "company_id": company["id"] })),
        )
        .await;
    let (_, deal) = host
        .call(
            Method::POST,
            "/v1/deals",
            &b_key,
            Some(json!({ "contact_id": contact["id"], "name": "B deal", "stage": "lead" })),
        )
        .await;
    let (_, up) = host.upload(&b_key, "router", guest("echo_router"), true).await;
    let b_version = up["version"]["version"].as_str().unwrap().to_string();
    host.post_for(&text_message("5511911112222", "B", "wamid.ISO1", "oi", host.now_secs()), B_PHONE, B_SECRET).await;
    host.settle().await;
    let (_, convs) =
        host.get_as(&b_key, &format!("/v1/contacts/{}/conversations", contact["id"].as_str().unwrap())).await;
    let conversation = convs["conversations"][0]["id"].as_str().unwrap().to_string();

    // Every tenant-scoped endpoint, with tenant A's (demo) key.
    let c = contact["id"].as_str().unwrap();
    let probes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/contacts/{c}"), None),
        (Method::GET, format!("/v1/contacts/{c}/conversations"), None),
        (Method::GET, format!("/v1/conversations/{conversation}"), None),
        (Method::GET, format!("/v1/companies/{}", company["id"].as_str().unwrap()), None),
        (Method::GET, format!("/v1/deals/{}", deal["id"].as_str().unwrap()), None),
        (Method::POST, "/v1/deals".into(), Some(json!({ "contact_id": c, "name": "steal", "stage": "lead" }))),
        (Method::POST, "/v1/contacts".into(), Some(json!({ "phone": "+5511933334444", "company_id": company["id"] }))),
        (Method::GET, format!("/v1/plugins/router/versions/{b_version}"), None),
        (Method::POST, "/v1/plugins/router/activate".into(), Some(json!({ "version": b_version }))),
        (Method::POST, "/v1/plugins/router/rollback".into(), Some(json!({ "version": b_version }))),
        (Method::POST, format!("/v1/conversations/{conversation}/takeover"), None),
        (Method::POST, format!("/v1/conversations/{conversation}/release"), None),
        (Method::POST, format!("/v1/conversations/{conversation}/messages"), Some(json!({ "text": "hi" }))),
        (
            Method::POST,
            format!("/v1/conversations/{conversation}/assignment"),
            Some(json!({ "assignee": { "kind": "team", "id": "x" }, "reason": "r" })),
        ),
        (Method::POST, format!("/v1/conversations/{conversation}/resolve"), None),
        (Method::POST, format!("/v1/conversations/{conversation}/pause"), None),
        (Method::POST, format!("/v1/conversations/{conversation}/resume"), None),
        (Method::GET, format!("/v1/conversations/{conversation}/audit"), None),
        (Method::GET, format!("/v1/conversations/{conversation}/follow-up"), None),
        (Method::POST, format!("/v1/contacts/{c}/pause"), None),
        (Method::POST, format!("/v1/contacts/{c}/resume"), None),
    ];
    for (method, path, body) in probes {
        let mut req = host
            .http
            .request(method.clone(), format!("{}{path}", host.base))
            .bearer_auth(API_KEY)
            .header("x-staff-id", "intruder");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let resp: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 404, "{method} {path} with another tenant's key: {resp}");
        let text = resp.to_string();
        assert!(!text.contains("B Corp") && !text.contains("5511911112222"), "{method} {path} leaked: {text}");
    }
    // Lists and searches only ever show the caller's own records.
    for path in ["/v1/contacts", "/v1/contacts?q=5511911112222", "/v1/contacts?q=%2B5511911112222"] {
        let (_, page) = host.get(path).await;
        assert_eq!(page["contacts"], json!([]), "{path}");
    }
    let (_, mine) = host.get("/v1/plugins/router").await;
    assert_eq!(mine["versions"], json!([]));
    let (_, logs) = host.get("/v1/plugins/router/logs").await;
    assert_eq!(logs["logs"], json!([]), "B's plugin logs are B's");
    for path in ["/v1/inbox", "/v1/audit"] {
        let text = host.get(path).await.1.to_string();
        assert!(!text.contains(&conversation) && !text.contains("5511911112222"), "{path} leaked: {text}");
    }
    let (_, b_logs) = host.get_as(&b_key, "/v1/plugins/router/logs").await;
    assert!(b_logs["logs"].as_array().is_some());

    // A plugin only ever sees its own tenant's context.
    let seen: Value = serde_json::from_str(
        host.decisions_of(&b_key, "+5511911112222").await[0]["decision"]["reason"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(seen["tenant"], "acme");
    assert_eq!(seen["company"], "B Corp");
}
