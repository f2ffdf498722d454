//! Traps on every call (a Rust panic aborts: `unreachable`).
use switchboard_plugin::router::*;

struct Trap;

impl Router for Trap {
    fn route(input: Input) -> Result<Decision, String> {
        log(LogLevel::Info, "about to fail");
        panic!("deliberate failure routing {}", input.message.id)
    }
}

switchboard_plugin::export_router!(Trap);
