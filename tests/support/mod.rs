//! Shared helpers for the end-to-end tests: a real server on loopback over
//! a temporary sled directory, signed webhook posts built from the sample
//! payloads in `examples/payloads/`, a stand-in for Meta's Graph API (a
//! real HTTP server on loopback), and polling helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::clock::{Clock, OffsetClock};
use switchboard::config::Config;
use switchboard::ingest::signature;
use switchboard::server::{self, Server};

mod meta;
pub use meta::*;

pub const APP_SECRET: &str = "test-app-secret-ção-🙂";
pub const API_KEY: &str = "sbk_test_key";
pub const PHONE_NUMBER_ID: &str = "100000000000001";
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// The demo tenant's WhatsApp Business Account (when it sends to a
/// [`FakeMeta`]).
pub const WABA_ID: &str = "102290129340398";

/// Monday 2026-11-23 14:00 in São Paulo (17:00 UTC): inside the default
/// router's business hours.
pub const MONDAY_AFTERNOON_MS: i64 = 1_795_453_200_000;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A compiled guest from `tests/plugins` or `plugins/`.
pub fn guest(name: &str) -> Vec<u8> {
    let path = Path::new(env!("SB_BUILT_GUESTS_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The test configuration: loopback on a free port, the given data dir,
/// fixed demo credentials, two pipeline workers.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.server.data_dir = data_dir.to_path_buf();
    config.server.shutdown_grace = Duration::from_secs(5);
    config.demo.app_secret = Some(APP_SECRET.into());
    config.demo.api_key = Some(API_KEY.into());
    config.server.admin_token = Some(ADMIN_TOKEN.into());
    config.pipeline.workers = 2;
    // The tests' host is a debug build, about ten times slower than a
    // release one: its ordinary events would count as a heavy tenant's.
    config.pipeline.heavy_event = Duration::from_millis(50);
    config.outbound.initial_backoff = Duration::from_millis(20);
    config.media.initial_backoff = Duration::from_millis(20);
    // The tests' CRM receiver listens on loopback; the SSRF test turns
    // this off again.
    config.sync.allow_internal_destinations = true;
    config
}

pub struct TestHost {
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub clock: Arc<OffsetClock>,
    pub base: String,
    pub http: reqwest::Client,
}

impl TestHost {
    pub async fn start() -> TestHost {
        Self::start_with(|_| {}).await
    }

    /// A host whose demo tenant sends through `meta`, the Graph API stand-in.
    pub async fn sending_to(meta: &FakeMeta) -> TestHost {
        Self::start_with(|c| {
            c.outbound.graph_base = meta.base.clone();
            c.demo.access_token = Some("EAAtoken".into());
            c.demo.waba_id = Some(WABA_ID.into());
        })
        .await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestHost {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let clock = OffsetClock::new();
        clock.set(MONDAY_AFTERNOON_MS);
        let server = server::start(config.clone(), clock.clone()).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        TestHost { server: Some(server), dir, config, clock, base, http: reqwest::Client::new() }
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    /// Stops (gracefully) and starts again on the same data directory.
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        // `stop` releases the store: the same directory opens at once.
        let server = server::start(self.config.clone(), self.clock.clone()).await.expect("server restarts");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    pub fn clock_now(&self) -> i64 {
        use switchboard::clock::Clock;
        self.clock.now_ms()
    }

    pub fn now_secs(&self) -> i64 {
        self.clock.now_ms() / 1000
    }

    /// Posts `body` signed with the demo tenant's secret.
    pub async fn post_webhook(&self, body: &[u8]) -> (u16, Value) {
        let sig = signature::sign(APP_SECRET.as_bytes(), body);
        self.post_raw(body, Some(&sig)).await
    }

    pub async fn post_raw(&self, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/webhooks/whatsapp", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        let resp = req.send().await.expect("webhook request");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Posts a sample payload as Meta would deliver it now.
    pub async fn post_payload(&self, payload: &Value) -> (u16, Value) {
        self.post_webhook(&serde_json::to_vec(payload).expect("json")).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(API_KEY, path).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(key).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let resp =
            self.http.post(format!("{}{path}", self.base)).bearer_auth(API_KEY).json(&body).send().await.expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// `/metrics`, with the operator's admin token it requires.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(resp.status().as_u16(), 200, "/metrics");
        resp.text().await.expect("metrics text")
    }

    /// A request with the operator's admin token.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, ADMIN_TOKEN, body).await
    }

    /// A request with any bearer key and optional JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// A staff action: the demo tenant's key and `X-Staff-Id: staff`.
    pub async fn staff(&self, staff: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).bearer_auth(API_KEY).header("x-staff-id", staff);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("staff request");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// The only conversation of the contact with `phone`.
    pub async fn conversation_of(&self, phone: &str) -> Value {
        let contact = self.contact(phone).await.unwrap_or_else(|| panic!("no contact {phone}"));
        let conversations = self.conversations(contact["id"].as_str().unwrap()).await;
        self.conversation(conversations[0]["id"].as_str().unwrap()).await
    }

    /// The pending follow-up of a conversation (`Value::Null` if none).
    pub async fn pending_follow_up(&self, conversation: &str) -> Value {
        self.get(&format!("/v1/conversations/{conversation}/follow-up")).await.1["pending"].clone()
    }

    /// Creates a tenant through the operator API and returns its API key.
    pub async fn create_tenant(&self, id: &str, phone_number_id: &str, secret: &str) -> String {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/admin/v1/tenants",
                Some(json!({ "id": id, "name": format!("Tenant {id}"), "phone_number_ids": [phone_number_id],
                    "app_secret": secret, "timezone": "America/Sao_Paulo", "default_region": "BR" })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, key) = self
            .admin(reqwest::Method::POST, &format!("/admin/v1/tenants/{id}/api-keys"), Some(json!({ "label": "test" })))
            .await;
        assert_eq!(status, 201, "{key}");
        key["key"].as_str().unwrap().to_string()
    }

    /// Posts `payload` for another tenant's number, signed with `secret`.
    pub async fn post_for(&self, payload: &Value, phone_number_id: &str, secret: &str) -> (u16, Value) {
        let mut p = payload.clone();
        for entry in p["entry"].as_array_mut().into_iter().flatten() {
            for change in entry["changes"].as_array_mut().into_iter().flatten() {
                change["value"]["metadata"]["phone_number_id"] = json!(phone_number_id);
            }
        }
        let body = serde_json::to_vec(&p).unwrap();
        self.post_raw(&body, Some(&signature::sign(secret.as_bytes(), &body))).await
    }

    /// Uploads a component for `world` with `key`. An upload still
    /// compiling (`202`) is followed to its outcome, answered as the upload
    /// would have been: 201/200 with the upload, or its error.
    pub async fn upload(&self, key: &str, world: &str, wasm: Vec<u8>, activate: bool) -> (u16, Value) {
        let resp = self
            .http
            .put(format!("{}/v1/plugins/{world}?activate={activate}", self.base))
            .bearer_auth(key)
            .header("content-type", "application/wasm")
            .body(wasm)
            .send()
            .await
            .expect("upload");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        if status != 202 {
            return (status, body);
        }
        let id = body["id"].as_str().expect("a 202 names the upload").to_string();
        // A JavaScript component compiles for many seconds, and for minutes
        // at low priority on a busy machine.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let done = loop {
            let (_, view) = self.get_as(key, &format!("/v1/plugins/uploads/{id}")).await;
            if view["state"] == "accepted" || view["state"] == "rejected" {
                break view;
            }
            assert!(tokio::time::Instant::now() < deadline, "the upload never finished: {view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if done["state"] == "rejected" {
            let status = done["http_status"].as_u64().unwrap() as u16;
            let error = json!({ "error": { "status": status, "code": done["code"], "message": done["message"] } });
            return (status, error);
        }
        let mut accepted = done.clone();
        for k in ["id", "world", "submitted_at", "state"] {
            accepted.as_object_mut().unwrap().remove(k);
        }
        (if done["new"] == true { 201 } else { 200 }, accepted)
    }

    /// The decisions of the (only) conversation of the contact with `phone`, seen with `key`.
    pub async fn decisions_of(&self, key: &str, phone: &str) -> Vec<Value> {
        let (_, page) = self.get_as(key, &format!("/v1/contacts?q={}", phone.replace('+', "%2B"))).await;
        let id = page["contacts"][0]["id"].as_str().unwrap_or_else(|| panic!("no contact {phone}: {page}")).to_string();
        let (_, convs) = self.get_as(key, &format!("/v1/contacts/{id}/conversations")).await;
        let mut out = Vec::new();
        for c in convs["conversations"].as_array().unwrap() {
            let (_, view) = self.get_as(key, &format!("/v1/conversations/{}", c["id"].as_str().unwrap())).await;
            out.extend(view["decisions"].as_array().unwrap().iter().cloned());
        }
        out
    }

    /// Fires every follow-up due by the test clock now, and waits until
    /// their effects are applied: after this, a follow-up that did not fire
    /// was not due.
    pub async fn fire_due_timers(&self) {
        let server = self.server.as_ref().expect("the server is running");
        server.fire_due_timers().await.expect("scanning timers");
        self.settle().await;
    }

    /// Polls until everything acknowledged has been applied and sent:
    /// `/healthz`'s `idle`, exact in one reading (see `Health::idle`).
    pub async fn settle(&self) {
        wait_for("the pipeline to drain", || async {
            let (_, h) = self.get("/healthz").await;
            (h["idle"] == true).then_some(())
        })
        .await
    }

    /// The contact with this E.164 phone (or BSUID), via the API.
    pub async fn contact(&self, phone: &str) -> Option<Value> {
        let (status, page) = self.get(&format!("/v1/contacts?q={}", phone.replace('+', "%2B"))).await;
        assert_eq!(status, 200, "{page}");
        page["contacts"].as_array()?.iter().find(|c| c["phone"] == phone || c["user_id"] == phone).cloned()
    }

    /// The contact's conversations, newest first.
    pub async fn conversations(&self, contact_id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/contacts/{contact_id}/conversations")).await;
        assert_eq!(status, 200, "{body}");
        body["conversations"].as_array().cloned().unwrap_or_default()
    }

    pub async fn conversation(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/conversations/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Polls `check` every 20 ms for up to 60 s: generous, because a loaded CI
/// machine is slow, and a passing wait ends as soon as its condition holds.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sample from `examples/payloads/`, with every timestamp set to `now_secs`.
pub fn payload(name: &str, now_secs: i64) -> Value {
    let path = workspace_root().join("examples/payloads").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut json: Value = serde_json::from_str(&text).expect("sample payload is JSON");
    switchboard::ingest::payload::restamp(&mut json, Some(now_secs), false);
    json
}

/// The `value` of the first change.
pub fn first_value(payload: &mut Value) -> &mut Value {
    &mut payload["entry"][0]["changes"][0]["value"]
}

/// A text message payload from `from` with `id` and `body`, written at `at_secs`.
pub fn text_message(from: &str, name: &str, id: &str, body: &str, at_secs: i64) -> Value {
    let mut p = payload("text.json", at_secs);
    let v = first_value(&mut p);
    v["contacts"] = json!([{ "profile": { "name": name }, "wa_id": from }]);
    v["messages"][0]["from"] = json!(from);
    v["messages"][0]["id"] = json!(id);
    v["messages"][0]["text"]["body"] = json!(body);
    p
}

/// A status payload for `wamid`.
pub fn status_payload(sample: &str, wamid: &str, recipient: &str, at_secs: i64) -> Value {
    let mut p = payload(sample, at_secs);
    let s = &mut first_value(&mut p)["statuses"][0];
    s["id"] = json!(wamid);
    s["recipient_id"] = json!(recipient);
    p
}

/// A webhook of a business-account field (`message_template_status_update`,
/// …) as Meta sends it: the entry is the account, the change names no
/// phone number.
pub fn account_webhook(field: &str, value: Value, at_secs: i64) -> Value {
    json!({ "object": "whatsapp_business_account",
        "entry": [{ "id": WABA_ID, "time": at_secs, "changes": [{ "field": field, "value": value }] }] })
}
