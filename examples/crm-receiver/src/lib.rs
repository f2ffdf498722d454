//! A small CRM receiver for Switchboard's sync events: it verifies the
//! `X-Switchboard-Signature` (HMAC-SHA256 of the raw body with the
//! endpoint's secret), drops redeliveries by idempotency key, and turns
//! events into HubSpot-shaped objects — contacts, companies, deals and
//! notes (the conversation log, decisions, follow-ups and staff actions).
//!
//! It keeps everything in memory and shows it at `GET /objects`. For tests
//! and demos it can be told to fail its next N deliveries (`fail_next`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Default)]
pub struct Crm {
    pub contacts: BTreeMap<String, Value>,
    pub companies: BTreeMap<String, Value>,
    pub deals: BTreeMap<String, Value>,
    pub notes: Vec<Value>,
    /// Event ids in arrival order, per contact (to check ordering).
    pub arrivals: BTreeMap<String, Vec<Value>>,
    seen: HashSet<String>,
    pub duplicates: usize,
    pub rejected_signatures: usize,
    /// Deliveries to refuse with 503 before accepting again.
    pub fail_next: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub secret: Arc<Mutex<String>>,
    pub crm: Arc<Mutex<Crm>>,
}

impl Receiver {
    pub fn new(secret: &str) -> Self {
        Receiver { secret: Arc::new(Mutex::new(secret.to_string())), crm: Arc::default() }
    }
}

pub fn app(receiver: Receiver) -> Router {
    Router::new().route("/events", post(receive)).route("/objects", get(objects)).with_state(receiver)
}

fn verify(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret = r.secret.lock().map(|s| s.clone()).unwrap_or_default();
    let signature = headers.get("x-switchboard-signature").and_then(|v| v.to_str().ok());
    let Ok(mut crm) = r.crm.lock() else { return StatusCode::INTERNAL_SERVER_ERROR };
    if !verify(&secret, &body, signature) {
        crm.rejected_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if crm.fail_next > 0 {
        crm.fail_next -= 1;
        crm.failed += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    let key = event["idempotency_key"].as_str().unwrap_or_default().to_string();
    if !crm.seen.insert(key) {
        crm.duplicates += 1;
        return StatusCode::OK;
    }
    apply(&mut crm, &event);
    StatusCode::OK
}

/// Maps one Switchboard event to HubSpot-shaped objects.
pub fn apply(crm: &mut Crm, event: &Value) {
    let contact_id = event["contact_id"].as_str().unwrap_or_default().to_string();
    crm.arrivals
        .entry(contact_id.clone())
        .or_default()
        .push(json!({ "id": event["id"], "type": event["type"], "data": event["data"] }));
    let data = &event["data"];
    let at = event["occurred_at"].clone();
    let note = |body: String| {
        json!({
            "properties": { "hs_timestamp": at, "hs_note_body": body },
            "associations": [{ "to": { "id": contact_id }, "types": [{ "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202 }] }]
        })
    };
    match event["type"].as_str().unwrap_or_default() {
        "contact.created" | "contact.updated" | "contact.merged" => {
            let name = data["name"].as_str().or(data["profile_name"].as_str()).unwrap_or_default();
            let (first, last) = name.split_once(' ').unwrap_or((name, ""));
            let mut contact = json!({
                "id": data["id"],
                "properties": {
                    "firstname": first, "lastname": last, "phone": data["phone"], "email": data["email"],
                    "hs_whatsapp_phone_number": data["phone"], "switchboard_opted_out": data["opted_out"],
                },
                "archived": data["merged_into"].is_string(),
            });
            if let Some(company) = data["company_id"].as_str() {
                crm.companies.entry(company.to_string()).or_insert_with(|| json!({ "id": company, "properties": {} }));
                contact["associations"] = json!([{ "to": { "id": company }, "types": [{ "associationTypeId": 1 }] }]);
            }
            crm.contacts.insert(contact_id.clone(), contact);
        }
        "conversation.opened" | "conversation.assigned" | "conversation.resolved" => {
            if let Some(deal) = data["deal_id"].as_str() {
                crm.deals.entry(deal.to_string()).or_insert_with(|| {
                    json!({ "id": deal, "properties": {}, "associations": [{ "to": { "id": contact_id }, "types": [{ "associationTypeId": 3 }] }] })
                });
            }
            let what = event["type"].as_str().unwrap_or_default().trim_start_matches("conversation.");
            crm.notes
                .push(note(format!("WhatsApp conversation {} {what} (assignee: {})", data["id"], data["assignee"])));
        }
        "message.logged" => {
            let who = if data["direction"] == "inbound" { "Contact" } else { "We" };
            crm.notes.push(note(format!("{who} on WhatsApp: {}", data["text"].as_str().unwrap_or("[media]"))));
        }
        "decision.made" => {
            crm.notes.push(note(format!("Routing: {}", data["decision"]["reason"].as_str().unwrap_or_default())))
        }
        "follow_up.sent" | "follow_up.suppressed" | "human.action" => {
            crm.notes.push(note(format!(
                "{}: {}",
                data["action"].as_str().unwrap_or_default(),
                data["reason"].as_str().unwrap_or_default()
            )));
        }
        _ => {}
    }
}

async fn objects(State(r): State<Receiver>) -> Json<Value> {
    let Ok(crm) = r.crm.lock() else { return Json(Value::Null) };
    Json(json!({
        "contacts": crm.contacts, "companies": crm.companies, "deals": crm.deals, "notes": crm.notes,
        "arrivals": crm.arrivals, "duplicates": crm.duplicates, "rejected_signatures": crm.rejected_signatures, "failed": crm.failed,
    }))
}
