//! Shared by the build scripts that compile guests (`host/build.rs`,
//! `tests/bench/build.rs`): rustup does not always fetch the targets that
//! `rust-toolchain.toml` lists (e.g. with `RUSTUP_AUTO_INSTALL=0`), so a
//! missing one is added here rather than failing deep inside cargo.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes sure the active toolchain has `target`, installing it with
/// `rustup target add` if not. `why` names what needs it, for the message.
pub fn ensure(root: &Path, target: &str, why: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|s| s.join("lib/rustlib").join(target).exists()) {
        return;
    }
    println!("cargo:warning=installing the {target} target with rustup ({why})");
    let status = Command::new("rustup").args(["target", "add", target]).current_dir(root).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`rustup target add {target}` failed ({s}); install the target and build again"),
        Err(e) => panic!(
            "the {target} target is missing and rustup could not be run ({e}); \
             install the target for your toolchain and build again"
        ),
    }
}
