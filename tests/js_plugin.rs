//! A router written in JavaScript (examples/js-router), componentized with
//! ComponentizeJS from npm, uploaded and routing real messages.
//!
//! Needs Node.js and npm. Where they are missing or the npm registry cannot
//! be reached, the test says so and skips; a build failure of the example
//! itself fails the test.

mod support;

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;
use serde_json::json;
use support::*;

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// npm writes `node_modules/.package-lock.json` when an install completes:
/// without it, or older than the lock file, the modules are partial or stale
/// (an interrupted install, an upgraded lock) and `npm ci` starts over.
fn installed(dir: &std::path::Path) -> bool {
    let modified = |p: &str| std::fs::metadata(dir.join(p)).and_then(|m| m.modified()).ok();
    modified("node_modules/.package-lock.json").zip(modified("package-lock.json")).is_some_and(|(i, l)| i >= l)
}

/// Builds `examples/js-router` into the test's target directory (once).
fn build_js_router() -> Result<Vec<u8>, String> {
    if !tool("node") || !tool("npm") {
        return Err("node and npm are not installed".into());
    }
    let dir = workspace_root().join("examples/js-router");
    if !installed(&dir) {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm install: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm install failed (registry unreachable?): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let wasm = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("js-router.wasm");
    let newest_source = ["router.js", "build.mjs", "package.json"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok())
        .max();
    let fresh = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok().zip(newest_source).is_some_and(|(w, s)| w > s);
    if !fresh {
        let out = Command::new("node").arg("build.mjs").arg(&wasm).current_dir(&dir).output().expect("node runs");
        assert!(
            out.status.success(),
            "building the JavaScript example failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(std::fs::read(&wasm).expect("the component was written"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_router_is_uploaded_and_routes_messages() {
    let wasm = match tokio::task::spawn_blocking(build_js_router).await.unwrap() {
        Ok(w) => w,
        Err(why) => {
            eprintln!("SKIPPED a_javascript_router_is_uploaded_and_routes_messages: {why}");
            return;
        }
    };
    assert!(wasm.len() > 1_000_000, "a ComponentizeJS component embeds the JS engine ({} bytes)", wasm.len());
    let host = TestHost::start().await;
    let (status, up) = host.upload(API_KEY, "router", wasm, true).await;
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["version"]["wit_version"], "0.1.0");

    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;
    let d = &host.decisions_of(API_KEY, "+5511987654321").await[0];
    assert_eq!(d["outcome"], "decided", "{d}");
    assert_eq!(d["plugin"]["version"], up["version"]["version"]);
    assert_eq!(d["decision"]["handler"]["reply"]["body"], "Hi Ana Souza! How can we help?");
    assert_eq!(d["decision"]["tags"], json!(["js"]));

    // Settings reach the JavaScript `config` import on the next decision.
    host.call(Method::PUT, "/v1/plugins/router/config", API_KEY, Some(json!({ "config": { "team": "humanos" } })))
        .await;
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.JS2", "quero falar com um humano", host.now_secs()))
        .await;
    host.settle().await;
    let d = &host.decisions_of(API_KEY, "+5511987654321").await[1];
    assert_eq!(d["decision"]["handler"]["assignee"], json!({ "kind": "team", "id": "humanos" }), "{d}");
    assert_eq!(d["decision"]["priority"], "high");
    assert_eq!(d["decision"]["respond_within_ms"], 15 * 60_000);

    let (_, logs) = host.get("/v1/plugins/router/logs").await;
    assert!(
        logs["logs"].as_array().unwrap().iter().any(|l| l["message"].as_str().unwrap().starts_with("routing wamid")),
        "{logs}"
    );
}
