//! The core path end to end: a signed WhatsApp webhook goes in over real
//! HTTP, lands in real sled, is routed by a real compiled Wasm component,
//! and comes back out of the API as CRM records.

mod support;

use serde_json::{Value, json};
use support::*;
use switchboard::clock::{DAY, MINUTE};
use switchboard::ingest::signature;
use switchboard::plugins::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_greeting_becomes_a_contact_a_decision_and_a_dry_run_reply() {
    let host = TestHost::start().await;
    let (status, body) = host.post_payload(&payload("greeting.json", host.now_secs())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1);
    host.settle().await;

    let contact = host.contact("+5511987654321").await.expect("contact created in E.164");
    assert_eq!(contact["profile_name"], "Ana Souza");
    assert_eq!(contact["country"], "BR");
    assert_eq!(contact["wa_id"], "5511987654321");
    let conversations = host.conversations(contact["id"].as_str().unwrap()).await;
    assert_eq!(conversations.len(), 1);
    let view = host.conversation(conversations[0]["id"].as_str().unwrap()).await;

    // The decision names the exact plugin that made it.
    let decisions = view["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1);
    let d = &decisions[0];
    let builtin = host.server().state.stages().plugins.builtin(World::Router).unwrap();
    assert_eq!(d["outcome"], "decided", "{d}");
    assert_eq!(d["plugin"]["version"], builtin.meta.hash.as_str());
    assert_eq!(d["plugin"]["builtin"], "default-router");
    assert_eq!(d["plugin"]["wit_version"], "0.1.0");
    assert!(d["fuel_used"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["decision"]["handler"]["type"], "bot", "a greeting in business hours gets the bot: {d}");
    assert_eq!(d["decision"]["needs_reply"], true);

    // Inbound, then the bot's reply, which went out as a dry run (no token).
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["direction"], "inbound");
    assert_eq!(messages[0]["text"], "Oi, bom dia!");
    assert_eq!(messages[1]["direction"], "outbound");
    assert_eq!(messages[1]["author"]["kind"], "bot");
    assert_eq!(messages[1]["status"], "dry_run");
    assert_eq!(messages[1]["decision_id"], d["id"]);
    assert_eq!(messages[1]["reply_to"], messages[0]["id"]);
    assert!(messages[1]["text"].as_str().unwrap().contains("How can we help"));

    let conversation = &view["conversation"];
    assert_eq!(conversation["needs_reply"], false, "the bot answered");
    assert_eq!(conversation["inbound_messages"], 1);
    assert_eq!(conversation["outbound_messages"], 1);
    assert!(conversation["last_outbound_at"].as_i64().unwrap() >= conversation["last_inbound_at"].as_i64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_payload_is_acknowledged_and_applied_once() {
    let host = TestHost::start().await;
    let p = payload("text.json", host.now_secs());
    let (s1, b1) = host.post_payload(&p).await;
    let (s2, b2) = host.post_payload(&p).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!((b1["accepted"].as_u64(), b1["duplicates"].as_u64()), (Some(1), Some(0)));
    assert_eq!((b2["accepted"].as_u64(), b2["duplicates"].as_u64()), (Some(0), Some(1)));
    host.settle().await;
    // Even after a restart (the de-duplication is durable).
    let mut host = host;
    host.restart().await;
    let (_, b3) = host.post_payload(&p).await;
    assert_eq!(b3["duplicates"], 1);
    host.settle().await;

    let contact = host.contact("+5511987654321").await.unwrap();
    let conversations = host.conversations(contact["id"].as_str().unwrap()).await;
    assert_eq!(conversations.len(), 1);
    let view = host.conversation(conversations[0]["id"].as_str().unwrap()).await;
    let inbound = view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "inbound").count();
    assert_eq!(inbound, 1);
    assert_eq!(view["decisions"].as_array().unwrap().len(), 1);
    assert_eq!(contact["stats"]["inbound_messages"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_error_shape_and_stores_nothing() {
    let host = TestHost::start_with(|c| c.webhook.max_body_bytes = 64 * 1024).await;
    let body = serde_json::to_vec(&payload("text.json", host.now_secs())).unwrap();

    let (status, err) = host.post_raw(&body, Some(&signature::sign(b"wrong secret", &body))).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "bad_signature");
    assert_eq!(err["error"]["status"], 401);

    let (status, err) = host.post_raw(&body, None).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "missing_signature");

    // The signature must cover the exact bytes: the same JSON re-serialised
    // with escaped unicode no longer verifies.
    let good = signature::sign(APP_SECRET.as_bytes(), &body);
    let reencoded =
        serde_json::to_string(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap().replace('ç', "\\u00e7");
    let (status, _) = host.post_raw(reencoded.as_bytes(), Some(&good)).await;
    assert_eq!(status, 401);

    let big = vec![b' '; 65 * 1024];
    let (status, err) = host.post_raw(&big, Some(&signature::sign(APP_SECRET.as_bytes(), &big))).await;
    assert_eq!(status, 413);
    assert_eq!(err["error"]["code"], "payload_too_large");

    let junk = b"{\"object\": \"whatsapp_business_account\", \"entry\": [";
    let (status, err) = host.post_raw(junk, Some(&signature::sign(APP_SECRET.as_bytes(), junk))).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "malformed_json");

    let wrong_shape = br#"{"object":"page","entry":[]}"#;
    let (status, err) = host.post_raw(wrong_shape, Some(&signature::sign(APP_SECRET.as_bytes(), wrong_shape))).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "not_a_notification");

    let (_, health) = host.get("/healthz").await;
    assert_eq!(health["journal_pending"], 0);
    let (_, page) = host.get("/v1/contacts").await;
    assert_eq!(page["contacts"], json!([]), "nothing stored");

    // API errors share the shape.
    let (status, err) = host.get_as("not-a-key", "/v1/contacts").await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "unauthorized");
    let (status, err) = host.get("/v1/conversations/cv_nope").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "not_found");
    let (status, err) = host.get("/v1/nowhere").await;
    assert_eq!(status, 404);
    assert!(err["error"]["message"].as_str().unwrap().contains("openapi"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let host = TestHost::start().await;
    let url = |token: &str| {
        format!("{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444", host.base)
    };
    let ok = host.http.get(url("switchboard-verify")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let bad = host.http.get(url("guess")).send().await.unwrap();
    assert_eq!(bad.status(), 403);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "verification_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_message_type_and_batches_are_recorded() {
    let host = TestHost::start().await;
    let (status, body) = host.post_payload(&payload("all-types.json", host.now_secs())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 13);
    let (status, body) = host.post_payload(&payload("batch.json", host.now_secs())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 4, "two entries, three message changes");
    assert_eq!(body["fields"], 1, "the template status change is kept, not a message");
    host.settle().await;

    let ana = host.contact("+5511987654321").await.unwrap();
    let conversation = &host.conversations(ana["id"].as_str().unwrap()).await[0];
    let view = host.conversation(conversation["id"].as_str().unwrap()).await;
    let inbound: Vec<&Value> =
        view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "inbound").collect();
    let seen = |kind: &str, text: Option<&str>| {
        inbound.iter().any(|m| m["kind"] == kind && text.is_none_or(|t| m["text"] == t))
    };
    assert!(seen("text", Some("Olá, preciso de ajuda com meu pedido")));
    assert!(seen("image", Some("foto do produto quebrado")));
    assert!(seen("audio", None));
    assert!(seen("video", Some("vídeo do defeito")));
    assert!(seen("document", Some("nota-fiscal.pdf")));
    assert!(seen("sticker", None));
    assert!(seen("location", Some("Loja Paulista, Av. Paulista, 1000")));
    assert!(seen("contacts", Some("João Lima")));
    assert!(seen("interactive", Some("Sim, confirmar")));
    assert!(seen("interactive", Some("Plano anual")));
    assert!(seen("button", Some("Quero a cotação")));
    assert!(seen("reaction", Some("👍")));
    assert!(seen("unsupported", Some("[unsupported: Message type unknown]")));
    assert!(seen("text", Some("primeira")) && seen("text", Some("segunda")));
    let reaction = inbound.iter().find(|m| m["kind"] == "reaction").unwrap();
    assert_eq!(reaction["reply_to"], "wamid.SOME_EARLIER_MESSAGE");
    // The raw, type-specific payload is kept.
    let location = inbound.iter().find(|m| m["kind"] == "location").unwrap();
    assert_eq!(location["content"]["latitude"], -23.5505);

    // Every message got a decision; the reaction needed no reply.
    let decisions = view["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 15);
    let for_reaction = decisions.iter().find(|d| d["message_id"] == reaction["id"]).unwrap();
    assert_eq!(for_reaction["decision"]["handler"]["type"], "nobody");

    // Other senders in the batch became their own contacts, in E.164 (the
    // Mexican wa_id's legacy `521` brought up to date).
    let lucia = host.contact("+525512345678").await.expect("Mexican sender");
    assert_eq!(lucia["wa_id"], "5215512345678", "the wa_id is kept as WhatsApp sends it");
    assert_eq!(lucia["profile_name"], "Lucía Pérez");
    assert!(host.contact("+14155550123").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_contact_is_found_whatever_format_it_was_stored_in() {
    let host = TestHost::start().await;
    let (status, company) =
        host.post_json("/v1/companies", json!({ "name": "Souza Comércio", "domain": "souza.com.br" })).await;
    assert_eq!(status, 201, "{company}");
    let (status, created) = host
        .post_json(
            "/v1/contacts",
            json!({ "phone": "(11) 98765-4321", "name": "Ana Souza (CRM)", "company_id": company["id"] }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["phone"], "+5511987654321", "stored normalised with the tenant's region (BR)");
    let (status, dup) = host.post_json("/v1/contacts", json!({ "phone": "+55 11 98765 4321" })).await;
    assert_eq!((status, dup["error"]["code"].as_str()), (409, Some("already_exists")), "{dup}");
    let (status, bad) = host.post_json("/v1/contacts", json!({ "phone": "not a phone" })).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_phone")));
    let (status, deal) = host
        .post_json(
            "/v1/deals",
            json!({ "contact_id": created["id"], "name": "Plano anual", "stage": "negotiation", "owner": "marta", "amount_minor": 120_000, "currency": "BRL" }),
        )
        .await;
    assert_eq!(status, 201, "{deal}");

    host.post_payload(&payload("text.json", host.now_secs())).await;
    host.settle().await;

    let (_, page) = host.get("/v1/contacts").await;
    assert_eq!(page["contacts"].as_array().unwrap().len(), 1, "no second contact: {page}");
    let contact = &page["contacts"][0];
    assert_eq!(contact["id"], created["id"]);
    assert_eq!(contact["name"], "Ana Souza (CRM)", "the stored name is kept");
    assert_eq!(contact["profile_name"], "Ana Souza");
    // Search by phone in another format, and by name.
    let (_, by_phone) = host.get("/v1/contacts?q=011%2098765-4321").await;
    assert_eq!(by_phone["contacts"][0]["id"], created["id"], "{by_phone}");
    let (_, by_name) = host.get("/v1/contacts?q=souza").await;
    assert_eq!(by_name["contacts"][0]["id"], created["id"]);

    // The conversation is linked to the company and the open deal, and the
    // late-stage deal sends it to the deal owner.
    let conversation = &host.conversations(created["id"].as_str().unwrap()).await[0];
    assert_eq!(conversation["company_id"], company["id"]);
    assert_eq!(conversation["deal_id"], deal["id"]);
    assert_eq!(conversation["assignee"], json!({ "kind": "agent", "id": "marta" }));
    assert_eq!(conversation["priority"], "high");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_go_to_the_graph_api_and_statuses_only_move_forward() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    meta.fail_next(2, 503, 131000);
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;

    let sent = meta.sent();
    assert_eq!(sent.len(), 3, "two failures retried, then success");
    let last = &sent[2];
    assert_eq!(last.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(last.authorization.as_deref(), Some("Bearer EAAtoken"));
    assert_eq!(last.body["to"], "5511987654321");
    assert_eq!(last.body["type"], "text");
    assert_eq!(last.body["messaging_product"], "whatsapp");

    let contact = host.contact("+5511987654321").await.unwrap();
    let cid = host.conversations(contact["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap().to_string();
    let reply = outbound(&host.conversation(&cid).await);
    assert_eq!(reply["status"], "sent");
    let wamid = reply["wamid"].as_str().unwrap().to_string();
    assert_eq!(wamid, "wamid.FAKE0003");

    // read, then a late delivered: read stays read
    let t = host.now_secs();
    for sample in ["status-read.json", "status-delivered.json"] {
        let (status, _) = host.post_payload(&status_payload(sample, &wamid, "5511987654321", t)).await;
        assert_eq!(status, 200);
    }
    host.settle().await;
    let reply = outbound(&host.conversation(&cid).await);
    assert_eq!(reply["status"], "read");
    let history = status_history(&reply);
    assert_eq!(
        history,
        vec![("sent".into(), true), ("read".into(), true), ("delivered".into(), false)],
        "the late delivered is kept in history but does not move the status"
    );
    // A failure after read does not unread it either, nor does its error
    // become the message's: it is kept with the late status in the history.
    host.post_payload(&status_payload("status-failed.json", &wamid, "5511987654321", t)).await;
    host.settle().await;
    let reply = outbound(&host.conversation(&cid).await);
    assert_eq!(reply["status"], "read");
    assert_eq!(reply["errors"], json!([]), "a status that was not applied adds no error to the message");
    let late = reply["status_history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((late["status"].as_str(), late["applied"].as_bool()), (Some("failed"), Some(false)));
    assert_eq!(late["errors"][0]["code"], 131047);
}

/// Meta's status reference: besides sent, delivered, read and failed, a
/// voice message is `played`, and a message can be `deleted` by the user or
/// get a `warning`. All are accepted in one body with a new message; played
/// moves the message past read; deleted and warning are recorded in its
/// history without becoming its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn played_deleted_and_warning_statuses_are_accepted_beside_a_message() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;
    let contact = host.contact("+5511987654321").await.unwrap();
    let cid = host.conversations(contact["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap().to_string();
    let wamid = outbound(&host.conversation(&cid).await)["wamid"].as_str().unwrap().to_string();

    let t = host.now_secs();
    let mut body = status_payload("status-read.json", &wamid, "5511987654321", t);
    let read = first_value(&mut body)["statuses"][0].clone();
    let statuses: Vec<Value> = ["read", "played", "deleted", "warning"]
        .into_iter()
        .map(|status| {
            let mut s = read.clone();
            s["status"] = json!(status);
            s
        })
        .collect();
    first_value(&mut body)["statuses"] = json!(statuses);
    let message = payload("text.json", t);
    first_value(&mut body)["messages"] = first_value(&mut message.clone())["messages"].clone();
    first_value(&mut body)["contacts"] = first_value(&mut message.clone())["contacts"].clone();
    let (status, ack) = host.post_payload(&body).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["accepted"], 5, "one message and four statuses: {ack}");
    host.settle().await;

    let reply = outbound(&host.conversation(&cid).await);
    assert_eq!(reply["status"], "played");
    let history = status_history(&reply);
    assert_eq!(
        history,
        vec![
            ("sent".into(), true),
            ("read".into(), true),
            ("played".into(), true),
            ("deleted".into(), false),
            ("warning".into(), false)
        ]
    );
    let contact = host.contact("+5511987654321").await.unwrap();
    assert_eq!(contact["stats"]["inbound_messages"], 2, "the message beside the statuses was applied too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_that_overtakes_the_send_response_is_applied_when_it_arrives() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    // Meta will call the reply wamid.FAKE0001; its delivered status arrives first.
    host.post_payload(&status_payload("status-delivered.json", "wamid.FAKE0001", "5511987654321", host.now_secs()))
        .await;
    host.settle().await;
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;
    let contact = host.contact("+5511987654321").await.unwrap();
    let cid = host.conversations(contact["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap().to_string();
    let reply = outbound(&host.conversation(&cid).await);
    assert_eq!(reply["wamid"], "wamid.FAKE0001");
    assert_eq!(reply["status"], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_routers_fall_back_to_the_human_queue_and_the_host_keeps_serving() {
    let host = TestHost::start_with(|c| {
        c.plugins.limits.memory_bytes = 16 * 1024 * 1024;
        c.plugins.limits.deadline = std::time::Duration::from_millis(200);
    })
    .await;
    let stages = host.server().state.stages();
    let cases = [
        ("trap_router", "trap:"),
        ("loop_router", "fuel exhausted"),
        ("hog_router", "memory limit"),
        ("invalid_router", "invalid output"),
    ];
    for (i, (guest_name, expected_cause)) in cases.iter().enumerate() {
        let plugin = stages.plugins.runtime().compile(&guest(guest_name), None).expect("test plugin compiles");
        let version = plugin.meta.hash.clone();
        stages.plugins.activate("demo", plugin);
        let from = format!("55119876500{i:02}");
        let wamid = format!("wamid.BAD{i}");
        host.post_payload(&text_message(&from, "Tester", &wamid, "oi", host.now_secs())).await;
        host.settle().await;

        let contact = host.contact(&format!("+{from}")).await.expect("the message was not lost");
        let cid = host.conversations(contact["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap().to_string();
        let view = host.conversation(&cid).await;
        let d = &view["decisions"][0];
        assert_eq!(d["outcome"], "fallback", "{guest_name}: {d}");
        assert_eq!(d["plugin"]["version"], version.as_str(), "the failing version is named");
        let cause = d["cause"].as_str().unwrap();
        assert!(cause.contains(expected_cause), "{guest_name}: cause {cause:?}");
        assert_eq!(
            d["decision"]["handler"],
            json!({ "type": "human", "assignee": { "kind": "team", "id": "human-queue" } })
        );
        assert_eq!(view["conversation"]["assignee"]["id"], "human-queue");
        assert_eq!(view["messages"].as_array().unwrap().len(), 1, "a fallback sends nothing");
    }
    // The invalid router's stdout was captured as a log line.
    let logs = stages.plugins.logs.recent("demo", World::Router, 100);
    assert!(
        logs.iter().any(|l| l.line.source == "stdout" && l.line.message.contains("invalid decision on purpose")),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l.line.source == "log" && l.line.message == "about to fail"));

    // Failures are counted per tenant and kind.
    let metrics = host.metrics().await;
    for kind in ["trap", "fuel", "memory", "invalid_output"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("switchboard_plugin_failures_total") && l.contains(&format!("kind=\"{kind}\""))),
            "{kind} missing from metrics"
        );
    }

    // Back to the default: the host is still serving and routing normally.
    stages.plugins.deactivate("demo", World::Router);
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;
    let ana = host.contact("+5511987654321").await.unwrap();
    let cid = host.conversations(ana["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(host.conversation(&cid).await["decisions"][0]["outcome"], "decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_spins_without_fuel_is_stopped_by_the_deadline() {
    let host = TestHost::start_with(|c| {
        c.plugins.limits.fuel = u64::MAX / 2;
        c.plugins.limits.deadline = std::time::Duration::from_millis(30);
    })
    .await;
    let stages = host.server().state.stages();
    stages.plugins.activate("demo", stages.plugins.runtime().compile(&guest("loop_router"), None).unwrap());
    host.post_payload(&text_message("5511987650099", "Spin", "wamid.SPIN", "oi", host.now_secs())).await;
    host.settle().await;
    let contact = host.contact("+5511987650099").await.unwrap();
    let cid = host.conversations(contact["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap().to_string();
    let d = &host.conversation(&cid).await["decisions"][0];
    assert!(d["cause"].as_str().unwrap().contains("deadline exceeded"), "{d}");
    let took_us = d["duration_us"].as_u64().unwrap();
    assert!(took_us >= 30_000, "stopped at the deadline, not before: {took_us} µs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_thread_to_the_message_they_quote_and_quiet_conversations_expire() {
    let host = TestHost::start().await;
    let from = "5511987654321";
    host.post_payload(&text_message(from, "Ana", "wamid.FIRST", "Vocês entregam no sábado?", host.now_secs())).await;
    host.settle().await;
    let contact = host.contact("+5511987654321").await.unwrap();
    let cid = contact["id"].as_str().unwrap().to_string();
    let first_conversation = host.conversations(&cid).await[0]["id"].as_str().unwrap().to_string();

    // Two days later (past the 24 h inactivity timeout) a plain message
    // opens a new conversation…
    host.clock.advance(2 * DAY);
    host.post_payload(&text_message(from, "Ana", "wamid.LATER", "Outra pergunta", host.now_secs())).await;
    host.settle().await;
    let conversations = host.conversations(&cid).await;
    assert_eq!(conversations.len(), 2);
    let second = conversations[0]["id"].as_str().unwrap().to_string();
    assert_ne!(second, first_conversation);
    let first_view = host.conversation(&first_conversation).await;
    assert_eq!(first_view["conversation"]["status"], "expired");

    // …but a reply quoting the first message joins the first conversation.
    let mut reply = payload("reply-with-context.json", host.now_secs());
    first_value(&mut reply)["messages"][0]["context"]["id"] = json!("wamid.FIRST");
    host.post_payload(&reply).await;
    host.settle().await;
    let first_view = host.conversation(&first_conversation).await;
    let texts: Vec<&str> =
        first_view["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"Sim, pode ser amanhã às 10h 👍"), "{texts:?}");
    let quoted = first_view["messages"].as_array().unwrap().iter().find(|m| m["reply_to"] == "wamid.FIRST").unwrap();
    assert_eq!(quoted["direction"], "inbound");
    assert_eq!(first_view["conversation"]["status"], "open", "reopened by the reply");
    assert_eq!(host.conversations(&cid).await.len(), 2, "no third conversation");

    // Context the router saw: the contact's stats and the open window.
    let contact = host.contact("+5511987654321").await.unwrap();
    assert_eq!(contact["stats"]["inbound_messages"], 3);
    assert_eq!(contact["stats"]["conversations"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_report_health_metrics_and_the_api() {
    let host = TestHost::start().await;
    host.post_payload(&payload("greeting.json", host.now_secs())).await;
    host.settle().await;
    let (status, health) = host.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");

    let metrics = host.metrics().await;
    for needle in [
        "switchboard_messages_in_total{type=\"text\"} 1",
        "switchboard_decisions_total{world=\"router\",outcome=\"decided\"} 1",
        "switchboard_plugin_call_seconds_count{world=\"router\"} 1",
        "switchboard_webhook_requests_total{result=\"accepted\"} 1",
        "switchboard_sends_total{outcome=\"dry_run\"} 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle:?} in\n{metrics}");
    }

    let spec: Value = host.http.get(format!("{}/openapi.json", host.base)).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with('3'));
    for path in ["/webhooks/whatsapp", "/v1/contacts", "/v1/conversations/{id}", "/healthz"] {
        assert!(spec["paths"].get(path).is_some(), "{path} not documented");
    }
}

/// The OpenAPI document and the routes agree: every documented operation
/// is served (a request reaches its handler — it is neither the unknown-
/// endpoint fallback nor a 405), with a wrong key it is refused with 401
/// when the document says it is secured, and no served path is missing
/// from the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_secured_as_documented() {
    let host = TestHost::start().await;
    let spec: Value = host.http.get(format!("{}/openapi.json", host.base)).send().await.unwrap().json().await.unwrap();
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace('{', "x").replace('}', "");
        for (method, op) in item.as_object().unwrap() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let (status, body) = host.call(method.clone(), &concrete, "not-a-valid-key", None).await;
            let fallback = body["error"]["message"].as_str().is_some_and(|m| m.contains("/openapi.json"));
            assert!(status != 405 && !fallback, "{method} {path} is documented but not served: {status} {body}");
            if secured {
                assert_eq!(status, 401, "{method} {path} is documented as secured: {body}");
            }
            operations += 1;
        }
    }
    assert!(operations > 60, "only {operations} operations documented");
    // Paths a client would guess, each served and documented or neither.
    let guesses = [
        ("/v1/contacts", "/v1/contacts"),
        ("/v1/inbox", "/v1/inbox"),
        ("/v1/plugins/router/config", "/v1/plugins/{world}/config"),
        ("/admin/v1/tenants", "/admin/v1/tenants"),
        ("/metrics", "/metrics"),
        ("/v1/contacts/x/notes", "/v1/contacts/{id}/notes"),
    ];
    for (path, template) in guesses {
        let documented = spec["paths"].get(template).is_some();
        let (status, body) = host.call(reqwest::Method::GET, path, "not-a-valid-key", None).await;
        let served = !body["error"]["message"].as_str().is_some_and(|m| m.contains("/openapi.json"));
        assert_eq!(documented, served, "GET {path}: documented {documented}, served {served} ({status} {body})");
    }
}

fn reason_json(decision: &Value) -> Value {
    serde_json::from_str(decision["decision"]["reason"].as_str().unwrap()).expect("the echo router's reason is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_sees_history_window_stats_deal_company_settings_and_local_time() {
    let host = TestHost::start().await;
    let stages = host.server().state.stages();
    stages.plugins.activate("demo", stages.plugins.runtime().compile(&guest("echo_router"), None).unwrap());
    let settings = std::collections::BTreeMap::from([("echo-setting".to_string(), "hello".to_string())]);
    stages.plugins.set_config("demo", World::Router, &settings).unwrap();
    let (_, company) = host.post_json("/v1/companies", json!({ "name": "Souza Comércio" })).await;
    let (_, contact) = host
        .post_json("/v1/contacts", json!({ "phone": "11 98765-4321", "name": "Ana", "company_id": company["id"] }))
        .await;
    host.post_json("/v1/deals", json!({ "contact_id": contact["id"], "name": "Anual", "stage": "proposal" })).await;

    host.post_payload(&text_message("5511987654321", "Ana S.", "wamid.ONE", "primeira", host.now_secs())).await;
    host.settle().await;
    host.clock.advance(10 * MINUTE);
    let second_at = host.now_secs();
    host.post_payload(&text_message("5511987654321", "Ana S.", "wamid.TWO", "segunda", second_at)).await;
    host.settle().await;

    let conversation = &host.conversations(contact["id"].as_str().unwrap()).await[0];
    let view = host.conversation(conversation["id"].as_str().unwrap()).await;
    let seen = reason_json(&view["decisions"][1]);
    assert_eq!(seen["tenant"], "demo");
    assert_eq!(seen["message"], "segunda");
    assert_eq!(seen["history"], json!(["primeira", "echo"]), "earlier messages, oldest first, without the current one");
    assert_eq!(
        (seen["inbound"].as_u64(), seen["outbound"].as_u64(), seen["conversations"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    let median = seen["median_latency"].as_i64().unwrap();
    // Webhook timestamps are whole seconds; our reply's time is in ms.
    assert!((599_000..=601_000).contains(&median), "the contact answered our reply after ~10 minutes: {median}");
    assert_eq!(seen["window_open"], true);
    assert_eq!(seen["closes_at"], second_at * 1000 + DAY);
    assert_eq!(seen["stage"], "proposal");
    assert_eq!(seen["company"], "Souza Comércio");
    assert_eq!(seen["contact_name"], "Ana");
    assert_eq!(seen["country"], "BR");
    assert_eq!(seen["setting"], "hello", "tenant settings reach the plugin through `config`");
    // Monday 14:10 in São Paulo (UTC-3).
    assert_eq!(
        (seen["weekday"].as_u64(), seen["minute"].as_u64(), seen["offset"].as_i64()),
        (Some(0), Some(850), Some(-180))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_24_hour_window_only_templates_go_out() {
    let host = TestHost::start().await;
    let two_days_ago = host.now_secs() - 2 * DAY / 1000;

    // The default router answers a greeting with text: suppressed, recorded.
    host.post_payload(&text_message("5511987650001", "Old", "wamid.OLD1", "oi", two_days_ago)).await;
    host.settle().await;
    let c = host.contact("+5511987650001").await.unwrap();
    let view = host.conversation(host.conversations(c["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap()).await;
    let actions = view["decisions"][0]["actions"].to_string();
    assert!(actions.contains("24-hour window is closed"), "{actions}");
    assert_eq!(view["messages"].as_array().unwrap().len(), 1, "no text went out");

    // A router that answers with a template outside the window gets it sent.
    let stages = host.server().state.stages();
    stages.plugins.activate("demo", stages.plugins.runtime().compile(&guest("echo_router"), None).unwrap());
    host.post_payload(&text_message("5511987650002", "Old", "wamid.OLD2", "oi", two_days_ago)).await;
    host.settle().await;
    let c = host.contact("+5511987650002").await.unwrap();
    let view = host.conversation(host.conversations(c["id"].as_str().unwrap()).await[0]["id"].as_str().unwrap()).await;
    assert_eq!(reason_json(&view["decisions"][0])["window_open"], false);
    let out =
        view["messages"].as_array().unwrap().iter().find(|m| m["direction"] == "outbound").expect("template sent");
    assert_eq!(out["kind"], "template");
    assert_eq!(out["content"]["name"], "follow_up_quote");
    assert_eq!(out["status"], "dry_run");
}

/// The (first) message the host sent in a conversation view.
fn outbound(view: &Value) -> Value {
    view["messages"].as_array().unwrap().iter().find(|m| m["direction"] == "outbound").cloned().unwrap()
}

/// A message's status history as (status, applied) pairs.
fn status_history(message: &Value) -> Vec<(String, bool)> {
    message["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["status"].as_str().unwrap().to_string(), h["applied"].as_bool().unwrap()))
        .collect()
}
