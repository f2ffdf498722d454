//! Crash safety with the real binary: SIGKILL right after webhooks are
//! acknowledged, restart, and every acknowledged message is there, applied
//! exactly once.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use support::*;
use switchboard::ingest::signature;

struct Running {
    child: Child,
    base: String,
    resumed: usize,
}

/// A failing assertion must not leave the server running.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data_dir: &std::path::Path) -> Running {
    spawn_with(data_dir, &[], Stdio::inherit())
}

/// The real binary on `data_dir`, with extra environment (configuration)
/// and where its log (stderr) goes.
fn spawn_with(data_dir: &std::path::Path, env: &[(&str, &str)], stderr: Stdio) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("SWITCHBOARD_SERVER__LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_SERVER__DATA_DIR", data_dir)
        .env("SWITCHBOARD_DEMO__APP_SECRET", APP_SECRET)
        .env("SWITCHBOARD_DEMO__API_KEY", API_KEY)
        .env("SWITCHBOARD_PIPELINE__WORKERS", "2")
        // A debug build: see `test_config`.
        .env("SWITCHBOARD_PIPELINE__HEAVY_EVENT", "50ms")
        .env("RUST_LOG", std::env::var("CRASH_LOG").unwrap_or("warn".into()))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the switchboard binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("the server prints its address").expect("read stdout");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    // The banner says how many journaled events it resumes.
    let mut resumed = 0;
    for line in lines.by_ref().take(3) {
        let line = line.expect("read stdout");
        if let Some(rest) = line.trim().strip_prefix("resuming ") {
            resumed = rest.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running { child, base, resumed }
}

async fn post(http: &reqwest::Client, base: &str, body: &Value) -> u16 {
    try_post(http, base, body).await.expect("webhook")
}

/// The webhook's status, or the error when no answer came (a connection
/// the server closed as it stopped): Meta, like any client, retries then.
async fn try_post(http: &reqwest::Client, base: &str, body: &Value) -> Result<u16, reqwest::Error> {
    let bytes = serde_json::to_vec(body).unwrap();
    let response = http
        .post(format!("{base}/webhooks/whatsapp"))
        .header("x-hub-signature-256", signature::sign(APP_SECRET.as_bytes(), &bytes))
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> Value {
    http.get(format!("{base}{path}")).bearer_auth(API_KEY).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_acknowledgement_loses_nothing_and_applies_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut server = spawn(dir.path());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    // 100 contacts × 10 messages, 100 messages per webhook, back to back.
    let mut acknowledged = Vec::new();
    for batch in 0..10 {
        let mut p = payload("text.json", now);
        let value = first_value(&mut p);
        let mut messages = Vec::new();
        let mut contacts = Vec::new();
        for i in 0..100 {
            let n = batch * 100 + i;
            let from = format!("55119{:08}", 10_000_000 + n % 100);
            let id = format!("wamid.CRASH{n:04}");
            messages.push(json!({ "from": from, "id": id, "timestamp": now.to_string(), "type": "text", "text": { "body": format!("mensagem {n}") } }));
            contacts.push(json!({ "profile": { "name": format!("Cliente {}", n % 100) }, "wa_id": from }));
            acknowledged.push(id);
        }
        value["messages"] = json!(messages);
        value["contacts"] = json!(contacts);
        assert_eq!(post(&http, &server.base, &p).await, 200);
        if batch == 4 {
            // Let the pipeline get part-way, so the kill lands on a mix of
            // applied, half-applied and untouched events.
            wait_for("the pipeline to apply some events", || async {
                let h = get(&http, &server.base, "/healthz").await;
                h["journal_pending"].as_u64().is_some_and(|n| n < 450).then_some(())
            })
            .await;
        }
    }
    // Killed the instant the last batch was acknowledged: most of it is
    // still in the journal, some of it half-way through the pipeline.
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    drop(server);

    let server = spawn(dir.path());
    assert!(server.resumed > 0, "the kill interrupted the pipeline (else this test proves nothing)");
    assert!(server.resumed < acknowledged.len(), "some events were applied before the kill");
    eprintln!("resumed {} of {} acknowledged events after SIGKILL", server.resumed, acknowledged.len());
    // Redeliveries of acknowledged messages after the crash stay duplicates.
    let mut again = payload("text.json", now);
    first_value(&mut again)["messages"][0]["id"] = json!("wamid.CRASH0000");
    first_value(&mut again)["messages"][0]["from"] = json!("5511910000000");
    assert_eq!(post(&http, &server.base, &again).await, 200);

    wait_for("the restarted pipeline to drain", || async {
        let h = get(&http, &server.base, "/healthz").await;
        (h["idle"] == true).then_some(())
    })
    .await;

    let mut seen = std::collections::HashMap::new();
    let mut decisions = 0;
    let page = get(&http, &server.base, "/v1/contacts?limit=500").await;
    let contacts = page["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 100, "one contact per sender");
    for c in contacts {
        let convs =
            get(&http, &server.base, &format!("/v1/contacts/{}/conversations", c["id"].as_str().unwrap())).await;
        for conv in convs["conversations"].as_array().unwrap() {
            let view = get(&http, &server.base, &format!("/v1/conversations/{}", conv["id"].as_str().unwrap())).await;
            for m in view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "inbound") {
                *seen.entry(m["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
            }
            decisions += view["decisions"].as_array().unwrap().len();
        }
        assert_eq!(c["stats"]["inbound_messages"], 10, "counted once each: {c}");
    }
    for id in &acknowledged {
        assert_eq!(seen.get(id), Some(&1), "{id} must be recorded exactly once");
    }
    assert_eq!(seen.len(), acknowledged.len());
    assert_eq!(decisions, acknowledged.len(), "one decision per message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_a_directory_in_use_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = spawn(dir.path());
    let second = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("SWITCHBOARD_SERVER__LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_SERVER__DATA_DIR", dir.path())
        .output()
        .expect("the switchboard binary runs");
    assert!(!second.status.success(), "two servers must never share one store");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another Switchboard process"), "{stderr}");
}

/// Every inbound and outbound message of every contact, and every audit
/// entry of their conversations, via the API.
async fn all_messages(http: &reqwest::Client, base: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut messages, mut audit) = (Vec::new(), Vec::new());
    let page = get(http, base, "/v1/contacts?limit=500").await;
    for c in page["contacts"].as_array().unwrap() {
        let convs = get(http, base, &format!("/v1/contacts/{}/conversations", c["id"].as_str().unwrap())).await;
        for conv in convs["conversations"].as_array().unwrap() {
            let id = conv["id"].as_str().unwrap();
            let view = get(http, base, &format!("/v1/conversations/{id}")).await;
            messages.extend(view["messages"].as_array().unwrap().iter().cloned());
            let entries = get(http, base, &format!("/v1/conversations/{id}/audit")).await;
            audit.extend(entries["entries"].as_array().unwrap().iter().cloned());
        }
    }
    (messages, audit)
}

async fn drained(http: &reqwest::Client, base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let h = get(http, base, "/healthz").await;
        if h["idle"] == true {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the pipeline and the send queue never drained: {h}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// SIGKILL while replies are being sent to Meta, again and again: a reply
/// whose send a crash interrupted is recorded as `unknown` and never sent
/// a second time; every acknowledged message is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_sending_never_sends_a_reply_twice() {
    let meta = FakeMeta::start().await;
    // Each send takes a while, so kills land on sends in flight.
    meta.set_latency(std::time::Duration::from_millis(40));
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let env =
        [("SWITCHBOARD_OUTBOUND__GRAPH_BASE", meta.base.as_str()), ("SWITCHBOARD_DEMO__ACCESS_TOKEN", "EAAtoken")];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let cycles = 6;
    let mut acknowledged = Vec::new();
    for cycle in 0..cycles {
        let server = spawn_with(dir.path(), &env, Stdio::inherit());
        let before = meta.sent().len();
        let mut p = payload("text.json", now);
        let value = first_value(&mut p);
        let mut messages = Vec::new();
        let mut contacts = Vec::new();
        for i in 0..50 {
            // New contacts each cycle: after business hours the demo router
            // acknowledges a contact once, so a contact writing again would
            // get no reply and nothing would be in flight to kill.
            let from = format!("55119{:08}", 20_000_000 + cycle * 50 + i);
            let id = format!("wamid.SEND{cycle}.{i}");
            messages.push(json!({ "from": from, "id": id, "timestamp": now.to_string(), "type": "text", "text": { "body": "Oi, bom dia" } }));
            contacts.push(json!({ "profile": { "name": format!("Cliente {i}") }, "wa_id": from }));
            acknowledged.push(id);
        }
        value["messages"] = json!(messages);
        value["contacts"] = json!(contacts);
        assert_eq!(post(&http, &server.base, &p).await, 200);
        wait_for("sends to be under way", || async { (meta.sent().len() >= before + 10).then_some(()) }).await;
        drop(server); // SIGKILL
    }
    let server = spawn_with(dir.path(), &env, Stdio::inherit());
    drained(&http, &server.base).await;

    let (messages, audit) = all_messages(&http, &server.base).await;
    let mut stored = std::collections::HashMap::new();
    for m in messages.iter().filter(|m| m["direction"] == "inbound") {
        *stored.entry(m["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    let lost = acknowledged.iter().filter(|id| !stored.contains_key(*id)).count();
    let stored_twice = stored.values().filter(|&&n| n > 1).count();
    let mut sends = std::collections::HashMap::new();
    for s in meta.sent() {
        *sends.entry(s.body["biz_opaque_callback_data"].as_str().unwrap_or_default().to_string()).or_insert(0) += 1;
    }
    let sent_twice = sends.values().filter(|&&n| n > 1).count();
    let outbound: Vec<&Value> = messages.iter().filter(|m| m["direction"] == "outbound").collect();
    let unknown = outbound.iter().filter(|m| m["status"] == "unknown").count();
    eprintln!(
        "kill cycles {cycles}: acknowledged {}, lost {lost}, stored twice {stored_twice}; replies {}, requests to Meta {}, \
         sent twice {sent_twice}, outcome unknown after a kill {unknown}",
        acknowledged.len(),
        outbound.len(),
        meta.sent().len()
    );
    assert_eq!((lost, stored_twice), (0, 0));
    assert_eq!(sent_twice, 0, "a reply went to Meta twice");
    for m in &outbound {
        let id = m["id"].as_str().unwrap();
        let expected = if m["status"] == "unknown" { 0..=1 } else { 1..=1 };
        assert!(expected.contains(sends.get(id).unwrap_or(&0)), "{m}");
    }
    let recorded = audit.iter().filter(|e| e["action"] == "send_outcome_unknown").count();
    assert_eq!(recorded, unknown, "every unknown outcome is in the audit log");
}

/// A message with a sender that is no phone number is kept (quarantined)
/// and the log names ids, never the message's content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_names_ids_not_message_content() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let data = dir.path().join("data");
    let server = spawn_with(&data, &[], Stdio::from(log));
    let http = reqwest::Client::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let from = format!("{}PRIVATE-SENDER-TAIL", "9".repeat(40));
    let p = text_message(&from, "Somebody", "wamid.BADFROM", "PRIVATE-MESSAGE-TEXT", now);
    assert_eq!(post(&http, &server.base, &p).await, 200, "acknowledged: kept, not lost");
    wait_for("the event to be quarantined", || async {
        (get(&http, &server.base, "/healthz").await["quarantined"] == 1).then_some(())
    })
    .await;
    drop(server);
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("wamid.BADFROM"), "the log names the event: {text}");
    assert!(!text.contains("PRIVATE-MESSAGE-TEXT"), "the message text is logged: {text}");
    assert!(!text.contains("PRIVATE-SENDER-TAIL"), "the whole sender is logged: {text}");
}

/// A small filesystem of its own, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(megabytes: u32) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the filesystem at `dir` with one file; returns its path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 1 << 16];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

/// The disk fills under load: webhooks get 503 (Meta retries them) and
/// `/healthz` says unhealthy; once space is freed the server recovers by
/// itself — no restart — and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_unhealthy_and_recovers_by_itself_when_space_returns() {
    let fs = match Tmpfs::mount(96) {
        Ok(fs) => fs,
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: a full disk needs a tmpfs of its own ({why}); run as root (CI does)");
            return;
        }
        Err(why) => panic!("CI must run the full-disk test: {why}"),
    };
    let data = fs.0.path().join("data");
    let server = spawn_with(&data, &[], Stdio::inherit());
    // A fresh connection per request: the server behind the port changes
    // twice, and a pooled connection to the one before would be closed.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut acknowledged = Vec::new();
    let mut n = 0;
    let mut statuses = Vec::new();
    let mut send = async || {
        n += 1;
        let id = format!("wamid.DISK{n}");
        let p = text_message(&format!("55119{:08}", 30_000_000 + n % 20), "Cliente", &id, "Oi", now);
        // The server stops in order when storage fails: a request that
        // meets the switch can get no answer (0 here) and is not
        // acknowledged, so it is the sender's to retry.
        let status = try_post(&http, &server.base, &p).await.unwrap_or(0);
        if status == 200 {
            acknowledged.push(id);
        }
        statuses.push(status);
        status
    };
    assert_eq!(send().await, 200);
    let filler = fill(fs.0.path());
    // Writes fail once what sled buffered must reach the disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while send().await != 503 {
        assert!(std::time::Instant::now() < deadline, "webhooks were never refused on a full disk");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let health = wait_for("/healthz to say unhealthy", || async {
        let resp = http.get(format!("{}/healthz", server.base)).send().await.ok()?;
        let code = resp.status().as_u16();
        let body: Value = resp.json().await.ok()?;
        (code == 503 && body["status"] == "unhealthy").then_some(body)
    })
    .await;
    assert_eq!(health["storage"]["writable"], false, "{health}");
    // The server stops in order and the port answers for it meanwhile (a
    // connection open across the switch may be closed: clients retry).
    wait_for("the storage gauge on /metrics", || async {
        let text = http.get(format!("{}/metrics", server.base)).send().await.ok()?.text().await.ok()?;
        text.contains("switchboard_storage_unwritable 1").then_some(())
    })
    .await;

    std::fs::remove_file(&filler).unwrap();
    wait_for("the server to recover by itself", || async {
        let h = http.get(format!("{}/healthz", server.base)).send().await.ok()?;
        (h.status().as_u16() == 200).then_some(())
    })
    .await;
    assert_eq!(send().await, 200, "webhooks are accepted again");
    drained(&http, &server.base).await;
    let (messages, _) = all_messages(&http, &server.base).await;
    for id in &acknowledged {
        let stored = messages.iter().filter(|m| m["id"] == id.as_str()).count();
        assert_eq!(stored, 1, "{id} was acknowledged");
    }
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    eprintln!(
        "full disk: {} acknowledged, {refused} refused with 503; recovered without a restart",
        acknowledged.len()
    );
}
