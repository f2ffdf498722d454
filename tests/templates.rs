//! Message templates against the Graph API stand-in over real HTTP: the
//! account's list synced page by page, kept current by Meta's template
//! webhooks, created and deleted through the API, and every template send
//! checked against its definition before Meta sees it. The shapes are
//! those of Meta's "Get templates", "Create templates", "Send template
//! messages" and template webhook references.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

/// A template as Meta lists it.
fn approved(name: &str, language: &str, category: &str, components: Value) -> Value {
    json!({ "name": name, "language": language, "status": "APPROVED", "category": category,
        "parameter_format": "POSITIONAL", "components": components })
}

/// Meta's own example shapes: an image header, three body variables (one
/// used twice), a URL button with a variable, a copy-code button and a
/// quick reply.
fn order_ready() -> Value {
    approved(
        "order_ready",
        "pt_BR",
        "UTILITY",
        json!([
            { "type": "HEADER", "format": "IMAGE", "example": { "header_handle": ["4::aW1hZ2U="] } },
            { "type": "BODY", "text": "Olá {{1}}! Seu pedido de {{2}} chega {{3}}. Até logo, {{1}}." },
            { "type": "FOOTER", "text": "Loja Exemplo" },
            { "type": "BUTTONS", "buttons": [
                { "type": "URL", "text": "Acompanhar", "url": "https://loja.example/p/{{1}}" },
                { "type": "COPY_CODE", "example": "VOLTE10" },
                { "type": "QUICK_REPLY", "text": "Parar avisos" }] }
        ]),
    )
}

fn header_template(name: &str, format: &str) -> Value {
    let header = if format == "TEXT" {
        json!({ "type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}" })
    } else {
        json!({ "type": "HEADER", "format": format })
    };
    approved(name, "pt_BR", "UTILITY", json!([header, { "type": "BODY", "text": "Olá {{1}}, veja os detalhes." }]))
}

async fn conversation(host: &TestHost, phone: &str, wamid: &str) -> String {
    host.post_payload(&text_message(phone, "Ana", wamid, "Oi, tudo bem?", host.now_secs())).await;
    host.settle().await;
    host.conversation_of(&format!("+{phone}")).await["conversation"]["id"].as_str().unwrap().to_string()
}

async fn send(host: &TestHost, cv: &str, template: Value) -> (u16, Value) {
    host.staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(json!({ "template": template }))).await
}

async fn sync(host: &TestHost) -> Value {
    let (status, report) = host.call(Method::POST, "/v1/templates/sync", API_KEY, None).await;
    assert_eq!(status, 200, "{report}");
    report
}

async fn listed(host: &TestHost, name: &str) -> Value {
    let (_, list) = host.get(&format!("/v1/templates?name={name}")).await;
    list["templates"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_is_synced_page_by_page_and_a_webhook_pauses_a_template() {
    let meta = FakeMeta::start().await;
    meta.add_template(order_ready());
    for i in 0..5 {
        meta.add_template(approved(
            &format!("promo_{i}"),
            "es",
            "MARKETING",
            json!([{ "type": "BODY", "text": "Hola" }]),
        ));
    }
    meta.add_template(json!({ "name": "draft", "language": "en_US", "status": "REJECTED", "category": "MARKETING",
        "rejected_reason": "PROMOTIONAL", "components": [{ "type": "BODY", "text": "Hi" }] }));
    meta.set_page_max(3);
    let host = TestHost::sending_to(&meta).await;

    let report = sync(&host).await;
    assert_eq!(
        (report["pages"].as_u64(), report["templates"].as_u64(), report["added"].as_u64()),
        (Some(3), Some(7), Some(7))
    );
    let gets: Vec<RecordedSend> = meta.requests().into_iter().filter(|r| r.method == "GET").collect();
    assert_eq!(gets.len(), 3);
    let path = format!("/{}/{WABA_ID}/message_templates", host.config.outbound.api_version);
    assert!(gets.iter().all(|r| r.path == path), "{gets:?}");
    assert!(
        !gets[0].query.contains("after=")
            && gets[1].query.contains("after=QVFI2")
            && gets[2].query.contains("after=QVFI5")
    );
    assert_eq!(gets[0].authorization.as_deref(), Some("Bearer EAAtoken"));
    let (_, approved) = host.get("/v1/templates?status=APPROVED").await;
    assert_eq!(approved["templates"].as_array().unwrap().len(), 6);
    assert_eq!(listed(&host, "draft").await["reason"], "PROMOTIONAL");

    let cv = conversation(&host, "5511987654321", "wamid.T1").await;
    let promo = json!({ "name": "promo_1", "language": "es" });
    assert_eq!(send(&host, &cv, promo.clone()).await.0, 202);
    host.settle().await;
    let sends = meta.sent().len();

    // Meta pauses it for its quality; its webhook writes the language with
    // a hyphen, as Meta's reference example does.
    let paused = json!({ "event": "PAUSED", "message_template_id": 1, "message_template_name": "promo_1",
        "message_template_language": "es", "reason": "NONE",
        "other_info": { "title": "FIRST_PAUSE", "description": "Your template has been paused for 3 hours." } });
    let (status, _) =
        host.post_payload(&account_webhook("message_template_status_update", paused, host.now_secs())).await;
    assert_eq!(status, 200);
    let kept = listed(&host, "promo_1").await;
    assert_eq!((kept["status"].as_str(), kept["last_event"].as_str()), (Some("PAUSED"), Some("PAUSED")));
    assert_eq!(kept["reason"], "Your template has been paused for 3 hours.");
    let (status, err) = send(&host, &cv, promo.clone()).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("template_paused")), "{err}");
    assert_eq!(meta.sent().len(), sends, "nothing reached Meta");

    // Unpaused: it goes again. A quality webhook with `en-US` finds `en_US`.
    let unpaused = json!({ "event": "APPROVED", "message_template_id": 1, "message_template_name": "promo_1",
        "message_template_language": "es", "reason": "NONE", "other_info": { "title": "UNPAUSE", "description": "Unpaused" } });
    host.post_payload(&account_webhook("message_template_status_update", unpaused, host.now_secs())).await;
    assert_eq!(send(&host, &cv, promo).await.0, 202);
    let quality = json!({ "previous_quality_score": "UNKNOWN", "new_quality_score": "RED", "message_template_id": 2,
        "message_template_name": "draft", "message_template_language": "en-US" });
    host.post_payload(&account_webhook("message_template_quality_update", quality, host.now_secs())).await;
    assert_eq!(listed(&host, "draft").await["quality"], "RED");

    // One body carrying two changes of one template: both hold.
    let mut both = account_webhook(
        "message_template_quality_update",
        json!({ "previous_quality_score": "GREEN",
        "new_quality_score": "RED", "message_template_id": 3, "message_template_name": "promo_2", "message_template_language": "es" }),
        host.now_secs(),
    );
    let pause = json!({ "field": "message_template_status_update", "value": { "event": "PAUSED", "message_template_id": 3,
        "message_template_name": "promo_2", "message_template_language": "es", "reason": "NONE" } });
    both["entry"][0]["changes"].as_array_mut().unwrap().insert(0, pause);
    assert_eq!(host.post_payload(&both).await.0, 200);
    let kept = listed(&host, "promo_2").await;
    assert_eq!((kept["status"].as_str(), kept["quality"].as_str()), (Some("PAUSED"), Some("RED")), "{kept}");

    // Deleted at Meta (in WhatsApp Manager): the next sync forgets it,
    // and a send of it is refused as unknown.
    meta.remove_template("promo_4");
    let report = sync(&host).await;
    assert_eq!(
        (report["templates"].as_u64(), report["removed"].as_u64(), report["added"].as_u64()),
        (Some(6), Some(1), Some(0))
    );
    let (status, err) = send(&host, &cv, json!({ "name": "promo_4", "language": "es" })).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("unknown_template")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_component_kind_goes_as_meta_takes_it_and_a_wrong_send_never_leaves() {
    let meta = FakeMeta::start().await;
    meta.add_template(order_ready());
    for (name, format) in
        [("with_video", "VIDEO"), ("with_document", "DOCUMENT"), ("with_location", "LOCATION"), ("with_text", "TEXT")]
    {
        meta.add_template(header_template(name, format));
    }
    let host = TestHost::sending_to(&meta).await;
    sync(&host).await;
    let cv = conversation(&host, "5511987654321", "wamid.C1").await;

    let full = json!({ "name": "order_ready", "language": "pt_BR",
        "header": { "type": "image", "link": "https://loja.example/img/pedido.jpg" },
        "parameters": ["Ana",
            { "type": "currency", "fallback_value": "R$ 120,00", "code": "BRL", "amount_1000": 120000 },
            { "type": "date_time", "fallback_value": "amanhã, 5 de março" }],
        "buttons": [{ "type": "url", "index": 0, "text": "PED-123" },
            { "type": "copy_code", "index": 1, "coupon_code": "VOLTE10" },
            { "type": "quick_reply", "index": 2, "payload": "stop-order-updates" }] });
    let (status, queued) = send(&host, &cv, full).await;
    assert_eq!(status, 202, "{queued}");
    let headers = [
        ("with_video", json!({ "type": "video", "link": "https://loja.example/v.mp4" })),
        ("with_document", json!({ "type": "document", "id": "1013859600285441", "filename": "NF-123.pdf" })),
        (
            "with_location",
            json!({ "type": "location", "latitude": -23.5505, "longitude": -46.6333, "name": "Loja Centro", "address": "Praça da Sé, São Paulo" }),
        ),
        ("with_text", json!({ "type": "text", "text": "#123" })),
    ];
    for (name, header) in &headers {
        // A language written loosely goes as Meta lists it.
        let language = if *name == "with_text" { "pt-br" } else { "pt_BR" };
        let t = json!({ "name": name, "language": language, "header": header, "parameters": ["Ana"] });
        assert_eq!(send(&host, &cv, t).await.0, 202, "{name}");
    }
    host.settle().await;

    // Meta accepted all five, and each body has Meta's shape.
    let sent = meta.sent();
    assert_eq!(sent.len(), 5);
    let view = host.conversation(&cv).await;
    let statuses: Vec<&str> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sent"; 5], "{view}");
    let c = &sent[0].body["template"]["components"];
    assert_eq!(
        c[0],
        json!({ "type": "header", "parameters": [{ "type": "image", "image": { "link": "https://loja.example/img/pedido.jpg" } }] })
    );
    assert_eq!(
        c[1]["parameters"][1],
        json!({ "type": "currency", "currency": { "fallback_value": "R$ 120,00", "code": "BRL", "amount_1000": 120000 } })
    );
    assert_eq!(
        c[1]["parameters"][2],
        json!({ "type": "date_time", "date_time": { "fallback_value": "amanhã, 5 de março" } })
    );
    assert_eq!(
        c[2],
        json!({ "type": "button", "sub_type": "url", "index": "0", "parameters": [{ "type": "text", "text": "PED-123" }] })
    );
    assert_eq!(
        c[3],
        json!({ "type": "button", "sub_type": "copy_code", "index": "1", "parameters": [{ "type": "coupon_code", "coupon_code": "VOLTE10" }] })
    );
    assert_eq!(
        c[4],
        json!({ "type": "button", "sub_type": "quick_reply", "index": "2", "parameters": [{ "type": "payload", "payload": "stop-order-updates" }] })
    );
    assert_eq!(
        sent[2].body["template"]["components"][0]["parameters"][0]["document"],
        json!({ "id": "1013859600285441", "filename": "NF-123.pdf" })
    );
    assert_eq!(
        sent[3].body["template"]["components"][0]["parameters"][0]["location"]["address"],
        "Praça da Sé, São Paulo"
    );
    assert_eq!(sent[4].body["template"]["language"]["code"], "pt_BR");

    // Wrong sends are refused naming the component, and none reaches Meta.
    let wrong = [
        (
            json!({ "name": "order_ready", "language": "pt_BR", "header": { "type": "image", "link": "https://x.example/a.jpg" },
            "parameters": ["Ana"], "buttons": [{ "type": "url", "index": 0, "text": "P" }, { "type": "copy_code", "index": 1, "coupon_code": "X" }] }),
            "body",
        ),
        (
            json!({ "name": "with_video", "language": "pt_BR", "header": { "type": "image", "link": "https://x.example/a.jpg" }, "parameters": ["Ana"] }),
            "header",
        ),
        (
            json!({ "name": "order_ready", "language": "pt_BR", "header": { "type": "image", "link": "https://x.example/a.jpg" },
            "parameters": ["Ana", "R$ 1", "hoje"], "buttons": [{ "type": "url", "index": 0, "text": "P" }] }),
            "button 1",
        ),
        (json!({ "name": "with_text", "language": "pt_BR", "parameters": ["Ana"] }), "header"),
    ];
    for (t, component) in wrong {
        let (status, err) = send(&host, &cv, t).await;
        assert_eq!((status, err["error"]["code"].as_str()), (422, Some("invalid_template_parameters")), "{err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!(", {component}:")), "{component}: {message}");
    }
    let (status, err) = send(&host, &cv, json!({ "name": "no_such_template", "language": "pt_BR" })).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("unknown_template")));
    assert_eq!(meta.sent().len(), 5, "no refused send reached Meta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_created_reviewed_and_deleted_through_the_api() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let new = json!({ "name": "welcome_back", "language": "pt_BR", "category": "marketing",
        "components": [{ "type": "BODY", "text": "Olá {{1}}, sentimos sua falta!", "example": { "body_text": [["Ana"]] } }] });
    let (status, created) = host.call(Method::POST, "/v1/templates", API_KEY, Some(new.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["status"].as_str(), created["category"].as_str()), (Some("PENDING"), Some("marketing")));
    let at_meta = meta.templates();
    assert_eq!(
        (at_meta[0]["name"].as_str(), at_meta[0]["category"].as_str()),
        (Some("welcome_back"), Some("MARKETING"))
    );
    assert_eq!(created["id"], at_meta[0]["id"]);

    // Meta already has it in that language: its refusal, as a 422.
    let (status, err) = host.call(Method::POST, "/v1/templates", API_KEY, Some(new)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("meta_refused")), "{err}");
    let (status, err) = host
        .call(
            Method::POST,
            "/v1/templates",
            API_KEY,
            Some(json!({ "name": "Bad Name", "language": "pt_BR",
        "category": "utility", "components": [{ "type": "BODY", "text": "x" }] })),
        )
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("invalid_template")));

    // Pending templates are not sent; Meta's approval webhook changes that.
    let cv = conversation(&host, "5511987654321", "wamid.D1").await;
    let t = json!({ "name": "welcome_back", "language": "pt_BR", "parameters": ["Ana"] });
    let (status, err) = send(&host, &cv, t.clone()).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("template_not_approved")));
    meta.set_template_status("welcome_back", "pt_BR", "APPROVED");
    let approved = json!({ "event": "APPROVED", "message_template_id": created["id"], "message_template_name": "welcome_back",
        "message_template_language": "pt_BR", "reason": "NONE", "message_template_category": "MARKETING" });
    host.post_payload(&account_webhook("message_template_status_update", approved, host.now_secs())).await;
    assert_eq!(send(&host, &cv, t).await.0, 202);

    let (status, deleted) = host.call(Method::DELETE, "/v1/templates/welcome_back", API_KEY, None).await;
    assert_eq!((status, deleted["deleted"].as_u64()), (200, Some(1)), "{deleted}");
    assert!(meta.templates().is_empty(), "deleted at Meta");
    let delete = meta.requests().into_iter().find(|r| r.method == "DELETE").unwrap();
    assert_eq!(delete.query, "name=welcome_back");
    let (status, _) = host.call(Method::DELETE, "/v1/templates/welcome_back", API_KEY, None).await;
    assert_eq!(status, 404);

    // A tenant with no business account set cannot manage templates.
    host.admin(Method::PATCH, "/admin/v1/tenants/demo", Some(json!({ "waba_id": null }))).await;
    let (status, err) = host.call(Method::POST, "/v1/templates/sync", API_KEY, None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("no_business_account")));
}

/// A router's bot reply and a follow-up go through the same check: a
/// paused template is held back, the reason in the decision's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_reply_with_a_paused_template_is_suppressed_and_a_person_is_asked() {
    let meta = FakeMeta::start().await;
    meta.add_template(approved(
        "promo",
        "pt_BR",
        "MARKETING",
        json!([{ "type": "BODY", "text": "Oferta para {{1}}" }]),
    ));
    let host = TestHost::sending_to(&meta).await;
    sync(&host).await;
    let (status, upload) = host.upload(API_KEY, "router", guest("scripted_router"), true).await;
    assert_eq!(status, 201, "{upload}");
    let paused = json!({ "event": "PAUSED", "message_template_id": 1, "message_template_name": "promo",
        "message_template_language": "pt_BR", "reason": "NONE" });
    host.post_payload(&account_webhook("message_template_status_update", paused, host.now_secs())).await;
    let script = json!({ "decision": { "needs_reply": true, "handler": { "bot": { "template": { "name": "promo", "language": "pt_BR",
        "parameters": ["Ana"] } } }, "acknowledge": null, "priority": "normal", "respond_within": null, "tags": [], "reason": "promo time" } });
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.B1", &format!("script:{script}"), host.now_secs()))
        .await;
    host.settle().await;
    let decisions = host.decisions_of(API_KEY, "+5511987654321").await;
    let actions = decisions[0]["actions"].to_string();
    assert!(actions.contains("bot reply suppressed: template promo (pt_BR) is paused"), "{actions}");
    assert!(meta.sent().is_empty());
    let view = host.conversation_of("+5511987654321").await;
    assert_eq!(view["conversation"]["needs_reply"], true, "a person must answer");
}

/// Meta: a business may write first only with a template; the template
/// opens the conversation. A contact who asked to stop gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_to_a_contact_with_no_conversation_opens_one() {
    let meta = FakeMeta::start().await;
    meta.add_template(approved(
        "reactivation",
        "pt_BR",
        "MARKETING",
        json!([{ "type": "BODY", "text": "Oi {{1}}, temos novidades!" }]),
    ));
    let host = TestHost::sending_to(&meta).await;
    sync(&host).await;
    let (status, contact) =
        host.post_json("/v1/contacts", json!({ "phone": "(11) 98765-4321", "name": "Bruno" })).await;
    assert_eq!(status, 201, "{contact}");
    let id = contact["id"].as_str().unwrap().to_string();
    let path = format!("/v1/contacts/{id}/messages");

    let (status, err) = host.staff("marta", &path, Some(json!({ "text": "Oi!" }))).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("window_closed")), "outside the window: a template");
    let template = json!({ "template": { "name": "reactivation", "language": "pt_BR", "parameters": ["Bruno"] } });
    let (status, started) = host.staff("marta", &path, Some(template.clone())).await;
    assert_eq!(status, 202, "{started}");
    let cv = started["conversation"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        (started["conversation"]["status"].as_str(), started["conversation"]["assignee"]["id"].as_str()),
        (Some("open"), Some("marta"))
    );
    host.settle().await;
    let sent = meta.sent();
    assert_eq!(
        (sent.len(), sent[0].body["to"].as_str(), sent[0].body["type"].as_str()),
        (1, Some("5511987654321"), Some("template"))
    );
    let view = host.conversation(&cv).await;
    assert_eq!(view["messages"][0]["status"], "sent");
    assert_eq!(view["contact"]["stats"]["outbound_messages"], 1);

    // A second message joins the open conversation.
    let (status, again) = host.staff("marta", &path, Some(template.clone())).await;
    assert_eq!((status, again["conversation"]["id"].as_str()), (202, Some(cv.as_str())));
    let (status, _) = host.staff("marta", "/v1/contacts/ct_nobody/messages", Some(template.clone())).await;
    assert_eq!(status, 404);

    // A contact who wrote STOP is not written to.
    host.post_payload(&text_message("5511912345678", "Carla", "wamid.STOP1", "STOP", host.now_secs())).await;
    host.settle().await;
    let carla = host.contact("+5511912345678").await.unwrap();
    let (status, err) =
        host.staff("marta", &format!("/v1/contacts/{}/messages", carla["id"].as_str().unwrap()), Some(template)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("opted_out")), "{err}");
}
