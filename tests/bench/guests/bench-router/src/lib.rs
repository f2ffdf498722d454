//! The benchmark's routing logic as a Switchboard router component (the
//! same rules as `switchboard_bench::native`, the Rhai and Lua scripts, the
//! Extism plugin and the HTTP webhook).
use switchboard_plugin::router::*;

const URGENT: &[&str] = &["urgent", "urgente", "cancel", "cancelar", "refund", "reembolso"];
const LATE: &[&str] = &["proposal", "negotiation", "contract"];
const BUYING: &[&str] = &["price", "preço", "precio", "quote", "plan", "plano"];
const GREETING: &[&str] = &["oi", "hi", "hola", "olá", "hello"];

struct Bench;

impl Router for Bench {
    fn route(input: Input) -> Result<Decision, String> {
        let text = input.message.lowercase_text();
        let team = |t: &str| Assignee::Team(t.into());
        if URGENT.iter().any(|w| text.contains(w)) {
            return Ok(Decision::human(team("support"), "urgent keyword").with_priority(Priority::Urgent).within_minutes(15));
        }
        if input.context.deal.as_ref().is_some_and(|d| LATE.contains(&d.stage.as_str())) {
            return Ok(Decision::human(team("sales"), "late-stage deal").with_priority(Priority::High).within_minutes(30));
        }
        if BUYING.iter().any(|w| text.contains(w)) {
            return Ok(Decision::human(team("sales"), "buying intent").within_minutes(120));
        }
        let t = &input.context.local_time;
        let open = t.weekday < 5 && (540..1080).contains(&t.minute_of_day);
        if open && GREETING.iter().any(|w| text.trim_matches(|c: char| !c.is_alphanumeric()) == *w) {
            return Ok(Decision::bot(Reply::Text("Hi! How can we help?".into()), "greeting"));
        }
        Ok(Decision::human(team("support"), "default").within_minutes(240))
    }
}

switchboard_plugin::export_router!(Bench);
