//! Builds the benchmark guests: the router as a Switchboard component
//! (wasm32-wasip2) and as an Extism plugin (wasm32-unknown-unknown), into
//! the shared `target/wasm-plugins`. Adds a missing target with rustup.

#[path = "../../host/build_support/rust_target.rs"]
mod rust_target;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = dir.ancestors().nth(2).expect("tests/bench lives two levels down").to_path_buf();
    let target_dir =
        env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("wasm-plugins");
    let manifest = dir.join("guests/Cargo.toml");
    for (target, package) in [("wasm32-wasip2", "bench-router"), ("wasm32-unknown-unknown", "extism-router")] {
        rust_target::ensure(&root, target, "for the benchmark guests");
        build(&root, &manifest, &target_dir, target, package);
    }
    println!("cargo:rerun-if-changed={}", dir.join("guests").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!(
        "cargo:rustc-env=BENCH_ROUTER_WASM={}",
        target_dir.join("wasm32-wasip2/release/bench_router.wasm").display()
    );
    println!(
        "cargo:rustc-env=BENCH_EXTISM_WASM={}",
        target_dir.join("wasm32-unknown-unknown/release/extism_router.wasm").display()
    );
    // The host's own guests (tests/plugins), built by host/build.rs.
    println!("cargo:rustc-env=BENCH_GUESTS_DIR={}", target_dir.join("wasm32-wasip2/release").display());
}

fn build(root: &Path, manifest: &Path, target_dir: &Path, target: &str, package: &str) {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.env_clear();
    for (key, value) in env::vars_os() {
        let k = key.to_string_lossy();
        if matches!(k.as_ref(), "PATH" | "HOME" | "RUSTUP_HOME" | "CARGO_HOME" | "RUSTUP_TOOLCHAIN" | "TMPDIR")
            || k.starts_with("CARGO_NET_")
            || k.starts_with("CARGO_HTTP_")
            || k.starts_with("CARGO_REGISTRIES_")
            || k.to_ascii_lowercase().ends_with("_proxy")
        {
            cmd.env(&key, value);
        }
    }
    cmd.args(["build", "--release", "--target", target, "-p", package, "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // The guest workspace's own `.cargo/config.toml` (stack size) applies.
        .current_dir(manifest.parent().unwrap_or(root));
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    assert!(status.success(), "building {package} for {target} failed");
}
