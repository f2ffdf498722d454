//! The benchmark's routing logic as an Extism plugin: JSON in (the same
//! context the host builds), JSON out (a decision).
use extism_pdk::*;
use serde_json::{Value, json};

const URGENT: &[&str] = &["urgent", "urgente", "cancel", "cancelar", "refund", "reembolso"];
const LATE: &[&str] = &["proposal", "negotiation", "contract"];
const BUYING: &[&str] = &["price", "preço", "precio", "quote", "plan", "plano"];
const GREETING: &[&str] = &["oi", "hi", "hola", "olá", "hello"];

fn human(team: &str, priority: &str, within_min: u64, reason: &str) -> Value {
    json!({ "needs_reply": true, "handler": { "type": "human", "assignee": { "kind": "team", "id": team } },
            "acknowledge": null, "priority": priority, "respond_within_ms": within_min * 60_000, "tags": [], "reason": reason })
}

#[plugin_fn]
pub fn route(input: String) -> FnResult<String> {
    let input: Value = serde_json::from_str(&input)?;
    let text = input["message"]["text"].as_str().unwrap_or_default().to_lowercase();
    let decision = if URGENT.iter().any(|w| text.contains(w)) {
        human("support", "urgent", 15, "urgent keyword")
    } else if input["context"]["deal"]["stage"].as_str().is_some_and(|s| LATE.contains(&s)) {
        human("sales", "high", 30, "late-stage deal")
    } else if BUYING.iter().any(|w| text.contains(w)) {
        human("sales", "normal", 120, "buying intent")
    } else {
        let t = &input["context"]["local_time"];
        let (day, minute) = (t["weekday"].as_u64().unwrap_or(0), t["minute_of_day"].as_u64().unwrap_or(0));
        let open = day < 5 && (540..1080).contains(&minute);
        if open && GREETING.iter().any(|w| text.trim_matches(|c: char| !c.is_alphanumeric()) == *w) {
            json!({ "needs_reply": true, "handler": { "type": "bot", "reply": { "type": "text", "body": "Hi! How can we help?" } },
                    "acknowledge": null, "priority": "normal", "respond_within_ms": null, "tags": [], "reason": "greeting" })
        } else {
            human("support", "normal", 240, "default")
        }
    };
    Ok(decision.to_string())
}
