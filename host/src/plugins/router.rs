//! The router world on the host side: how it is called, and the check
//! that a decision is one the host can act on.

use wasmtime::Store;

use super::call::Call;
use super::runtime::Pre;
use super::sandbox::HostState;
use super::{Failure, RouterInput, World, v0_1, v0_2};
use crate::clock::Millis;
use crate::config::PluginLimits;
use crate::model::{Assignee, Handler, Reply, RoutingDecision};

/// WhatsApp's limit on a text message body.
const MAX_TEXT_CHARS: usize = 4096;
const MAX_TAGS: usize = 16;
const MAX_TAG_BYTES: usize = 64;
const MAX_REASON_BYTES: usize = 1024;
const MAX_RESPOND_WITHIN_MS: u64 = 30 * 24 * 3600 * 1000;

impl Call for RouterInput {
    const WORLD: World = World::Router;
    const SAMPLE: &'static str = include_str!("../../../examples/inputs/router-greeting.json");
    const OUTPUT: &'static str = "decision";
    type Output = RoutingDecision;

    fn now(&self) -> Millis {
        self.context.now
    }

    fn seed(&self) -> u64 {
        seed_of(&self.context.tenant, &self.message.id)
    }

    fn call(&self, pre: &Pre, store: &mut Store<HostState>) -> wasmtime::Result<Result<RoutingDecision, String>> {
        match pre {
            Pre::RouterV0_1(pre) => v0_1::route(pre, store, &self.context, &self.message),
            Pre::RouterV0_2(pre) => v0_2::route(pre, store, &self.context, &self.message),
            _ => Err(wasmtime::Error::msg("not a router")),
        }
    }

    fn validate(&self, output: RoutingDecision, limits: &PluginLimits) -> Result<RoutingDecision, Failure> {
        validate(output, limits.output_bytes)
    }
}

/// Same input, same seed: decisions replay exactly.
pub(super) fn seed_of(tenant: &str, id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (tenant, id).hash(&mut h);
    h.finish()
}

pub(super) fn invalid(msg: impl Into<String>) -> Failure {
    Failure::InvalidOutput(msg.into())
}

/// Rejects decisions the host could not carry out or store safely.
pub fn validate(d: RoutingDecision, output_cap: usize) -> Result<RoutingDecision, Failure> {
    let size = d.reason.len()
        + d.tags.iter().map(String::len).sum::<usize>()
        + reply_size(match &d.handler {
            Handler::Bot { reply } => Some(reply),
            _ => None,
        })
        + reply_size(d.acknowledge.as_ref());
    if size > output_cap {
        return Err(invalid(format!("the decision is {size} bytes; the cap is {output_cap}")));
    }
    if d.reason.len() > MAX_REASON_BYTES {
        return Err(invalid(format!("reason is longer than {MAX_REASON_BYTES} bytes")));
    }
    if d.tags.len() > MAX_TAGS {
        return Err(invalid(format!("{} tags; at most {MAX_TAGS}", d.tags.len())));
    }
    if let Some(t) = d.tags.iter().find(|t| t.is_empty() || t.len() > MAX_TAG_BYTES || t.chars().any(char::is_control))
    {
        return Err(invalid(format!("tag {t:?} must be 1–{MAX_TAG_BYTES} bytes without control characters")));
    }
    if d.respond_within_ms.is_some_and(|ms| ms > MAX_RESPOND_WITHIN_MS) {
        return Err(invalid("respond-within is longer than 30 days"));
    }
    match &d.handler {
        Handler::Bot { reply } => check_reply(reply)?,
        Handler::Human { assignee: Assignee::Agent(id) | Assignee::Team(id) } => {
            if id.trim().is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
                return Err(invalid(format!("assignee id {id:?} must be 1–128 printable characters")));
            }
        }
        Handler::Nobody => {}
    }
    if let Some(ack) = &d.acknowledge {
        check_reply(ack)?;
    }
    Ok(d)
}

fn reply_size(r: Option<&Reply>) -> usize {
    match r {
        Some(Reply::Text { body }) => body.len(),
        Some(Reply::Template(t)) => {
            t.name.len() + t.language.len() + t.parameters.iter().map(|p| p.shown().len()).sum::<usize>()
        }
        Some(other) => serde_json::to_vec(other).map_or(0, |v| v.len()),
        None => 0,
    }
}

fn check_reply(r: &Reply) -> Result<(), Failure> {
    match r {
        Reply::Text { body } => {
            if body.trim().is_empty() {
                return Err(invalid("a text reply is empty"));
            }
            if body.chars().count() > MAX_TEXT_CHARS {
                return Err(invalid(format!("a text reply is longer than WhatsApp's {MAX_TEXT_CHARS} characters")));
            }
        }
        Reply::Template(t) => check_template(t)?,
        other => crate::outbound::limits::check(other).map_err(|e| invalid(format!("a reply: {e}")))?,
    }
    Ok(())
}

pub(super) fn check_template(t: &crate::model::Template) -> Result<(), Failure> {
    let name_ok = !t.name.is_empty()
        && t.name.len() <= 512
        && t.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(invalid(format!("template name {:?} must be lower-case letters, digits and _", t.name)));
    }
    if t.language.len() < 2 || t.language.len() > 15 {
        return Err(invalid(format!("template language {:?} is not a language code", t.language)));
    }
    if t.parameters.len() > 20 || t.parameters.iter().any(|p| p.shown().trim().is_empty() || p.shown().len() > 1024) {
        return Err(invalid("template parameters: at most 20, each 1–1024 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Priority, Template};

    fn decision(handler: Handler) -> RoutingDecision {
        RoutingDecision {
            needs_reply: true,
            handler,
            acknowledge: None,
            priority: Priority::Normal,
            respond_within_ms: None,
            tags: vec![],
            reason: "r".into(),
        }
    }

    #[test]
    fn accepts_sane_and_rejects_out_of_range() {
        let ok = decision(Handler::Bot { reply: Reply::Text { body: "hi".into() } });
        assert!(validate(ok, 65536).is_ok());
        let empty = decision(Handler::Bot { reply: Reply::Text { body: " ".into() } });
        assert!(matches!(validate(empty, 65536), Err(Failure::InvalidOutput(_))));
        let bad_template = decision(Handler::Bot { reply: Reply::Template(Template::text("Bad Name", "en", vec![])) });
        assert!(validate(bad_template, 65536).is_err());
        let mut tags = decision(Handler::Nobody);
        tags.tags = vec!["x".into(); 17];
        assert!(validate(tags, 65536).is_err());
        let big = decision(Handler::Bot { reply: Reply::Text { body: "a".repeat(2000) } });
        assert!(validate(big, 1000).is_err());
        let blank_agent = decision(Handler::Human { assignee: Assignee::Agent("".into()) });
        assert!(validate(blank_agent, 65536).is_err());
    }
}
