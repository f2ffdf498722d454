//! Never returns: the host's fuel or deadline must stop it.
use switchboard_plugin::router::*;

struct Spin;

impl Router for Spin {
    fn route(input: Input) -> Result<Decision, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(input.context.now as u64));
        }
    }
}

switchboard_plugin::export_router!(Spin);
