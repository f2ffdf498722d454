//! A noisy neighbour: passes the upload checks, then burns its whole budget
//! (fuel or deadline) on every message that says "burn".
use switchboard_plugin::router::*;

struct Burn;

impl Router for Burn {
    fn route(input: Input) -> Result<Decision, String> {
        if input.message.lowercase_text().contains("burn") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(input.context.now as u64));
            }
        }
        Ok(Decision::human(Assignee::Team("support".into()), "burn router, calm message"))
    }
}

switchboard_plugin::export_router!(Burn);
