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
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env("SWITCHBOARD_SERVER__LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_SERVER__DATA_DIR", data_dir)
        .env("SWITCHBOARD_DEMO__APP_SECRET", APP_SECRET)
        .env("SWITCHBOARD_DEMO__API_KEY", API_KEY)
        .env("SWITCHBOARD_PIPELINE__WORKERS", "2")
        .env("RUST_LOG", std::env::var("CRASH_LOG").unwrap_or("warn".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
    let bytes = serde_json::to_vec(body).unwrap();
    http.post(format!("{base}/webhooks/whatsapp"))
        .header("x-hub-signature-256", signature::sign(APP_SECRET.as_bytes(), &bytes))
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .expect("webhook")
        .status()
        .as_u16()
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
        (h["journal_pending"] == 0 && h["outbound_queue"] == 0).then_some(())
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
