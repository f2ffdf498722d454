//! The plugin author's loop with the real binary: `plugin init` scaffolds a
//! crate that builds, `plugin run` prints the decision with fuel, time and
//! logs, `plugin check` validates as upload does, `plugin deploy` and
//! `plugin logs` talk to a running host.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::*;

fn switchboard(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the switchboard binary runs")
}

fn guest_path(name: &str) -> String {
    Path::new(env!("SB_BUILT_GUESTS_DIR")).join(format!("{name}.wasm")).display().to_string()
}

fn input(name: &str) -> String {
    workspace_root().join("examples/inputs").join(name).display().to_string()
}

#[test]
fn plugin_run_prints_the_decision_with_fuel_time_and_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = switchboard(
        &[
            "plugin",
            "run",
            &guest_path("default_router"),
            "--world",
            "router",
            "--input",
            &input("router-greeting.json"),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["world"], "router");
    assert_eq!(report["decision"]["handler"]["type"], "bot", "{report}");
    assert!(report["fuel_used"].as_u64().unwrap() > 0);
    assert!(report["duration_us"].as_u64().is_some());
    assert_eq!(report["limits"]["fuel"], 50_000_000, "the host's limits");

    let out = switchboard(
        &["plugin", "run", &guest_path("default_router"), "--input", &input("router-urgent.json")],
        tmp.path(),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["decision"]["handler"]["assignee"],
        serde_json::json!({ "kind": "agent", "id": "marta" }),
        "{report}"
    );
    assert_eq!(report["decision"]["priority"], "urgent");

    // Settings, logs and failures are shown too.
    let out = switchboard(
        &[
            "plugin",
            "run",
            &guest_path("echo_router"),
            "--input",
            &input("router-greeting.json"),
            "--config-value",
            "echo-setting=42",
        ],
        tmp.path(),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen: Value = serde_json::from_str(report["decision"]["reason"].as_str().unwrap()).unwrap();
    assert_eq!(seen["setting"], "42");
    let out = switchboard(
        &["plugin", "run", &guest_path("trap_router"), "--input", &input("router-greeting.json")],
        tmp.path(),
    );
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["failure"].as_str().unwrap().starts_with("trap"), "{report}");
    assert_eq!(report["logs"][0]["message"], "about to fail");
}

#[test]
fn plugin_check_validates_as_an_upload_would() {
    let tmp = tempfile::tempdir().unwrap();
    let ok = switchboard(&["plugin", "check", &guest_path("echo_router")], tmp.path());
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: a router component for switchboard:plugin@0.1.0"));
    let bad = switchboard(&["plugin", "check", &guest_path("net_router")], tmp.path());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("wasi:sockets"), "{}", String::from_utf8_lossy(&bad.stderr));
    let wrong = switchboard(&["plugin", "check", &guest_path("echo_router"), "--world", "feedback"], tmp.path());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("this is a router component"));
}

#[test]
fn plugin_init_scaffolds_a_crate_for_every_world_that_builds_and_passes_check() {
    let tmp = tempfile::tempdir().unwrap();
    // Share the guests' build directory so dependencies compile once.
    let target = Path::new(env!("SB_BUILT_GUESTS_DIR")).ancestors().nth(2).unwrap().to_path_buf();
    for world in ["router", "follow-up", "feedback"] {
        let name = format!("my-{world}");
        let out = switchboard(&["plugin", "init", &name, "--world", world], tmp.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dir = tmp.path().join(&name);
        let build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--target-dir"])
            .arg(&target)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(build.status.success(), "{world}: {}", String::from_utf8_lossy(&build.stderr));
        let wasm = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
        let check = switchboard(&["plugin", "check", &wasm.display().to_string(), "--world", world], &dir);
        assert!(check.status.success(), "{world}: {}", String::from_utf8_lossy(&check.stderr));
        let run = switchboard(&["plugin", "run", &wasm.display().to_string(), "--input", "input.json"], &dir);
        assert!(run.status.success(), "{world}: {}", String::from_utf8_lossy(&run.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_deploy_and_logs_talk_to_a_running_host() {
    let host = TestHost::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let (base, cwd) = (host.base.clone(), tmp.path().to_path_buf());
    let deploy = tokio::task::spawn_blocking(move || {
        switchboard(
            &["plugin", "deploy", &guest_path("trap_router"), "--world", "router", "--url", &base, "--key", API_KEY],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(!deploy.status.success(), "a trapping router is refused");
    assert!(String::from_utf8_lossy(&deploy.stderr).contains("422"), "{}", String::from_utf8_lossy(&deploy.stderr));

    let (base, cwd) = (host.base.clone(), tmp.path().to_path_buf());
    let deploy = tokio::task::spawn_blocking(move || {
        switchboard(
            &[
                "plugin",
                "deploy",
                &guest_path("echo_router"),
                "--world",
                "router",
                "--activate",
                "--url",
                &base,
                "--key",
                API_KEY,
            ],
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(deploy.status.success(), "{}", String::from_utf8_lossy(&deploy.stderr));
    let uploaded: Value = serde_json::from_slice(&deploy.stdout).unwrap();
    assert_eq!(uploaded["active"]["version"], uploaded["version"]["version"]);

    // A plugin that logs, made active in-process (it could not pass upload).
    let stages = host.server().state.stages();
    stages.plugins.activate("demo", stages.plugins.runtime().compile(&guest("trap_router"), None).unwrap());
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;
    let (base, cwd) = (host.base.clone(), tmp.path().to_path_buf());
    let logs = tokio::task::spawn_blocking(move || {
        switchboard(&["plugin", "logs", "--world", "router", "--url", &base, "--key", API_KEY], &cwd)
    })
    .await
    .unwrap();
    assert!(logs.status.success(), "{}", String::from_utf8_lossy(&logs.stderr));
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("about to fail"), "{text}");
}

/// The README's first command is `cargo run -- serve` at the workspace
/// root: that only works while the default members hold exactly one
/// binary, the host's.
#[test]
fn cargo_run_at_the_root_means_the_switchboard_binary() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let defaults: Vec<&str> = meta["workspace_default_members"]
        .as_array()
        .expect("default members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let bins: Vec<&str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| defaults.contains(&id)))
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(bins, ["switchboard"], "binaries `cargo run` would choose between");
}

/// An error is one clear line, without a backtrace, even where
/// `RUST_BACKTRACE` is set (it is on many machines).
#[test]
fn cli_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["plugin", "check", "missing.wasm"])
        .env("RUST_BACKTRACE", "1")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: reading missing.wasm"), "{stderr}");
}

/// Without `--url`, the CLI talks to the server where the configuration
/// has it listen — here a random port, not 8080.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_find_the_server_at_the_configured_address() {
    let host = TestHost::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let listen = host.base.trim_start_matches("http://").to_string();
    assert!(!listen.ends_with(":8080"), "the test needs a port other than the default");
    std::fs::write(tmp.path().join("switchboard.toml"), format!("[server]\nlisten = \"{listen}\"\n")).unwrap();
    // Stamped with the test clock's now, and sent as stamped.
    let body = tmp.path().join("greeting.json");
    std::fs::write(&body, serde_json::to_vec(&payload("greeting.json", host.now_secs())).unwrap()).unwrap();
    let cwd = tmp.path().to_path_buf();
    let (send, logs) = tokio::task::spawn_blocking(move || {
        let send =
            switchboard(&["webhook", "send", "greeting.json", "--keep-timestamps", "--secret", APP_SECRET], &cwd);
        let logs = switchboard(&["plugin", "logs", "--world", "router", "--key", API_KEY], &cwd);
        (send, logs)
    })
    .await
    .unwrap();
    assert!(send.status.success(), "{}", String::from_utf8_lossy(&send.stderr));
    assert!(String::from_utf8_lossy(&send.stdout).starts_with("200"), "{}", String::from_utf8_lossy(&send.stdout));
    assert!(logs.status.success(), "{}", String::from_utf8_lossy(&logs.stderr));
    host.settle().await;
    assert!(host.contact("+5511987654321").await.is_some(), "the message reached the server");
}
