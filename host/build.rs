//! Builds every guest component once, so `cargo build` and `cargo test` at
//! the root need no manual step and no `.wasm` is committed:
//!
//! - `plugins/` (the default plugins shipped with the host, embedded into
//!   the binary), and
//! - `tests/plugins/` (misbehaving plugins the end-to-end tests load).
//!
//! Both are separate workspaces built for `wasm32-wasip2` into
//! `target/wasm-plugins`, shared by every profile. If the target is not
//! installed (rustup does not always fetch the targets listed in
//! `rust-toolchain.toml`), it is added with `rustup target add`.

#[path = "build_support/rust_target.rs"]
mod rust_target;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ lives in the workspace root").to_path_buf();
    let target_root = env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let wasm_dir = target_root.join("wasm-plugins");

    rust_target::ensure(&root, WASM_TARGET, "needed to build the plugins");
    for workspace in ["plugins", "tests/plugins"] {
        build_guests(&root, &root.join(workspace).join("Cargo.toml"), &wasm_dir);
        watch(&root.join(workspace));
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("rust-toolchain.toml").display());

    let out = wasm_dir.join(WASM_TARGET).join("release");
    let default_router = out.join("default_router.wasm");
    assert!(default_router.exists(), "{} was not built", default_router.display());
    println!("cargo:rustc-env=SB_BUILT_DEFAULT_ROUTER_WASM={}", default_router.display());
    println!("cargo:rustc-env=SB_BUILT_ADAPTIVE_FOLLOW_UP_WASM={}", out.join("adaptive_follow_up.wasm").display());
    println!("cargo:rustc-env=SB_BUILT_ENGAGEMENT_FEEDBACK_WASM={}", out.join("engagement_feedback.wasm").display());
    println!("cargo:rustc-env=SB_BUILT_GUESTS_DIR={}", out.display());
}

/// Rerun when anything in a guest workspace changes, except build output.
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name() != "target" {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
}

/// `cargo build --release --target wasm32-wasip2` in a clean environment:
/// the outer build's variables (target dir, flags, jobserver) must not leak
/// into a build for another target.
fn build_guests(root: &Path, manifest: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.env_clear();
    for (key, value) in env::vars_os() {
        let k = key.to_string_lossy();
        let keep = matches!(k.as_ref(), "PATH" | "HOME" | "RUSTUP_HOME" | "CARGO_HOME" | "RUSTUP_TOOLCHAIN" | "TMPDIR")
            || k.starts_with("CARGO_NET_")
            || k.starts_with("CARGO_HTTP_")
            || k.starts_with("CARGO_REGISTRIES_")
            || k.starts_with("SSL_CERT")
            || k.to_ascii_lowercase().ends_with("_proxy");
        if keep {
            cmd.env(&key, value);
        }
    }
    cmd.args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        // The guest workspace's own `.cargo/config.toml` (stack size) applies.
        .current_dir(manifest.parent().unwrap_or(root));
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo for {}: {e}", manifest.display()));
    assert!(status.success(), "building the guests in {} failed ({status})", manifest.display());
}
