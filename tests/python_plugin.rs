//! A router written in Python (examples/python-router), componentized with
//! componentize-py from PyPI (`--stub-wasi`), uploaded and routing real
//! messages.
//!
//! Needs componentize-py. Where it is missing the test says so and skips —
//! except in CI (`CI` set), where `.ci/run` installs it and a skip fails.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::*;

fn build_python_router() -> Result<Vec<u8>, String> {
    let found = Command::new("componentize-py").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        return Err("componentize-py is not installed (pip install componentize-py==0.25.1)".into());
    }
    let dir = workspace_root().join("examples/python-router");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-router.wasm");
    let wit = workspace_root().join("wit/v0.1.0");
    let built = Command::new("componentize-py")
        .arg("-d")
        .arg(&wit)
        .args(["-w", "router", "componentize", "app", "-o"])
        .arg(&out)
        .arg("--stub-wasi")
        .current_dir(&dir)
        .output()
        .expect("componentize-py runs");
    assert!(built.status.success(), "componentize-py failed:\n{}", String::from_utf8_lossy(&built.stderr));
    Ok(std::fs::read(&out).expect("the component"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_router_is_uploaded_and_routes_messages() {
    let wasm = match build_python_router() {
        Ok(w) => w,
        Err(why) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: {why}");
            return;
        }
        Err(why) => panic!("CI must run the Python plugin test: {why}"),
    };
    let host = TestHost::start().await;
    let (status, body) = host.upload(API_KEY, "router", wasm, true).await;
    assert_eq!(status, 201, "{body}");
    host.post_payload(&text_message("5511980000010", "Py", "wamid.py1", "I want a refund", host.now_secs())).await;
    host.settle().await;
    let d = &host.decisions_of(API_KEY, "+5511980000010").await[0];
    assert_eq!(d["outcome"], "decided", "{d}");
    assert_eq!(d["decision"]["handler"]["assignee"]["id"], "billing", "{d}");
    assert_eq!(d["decision"]["reason"], "refund request");
}
