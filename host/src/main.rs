//! The `switchboard` binary: everything lives in the library.

/// glibc's malloc and free were a seventh of the server's CPU under load
/// (many short-lived buffers freed on other threads than allocated them);
/// mimalloc is the allocator the field reaches for there. See
/// docs/PERFORMANCE.md for the figures side by side.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error is one clear line (its causes joined with `: `); the backtrace
/// only when asked for with `SWITCHBOARD_BACKTRACE=1` (`RUST_BACKTRACE` is
/// often set for other reasons).
fn main() -> std::process::ExitCode {
    match switchboard::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if std::env::var_os("SWITCHBOARD_BACKTRACE").is_some_and(|v| v == "1") {
                eprintln!("\n{}", e.backtrace());
            }
            std::process::ExitCode::FAILURE
        }
    }
}
