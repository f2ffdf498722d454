//! The `switchboard` binary: everything lives in the library.

fn main() -> anyhow::Result<()> {
    switchboard::cli::main()
}
