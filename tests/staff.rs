//! Humans in control: replying in person, overriding routing, pausing
//! automation at every level, the audit log and the inbox.

mod support;

use serde_json::{Value, json};
use support::*;
use switchboard::clock::{HOUR, MINUTE};

async fn conversation_id(host: &TestHost, phone: &str) -> String {
    host.conversation_of(phone).await["conversation"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_reply_goes_through_whatsapp_and_counts_like_any_reply() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.S1", "Quanto custa o plano?", host.now_secs()))
        .await;
    host.settle().await;
    let cv = conversation_id(&host, "+5511987654321").await;

    let (status, err) = host
        .call(
            reqwest::Method::POST,
            &format!("/v1/conversations/{cv}/messages"),
            API_KEY,
            Some(json!({ "text": "oi" })),
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("missing_staff")), "staff are named per call");
    let (status, sent) = host
        .staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(json!({ "text": "O plano custa R$ 120." })))
        .await;
    assert_eq!(status, 202, "{sent}");
    host.settle().await;
    let request = meta.sent().last().cloned().expect("sent to the Graph API");
    assert_eq!(request.body["text"]["body"], "O plano custa R$ 120.");
    let view = host.conversation(&cv).await;
    let reply = view["messages"].as_array().unwrap().iter().find(|m| m["author"]["kind"] == "human").unwrap();
    assert_eq!(reply["author"]["staff"], "marta");
    assert_eq!(reply["status"], "sent");
    assert_eq!(view["conversation"]["needs_reply"], false);
    assert_eq!(view["conversation"]["last_outbound_at"], reply["at"]);
    assert_eq!(view["contact"]["stats"]["outbound_messages"], 1);

    // After the 24-hour window only a template may go.
    host.clock.advance(25 * HOUR);
    let (status, err) =
        host.staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(json!({ "text": "Ainda aí?" }))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("window_closed")));
    let template = json!({ "template": { "name": "follow_up_quote", "language": "pt_BR", "parameters": ["Ana"] } });
    let (status, _) = host.staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(template)).await;
    assert_eq!(status, 202);
    host.settle().await;
    assert_eq!(meta.sent().last().unwrap().body["type"], "template");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_is_recorded_next_to_the_decision_it_replaced() {
    let host = TestHost::start().await;
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.OV1", "Quanto custa o plano?", host.now_secs()))
        .await;
    host.settle().await;
    let cv = conversation_id(&host, "+5511987654321").await;
    let decision = host.conversation(&cv).await["decisions"][0]["id"].clone();
    let (status, c) = host
        .staff("lead", &format!("/v1/conversations/{cv}/assignment"), Some(json!({ "assignee": { "kind": "agent", "id": "carla" }, "priority": "urgent", "reason": "VIP account" })))
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!((c["assignee"]["id"].as_str(), c["priority"].as_str()), (Some("carla"), Some("urgent")));
    let view = host.conversation(&cv).await;
    let o = &view["overrides"][0];
    assert_eq!(o["replaces_decision"], decision);
    assert_eq!((o["staff"].as_str(), o["reason"].as_str()), (Some("lead"), Some("VIP account")));
    let (_, audit) = host.get("/v1/audit").await;
    let entry = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "routing_overridden").unwrap();
    assert_eq!(entry["actor"], json!({ "type": "staff", "id": "lead" }));
    assert_eq!(entry["conversation_id"], cv.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_the_tenant_or_a_contact_stops_automation_until_resumed_or_expired() {
    let host = TestHost::start().await;
    let until = host.clock_now() + HOUR;
    let (status, a) =
        host.staff("ops", "/v1/automation/pause", Some(json!({ "until": until, "reason": "campaign freeze" }))).await;
    assert_eq!((status, a["active"].as_bool()), (200, Some(false)));
    host.post_payload(&text_message("5511987650700", "A", "wamid.TP1", "oi", host.now_secs())).await;
    host.settle().await;
    let view = host.conversation_of("+5511987650700").await;
    assert!(
        view["decisions"][0]["actions"].to_string().contains("paused for the whole tenant"),
        "{}",
        view["decisions"][0]
    );
    assert_eq!(view["messages"].as_array().unwrap().len(), 1);

    host.clock.advance(2 * HOUR); // the pause expired on its own
    host.post_payload(&text_message("5511987650701", "B", "wamid.TP2", "oi", host.now_secs())).await;
    host.settle().await;
    assert_eq!(host.conversation_of("+5511987650701").await["messages"].as_array().unwrap().len(), 2, "bot replied");

    // Contact-level pause.
    let contact = host.contact("+5511987650701").await.unwrap();
    let (status, _) = host.staff("ops", &format!("/v1/contacts/{}/pause", contact["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200);
    host.post_payload(&text_message("5511987650701", "B", "wamid.TP3", "oi", host.now_secs())).await;
    host.settle().await;
    assert_eq!(
        host.conversation_of("+5511987650701").await["messages"].as_array().unwrap().len(),
        3,
        "no new bot reply"
    );
    host.staff("ops", &format!("/v1/contacts/{}/resume", contact["id"].as_str().unwrap()), None).await;
    let (_, audit) = host.get("/v1/audit").await;
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"automation_paused") && actions.contains(&"automation_resumed"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_lists_what_needs_a_person_most_urgent_first_with_overdue_flagged() {
    let host = TestHost::start().await;
    let (_, contact) = host.post_json("/v1/contacts", json!({ "phone": "+5511987650803" })).await;
    host.post_json(
        "/v1/deals",
        json!({ "contact_id": contact["id"], "name": "Big", "stage": "negotiation", "owner": "marta" }),
    )
    .await;
    for (phone, id, text) in [
        ("5511987650801", "wamid.I1", "Tenho uma dúvida sobre a entrega"), // support, 4 h
        ("5511987650802", "wamid.I2", "URGENTE: o pedido chegou quebrado"), // urgent, 15 min
        ("5511987650803", "wamid.I3", "Podemos fechar hoje?"),             // late-stage deal, 30 min
        ("5511987650804", "wamid.I4", "Oi, bom dia!"),                     // the bot answers: not in the inbox
    ] {
        host.post_payload(&text_message(phone, "X", id, text, host.now_secs())).await;
    }
    host.settle().await;
    host.clock.advance(20 * MINUTE);
    let (status, inbox) = host.get("/v1/inbox").await;
    assert_eq!(status, 200);
    let phones: Vec<&str> =
        inbox["conversations"].as_array().unwrap().iter().map(|i| i["contact_phone"].as_str().unwrap()).collect();
    assert_eq!(phones, vec!["+5511987650802", "+5511987650803", "+5511987650801"], "{inbox}");
    let overdue: Vec<bool> =
        inbox["conversations"].as_array().unwrap().iter().map(|i| i["overdue"].as_bool().unwrap()).collect();
    assert_eq!(overdue, vec![true, false, false], "the 15-minute one is overdue after 20 minutes");
    assert_eq!(inbox["overdue"], 1);

    // Answering or resolving takes a conversation out of the inbox.
    let cv = conversation_id(&host, "+5511987650802").await;
    host.staff(
        "marta",
        &format!("/v1/conversations/{cv}/messages"),
        Some(json!({ "text": "Sinto muito! Vamos trocar." })),
    )
    .await;
    let cv = conversation_id(&host, "+5511987650801").await;
    let (status, resolved) = host.staff("marta", &format!("/v1/conversations/{cv}/resolve"), None).await;
    assert_eq!((status, resolved["status"].as_str()), (200, Some("resolved")));
    let (_, inbox) = host.get("/v1/inbox").await;
    assert_eq!(inbox["conversations"].as_array().unwrap().len(), 1);
    let _: Value = inbox;
}
