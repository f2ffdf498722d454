//! A router built against a WIT version the host does not serve (0.9.0):
//! the upload must say which versions it serves.
wit_bindgen::generate!({ path: "wit", world: "router" });

use exports::switchboard::plugin::routing::{Decision, Guest, Handler, Input};
use switchboard::plugin::types::Priority;

struct Future;

impl Guest for Future {
    fn route(_input: Input) -> Result<Decision, String> {
        Ok(Decision {
            needs_reply: false,
            handler: Handler::Nobody,
            acknowledge: None,
            priority: Priority::Low,
            respond_within: None,
            tags: vec![],
            reason: "from the future".into(),
        })
    }
}

export!(Future);
