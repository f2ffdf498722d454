//! The `switchboard` binary: everything lives in the library.

/// glibc's malloc and free were a seventh of the server's CPU under load
/// (many short-lived buffers freed on other threads than allocated them);
/// mimalloc is the allocator the field reaches for there. See
/// docs/PERFORMANCE.md for the figures side by side.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    switchboard::cli::main()
}
