//! Allocates until the memory cap stops it.
use switchboard_plugin::router::*;

struct Hog;

impl Router for Hog {
    fn route(_input: Input) -> Result<Decision, String> {
        let mut kept: Vec<Vec<u8>> = Vec::new();
        loop {
            kept.push(std::hint::black_box(vec![1u8; 4 << 20]));
        }
    }
}

switchboard_plugin::export_router!(Hog);
