//! Staff sending every kind of message WhatsApp takes, against the Graph
//! API stand-in over real HTTP, with the shapes of Meta's "Send messages"
//! and "Interactive messages" references: uploaded and linked media,
//! reply buttons, lists, URL buttons, location requests, reactions and
//! replies quoting a message — each within Meta's limits, checked first.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

async fn conversation(host: &TestHost) -> String {
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.IN1", "Vocês têm o plano anual?", host.now_secs()))
        .await;
    host.settle().await;
    host.conversation_of("+5511987654321").await["conversation"]["id"].as_str().unwrap().to_string()
}

async fn send(host: &TestHost, cv: &str, body: Value) -> (u16, Value) {
    host.staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_upload_a_document_and_send_it() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let cv = conversation(&host).await;
    let pdf = b"%PDF-1.7 proposta comercial".to_vec();
    let response = host
        .http
        .post(format!("{}/v1/media?filename=proposta.pdf", host.base))
        .bearer_auth(API_KEY)
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let uploaded: Value = response.json().await.unwrap();
    let id = uploaded["id"].as_str().unwrap().to_string();
    assert_eq!((uploaded["kind"].as_str(), meta.media(&id)), (Some("document"), Some((pdf, "application/pdf".into()))));
    let upload = meta.requests().into_iter().find(|r| r.path.ends_with("/media")).unwrap();
    assert_eq!(upload.path, format!("/{}/{PHONE_NUMBER_ID}/media", host.config.outbound.api_version));

    let document = json!({ "message": { "type": "media", "kind": "document", "id": id, "filename": "proposta.pdf", "caption": "Segue a proposta" } });
    assert_eq!(send(&host, &cv, document).await.0, 202);
    host.settle().await;
    let sent = meta.sent().pop().unwrap().body;
    assert_eq!((sent["type"].as_str(), sent["document"]["id"].as_str()), (Some("document"), Some(id.as_str())));
    assert_eq!(
        (sent["document"]["filename"].as_str(), sent["document"]["caption"].as_str()),
        (Some("proposta.pdf"), Some("Segue a proposta"))
    );
    let view = host.conversation(&cv).await;
    let out = view["messages"].as_array().unwrap().iter().find(|m| m["direction"] == "outbound").unwrap().clone();
    assert_eq!((out["kind"].as_str(), out["status"].as_str()), (Some("document"), Some("sent")), "{out}");

    // A type WhatsApp does not take, and one over its size, are refused here.
    let (status, err) = host.call(Method::POST, "/v1/media", API_KEY, None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{err}");
    let huge = host
        .http
        .post(format!("{}/v1/media", host.base))
        .bearer_auth(API_KEY)
        .header("content-type", "image/jpeg")
        .body(vec![0u8; 5 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_send_buttons_lists_links_and_location_requests_as_meta_takes_them() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let cv = conversation(&host).await;
    let buttons = json!({ "message": { "type": "buttons", "header": "Plano anual", "body": "Quer falar com quem?",
        "footer": "Respondemos em minutos", "buttons": [{ "id": "sales", "title": "Vendas" }, { "id": "support", "title": "Suporte" }] } });
    let rows: Vec<Value> = (1..=10)
        .map(|i| json!({ "id": format!("plan-{i}"), "title": format!("Plano {i}"), "description": "Mensal" }))
        .collect();
    let list = json!({ "message": { "type": "list", "body": "Escolha um plano", "button": "Ver planos",
        "sections": [{ "title": "Planos", "rows": rows }] } });
    let cta = json!({ "message": { "type": "cta_url", "body": "Veja os detalhes", "display_text": "Abrir site", "url": "https://loja.example/planos" } });
    let location = json!({ "message": { "type": "location_request", "body": "Onde entregamos?" } });
    for body in [buttons, list, cta, location] {
        let (status, r) = send(&host, &cv, body).await;
        assert_eq!(status, 202, "{r}");
    }
    host.settle().await;
    let sent: Vec<Value> = meta.sent().into_iter().map(|r| r.body).collect();
    assert_eq!(
        sent[0]["interactive"],
        json!({ "type": "button", "header": { "type": "text", "text": "Plano anual" },
        "body": { "text": "Quer falar com quem?" }, "footer": { "text": "Respondemos em minutos" },
        "action": { "buttons": [{ "type": "reply", "reply": { "id": "sales", "title": "Vendas" } },
            { "type": "reply", "reply": { "id": "support", "title": "Suporte" } }] } })
    );
    assert_eq!(sent[1]["interactive"]["type"], "list");
    assert_eq!(sent[1]["interactive"]["action"]["button"], "Ver planos");
    assert_eq!(sent[1]["interactive"]["action"]["sections"][0]["rows"].as_array().unwrap().len(), 10);
    assert_eq!(
        sent[2]["interactive"]["action"],
        json!({ "name": "cta_url", "parameters": { "display_text": "Abrir site", "url": "https://loja.example/planos" } })
    );
    assert_eq!(
        sent[3]["interactive"],
        json!({ "type": "location_request_message", "body": { "text": "Onde entregamos?" }, "action": { "name": "send_location" } })
    );
    assert!(sent.iter().all(|b| b["type"] == "interactive"));

    // Over Meta's limits: refused naming the field, and nothing leaves.
    let four = json!({ "message": { "type": "buttons", "body": "x", "buttons": [{ "id": "1", "title": "a" }, { "id": "2", "title": "b" },
        { "id": "3", "title": "c" }, { "id": "4", "title": "d" }] } });
    let (status, err) = send(&host, &cv, four).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("over_whatsapp_limits")));
    assert!(err["error"]["message"].as_str().unwrap().starts_with("buttons:"), "{err}");
    let eleven: Vec<Value> = (1..=11).map(|i| json!({ "id": format!("r{i}"), "title": "x" })).collect();
    let (status, _) = send(
        &host,
        &cv,
        json!({ "message": { "type": "list", "body": "x", "button": "Ver", "sections": [{ "rows": eleven }] } }),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(meta.sent().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_quote_react_and_link_media_only_inside_the_window() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let cv = conversation(&host).await;
    let (status, _) = send(&host, &cv, json!({ "text": "Temos sim!", "reply_to": "wamid.IN1" })).await;
    assert_eq!(status, 202);
    let (status, _) =
        send(&host, &cv, json!({ "message": { "type": "reaction", "message_id": "wamid.IN1", "emoji": "👍" } })).await;
    assert_eq!(status, 202);
    let photo = json!({ "message": { "type": "media", "kind": "image", "link": "https://loja.example/plano.jpg", "caption": "O plano" } });
    assert_eq!(send(&host, &cv, photo.clone()).await.0, 202);
    host.settle().await;
    let sent: Vec<Value> = meta.sent().into_iter().map(|r| r.body).collect();
    assert_eq!(sent[0]["context"], json!({ "message_id": "wamid.IN1" }));
    assert_eq!(sent[1]["reaction"], json!({ "message_id": "wamid.IN1", "emoji": "👍" }));
    assert_eq!(sent[2]["image"], json!({ "link": "https://loja.example/plano.jpg", "caption": "O plano" }));
    let view = host.conversation(&cv).await;
    let quoted = view["messages"].as_array().unwrap().iter().find(|m| m["text"] == "Temos sim!").unwrap().clone();
    assert_eq!(quoted["reply_to"], "wamid.IN1");

    // Only messages of this conversation can be quoted or reacted to.
    let (status, _) = send(&host, &cv, json!({ "text": "x", "reply_to": "wamid.ELSEWHERE" })).await;
    assert_eq!(status, 404);
    // After the window, none of these may go.
    host.clock.advance(25 * switchboard::clock::HOUR);
    let (status, err) = send(&host, &cv, photo).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("window_closed")));
    assert_eq!(meta.sent().len(), 3);
}

/// Meta's read receipt (`status: read`, with `typing_indicator` when a
/// person is about to type), sent when the tenant wants receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_marked_read_when_opened_or_answered_if_the_tenant_wants_it() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let cv = conversation(&host).await;
    assert_eq!(send(&host, &cv, json!({ "text": "Olá!" })).await.0, 202);
    host.settle().await;
    assert!(meta.receipts().is_empty(), "receipts are off by default");

    let (status, _) = host.admin(Method::PATCH, "/admin/v1/tenants/demo", Some(json!({ "read_receipts": true }))).await;
    assert_eq!(status, 200);
    let (status, r) = host.staff("marta", &format!("/v1/conversations/{cv}/read"), None).await;
    assert_eq!((status, r["message_id"].as_str()), (200, Some("wamid.IN1")));
    let opened = wait_for("the receipt of an opened conversation", || async { meta.receipts().first().cloned() }).await;
    assert_eq!(
        opened,
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1",
        "typing_indicator": { "type": "text" } })
    );
    assert_eq!(send(&host, &cv, json!({ "text": "Já te respondo" })).await.0, 202);
    let answered = wait_for("the receipt of an answer", || async { meta.receipts().get(1).cloned() }).await;
    assert_eq!((answered["message_id"].as_str(), answered.get("typing_indicator")), (Some("wamid.IN1"), None));

    // The bot's answer marks the message it answers.
    let (status, upload) = host.upload(API_KEY, "router", guest("scripted_router"), true).await;
    assert_eq!(status, 201, "{upload}");
    let script = json!({ "decision": { "needs_reply": true, "handler": { "bot": { "text": "Sim, temos!" } }, "acknowledge": null,
        "priority": "normal", "respond_within": null, "tags": [], "reason": "faq" } });
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.IN2", &format!("script:{script}"), host.now_secs()))
        .await;
    let bot = wait_for("the receipt of the bot's answer", || async { meta.receipts().get(2).cloned() }).await;
    assert_eq!(bot["message_id"], "wamid.IN2");
}

/// The most arrivals any one-second window holds.
fn busiest_second(arrivals: &[std::time::Instant]) -> usize {
    let second = std::time::Duration::from_secs(1);
    (0..arrivals.len())
        .map(|i| arrivals[i..].iter().take_while(|t| **t - arrivals[i] < second).count())
        .max()
        .unwrap_or(0)
}

/// Meta's throughput limit is per business number: the sender paces to
/// it (here a tenant's 10 a second) instead of failing with 130429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_paced_to_the_numbers_throughput() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let (status, t) =
        host.admin(Method::PATCH, "/admin/v1/tenants/demo", Some(json!({ "messages_per_second": 10 }))).await;
    assert_eq!((status, t["messages_per_second"].as_u64()), (200, Some(10)));
    let template = json!({ "template": { "name": "news", "language": "pt_BR" } });
    for i in 0..30 {
        let (status, contact) = host.post_json("/v1/contacts", json!({ "phone": format!("+55119876500{i:02}") })).await;
        assert_eq!(status, 201, "{contact}");
        let path = format!("/v1/contacts/{}/messages", contact["id"].as_str().unwrap());
        assert_eq!(host.staff("marta", &path, Some(template.clone())).await.0, 202);
    }
    let arrivals = wait_for("30 sends", || async {
        let sent = meta.sent();
        (sent.len() == 30).then(|| sent.iter().map(|r| r.at).collect::<Vec<_>>())
    })
    .await;
    assert!(busiest_second(&arrivals) <= 10, "{} in one second", busiest_second(&arrivals));
    assert!(arrivals[29] - arrivals[0] >= std::time::Duration::from_millis(2900), "paced, not bunched");
}

/// Meta's error codes become a state a person can act on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_says_why_in_words_a_person_can_act_on() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let cv = conversation(&host).await;
    meta.fail_next(1, 400, 131026);
    assert_eq!(send(&host, &cv, json!({ "text": "Olá?" })).await.0, 202);
    host.settle().await;
    let view = host.conversation(&cv).await;
    let failed = view["messages"].as_array().unwrap().iter().find(|m| m["direction"] == "outbound").unwrap().clone();
    assert_eq!(
        (failed["status"].as_str(), failed["failure"].as_str()),
        (Some("failed"), Some("undeliverable")),
        "{failed}"
    );

    // A send that Meta accepted and later failed (its status webhook).
    assert_eq!(send(&host, &cv, json!({ "text": "Ainda aí?" })).await.0, 202);
    host.settle().await;
    let view = host.conversation(&cv).await;
    let sent = view["messages"].as_array().unwrap().iter().rfind(|m| m["direction"] == "outbound").unwrap().clone();
    let wamid = sent["wamid"].as_str().unwrap().to_string();
    host.post_payload(&status_payload("status-failed.json", &wamid, "5511987654321", host.now_secs())).await;
    host.settle().await;
    let view = host.conversation(&cv).await;
    let late = view["messages"].as_array().unwrap().iter().find(|m| m["wamid"] == wamid.as_str()).unwrap().clone();
    assert_eq!((late["status"].as_str(), late["failure"].as_str()), (Some("failed"), Some("re_engagement")), "{late}");
}

/// Meta's messaging limit: a number starts conversations with at most so
/// many people a day (here 2). The third waits — queued, not failed —
/// while replies inside the window go on; it goes when a day has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_past_its_messaging_limit_waits_instead_of_failing() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    host.admin(Method::PATCH, "/admin/v1/tenants/demo", Some(json!({ "unique_users_per_day": 2 }))).await;
    // Only people write here: no bot reply or follow-up takes a place.
    let (status, _) = host.staff("marta", "/v1/automation/pause", Some(json!({}))).await;
    assert_eq!(status, 200);
    let template = json!({ "template": { "name": "news", "language": "pt_BR" } });
    for i in 0..3 {
        let (_, contact) = host.post_json("/v1/contacts", json!({ "phone": format!("+55119876511{i:02}") })).await;
        let path = format!("/v1/contacts/{}/messages", contact["id"].as_str().unwrap());
        assert_eq!(host.staff("marta", &path, Some(template.clone())).await.0, 202);
    }
    wait_for("two sent and the third waiting for the limit", || async {
        let waiting = host.metrics().await.contains("switchboard_sends_total{outcome=\"waiting_for_tier\"}");
        (waiting && meta.sent().len() == 2).then_some(())
    })
    .await;

    // A reply inside a contact's window starts nothing, and goes — while
    // the third still waits (so the queue is never idle: no `settle`).
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.IN1", "Oi", host.now_secs())).await;
    let cv = wait_for("the conversation", || async {
        let (_, page) = host.get("/v1/contacts?q=%2B5511987654321").await;
        let id = page["contacts"][0]["id"].as_str()?.to_string();
        let (_, list) = host.get(&format!("/v1/contacts/{id}/conversations")).await;
        list["conversations"][0]["id"].as_str().map(String::from)
    })
    .await;
    assert_eq!(send(&host, &cv, json!({ "text": "Oi Ana!" })).await.0, 202);
    wait_for("the reply", || async { meta.sent().iter().any(|r| r.body["text"]["body"] == "Oi Ana!").then_some(()) })
        .await;
    let bodies: Vec<Value> = meta.sent().into_iter().map(|r| r.body).collect();
    assert!(!bodies.iter().any(|b| b["to"] == "5511987651102"), "the third waits: {bodies:#?}");

    host.clock.advance(24 * switchboard::clock::HOUR + switchboard::clock::MINUTE);
    wait_for("the third, a day later", || async {
        meta.sent().iter().any(|r| r.body["to"] == "5511987651102").then_some(())
    })
    .await;
}
