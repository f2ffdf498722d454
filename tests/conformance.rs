//! WhatsApp conformance: every shape Meta's webhook reference documents is
//! acknowledged, and nothing acknowledged is lost. The bodies are written
//! from Meta's reference pages (messages, statuses, system, edit, revoke),
//! not from what the parser happens to accept.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use switchboard::ingest::payload::Unreadable;
use switchboard::ingest::quarantine::{OPERATOR, Quarantined};
use switchboard::store::Batch;

/// One `messages` change for the demo tenant's number.
fn change(messages: Value, statuses: Value) -> Value {
    json!({ "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
        "contacts": [{ "profile": { "name": "Ana Souza" }, "wa_id": "5511987654321" }],
        "messages": messages,
        "statuses": statuses,
    }})
}

fn body(changes: Vec<Value>) -> Value {
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "102290129340398", "changes": changes }] })
}

fn text(id: &str, body: &str, now: i64) -> Value {
    json!({ "from": "5511987654321", "id": id, "timestamp": now.to_string(), "type": "text", "text": { "body": body } })
}

/// The ids of the conversation's inbound messages, in log order.
fn inbound_ids(view: &Value) -> Vec<String> {
    inbound(view).iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

/// `switchboard_<name>{<labels>} <value>` from the metrics page.
fn metric(page: &str, line_start: &str) -> Option<f64> {
    page.lines().find(|l| l.starts_with(line_start))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_mixing_good_messages_with_odd_items_is_acknowledged_and_the_odd_ones_kept() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    let odd_messages = json!([
        text("wamid.good1", "Oi, tudo bem?", now),
        // No id: nothing could ever de-duplicate or answer it.
        { "from": "5511987654321", "timestamp": now.to_string(), "type": "text", "text": { "body": "sem id" } },
        { "from": "5511987654321", "id": "wamid.late", "timestamp": "yesterday", "type": "text", "text": { "body": "?" } },
        text("wamid.good2", "Quero o plano anual", now),
    ]);
    let odd_statuses = json!([
        { "id": "wamid.out1", "status": "exploded", "timestamp": now.to_string(), "recipient_id": "5511987654321" },
    ]);
    let mut without_metadata = change(json!([text("wamid.lost", "sem número", now)]), json!([]));
    without_metadata["value"].as_object_mut().unwrap().remove("metadata");
    let payload = body(vec![change(odd_messages, odd_statuses), without_metadata]);

    let (status, received) = host.post_payload(&payload).await;
    assert_eq!(status, 200, "{received}");
    assert_eq!(received["accepted"], 2, "{received}");
    assert_eq!(received["quarantined"], 4, "{received}");

    // The good ones are processed as if alone.
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let inbound = inbound_ids(&view);
    assert_eq!(inbound, ["wamid.good1", "wamid.good2"]);

    // The odd ones are the tenant's, verbatim, each with where it was and why.
    let (status, page) = host.get("/v1/quarantine").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    let mut paths: Vec<&str> = items.iter().map(|i| i["path"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "entry[0].changes[0].value.messages[1]",
            "entry[0].changes[0].value.messages[2]",
            "entry[0].changes[0].value.statuses[0]",
        ]
    );
    let by_path = |p: &str| items.iter().find(|i| i["path"] == p).unwrap();
    let late = by_path("entry[0].changes[0].value.messages[2]");
    assert!(late["reason"].as_str().unwrap().contains("timestamp"), "{late}");
    assert_eq!(late["value"]["messages"][0]["timestamp"], "yesterday", "kept as Meta sent it");
    assert_eq!(late["value"]["metadata"]["phone_number_id"], PHONE_NUMBER_ID);
    assert!(by_path("entry[0].changes[0].value.statuses[0]")["reason"].as_str().unwrap().contains("exploded"));
    let (status, one) = host.get(&format!("/v1/quarantine/{}", late["id"].as_str().unwrap())).await;
    assert_eq!((status, &one), (200, late));

    // The change naming no number is the operator's, not any tenant's.
    let (status, operator) = host.admin(Method::GET, "/admin/v1/quarantine", None).await;
    assert_eq!(status, 200, "{operator}");
    assert_eq!(operator["items"].as_array().unwrap().len(), 1, "{operator}");
    assert_eq!(operator["items"][0]["path"], "entry[0].changes[1].value");
    assert_eq!(operator["items"][0]["tenant"], "");

    let (_, health) = host.get("/healthz").await;
    assert_eq!(health["unreadable_webhook_items"], 4, "{health}");
    let page = host.metrics().await;
    assert_eq!(metric(&page, "switchboard_unreadable_webhook_items_total{kind=\"message\"}"), Some(2.0), "{page}");
    assert_eq!(metric(&page, "switchboard_unreadable_webhook_items_total{kind=\"status\"}"), Some(1.0));
    assert_eq!(metric(&page, "switchboard_unreadable_webhook_items_total{kind=\"change\"}"), Some(1.0));
    assert_eq!(metric(&page, "switchboard_unreadable_webhook_items_kept "), Some(4.0));

    // A redelivery keeps each odd item once.
    let (status, again) = host.post_payload(&payload).await;
    assert_eq!((status, again["duplicates"].as_u64()), (200, Some(2)), "{again}");
    let (_, page) = host.get("/v1/quarantine").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");
}

/// What an older release kept: a change it could not read, which this
/// release can.
fn kept_by_an_older_release(tenant: &str, id: &str, now: i64, received_at: i64) -> Quarantined {
    let value = change(json!([text(id, "mensagem antiga", now)]), json!([]))["value"].clone();
    let item = Unreadable {
        field: "messages".into(),
        phone_number_id: Some(PHONE_NUMBER_ID.into()),
        path: "entry[0].changes[0].value.messages[0]".into(),
        reason: "unknown message shape (release 0.9)".into(),
        value,
    };
    Quarantined::new(tenant, item, received_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_item_is_replayed_once_this_release_can_read_it_and_only_by_its_tenant() {
    let host = TestHost::start().await;
    let (now, received_at) = (host.now_secs(), host.clock_now());
    let readable = kept_by_an_older_release("demo", "wamid.old1", now, received_at);
    let mut unreadable = kept_by_an_older_release("demo", "wamid.old2", now, received_at);
    unreadable.value["messages"][0]["timestamp"] = json!("not a time");
    let mut operators = kept_by_an_older_release(OPERATOR, "wamid.old3", now, received_at);
    operators.phone_number_id = None;
    let stages = host.server().state.stages();
    let mut batch = Batch::new();
    for item in [&readable, &unreadable, &operators] {
        stages.quarantine.keep(&mut batch, item).unwrap();
    }
    stages.store.commit(batch).unwrap();

    // Another tenant sees none of it and cannot replay it.
    let other = host.create_tenant("other", "100000000000777", "other-secret-123").await;
    let (status, page) = host.get_as(&other, "/v1/quarantine").await;
    assert_eq!((status, page["items"].as_array().map(Vec::len)), (200, Some(0)), "{page}");
    let path = format!("/v1/quarantine/{}/replay", readable.id);
    let (status, _) = host.call(Method::POST, &path, &other, None).await;
    assert_eq!(status, 404);

    let (status, replayed) = host.post_json(&path, json!({})).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!((replayed["released"].as_u64(), replayed["accepted"].as_u64()), (Some(1), Some(1)), "{replayed}");
    let (status, _) = host.get(&format!("/v1/quarantine/{}", readable.id)).await;
    assert_eq!(status, 404, "released");

    let (status, replayed) = host.post_json("/v1/quarantine/replay", json!({})).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!((replayed["released"].as_u64(), replayed["kept"].as_u64()), (Some(0), Some(1)), "{replayed}");
    let (_, still) = host.get(&format!("/v1/quarantine/{}", unreadable.id)).await;
    assert_eq!(still["replays"], 1, "{still}");
    assert!(still["reason"].as_str().unwrap().contains("not a time"), "the latest reason: {still}");

    // The operator's item goes to the tenant owning the number it names.
    let (status, replayed) = host.admin(Method::POST, "/admin/v1/quarantine/replay", None).await;
    assert_eq!((status, replayed["released"].as_u64()), (200, Some(1)), "{replayed}");

    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let inbound = inbound_ids(&view);
    assert_eq!(inbound, ["wamid.old1", "wamid.old3"]);
}

fn post_messages(messages: Value) -> Value {
    body(vec![change(messages, json!([]))])
}

fn inbound(view: &Value) -> Vec<Value> {
    view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "inbound").cloned().collect()
}

fn outbound_count(view: &Value) -> usize {
    view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "outbound").count()
}

/// Meta's `edit` and `revoke` webhooks (messages reference, "Edit messages"
/// and "Revoke messages"): they name the original by
/// `original_message_id`; an edit carries the new message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_changes_the_original_and_a_revoke_marks_it_deleted_and_neither_is_routed() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    let (status, _) =
        host.post_payload(&post_messages(json!([text("wamid.e1", "Qual o preço do plano anual?", now)]))).await;
    assert_eq!(status, 200);
    host.settle().await;
    let before = host.conversation_of("+5511987654321").await;
    assert_eq!(before["decisions"].as_array().unwrap().len(), 1);

    let edit = json!({ "from": "5511987654321", "id": "wamid.e2", "timestamp": now.to_string(), "type": "edit",
        "edit": { "original_message_id": "wamid.e1",
                  "message": { "type": "text", "text": { "body": "Qual o preço do plano mensal?" } } } });
    let (status, received) = host.post_payload(&post_messages(json!([edit]))).await;
    assert_eq!((status, received["accepted"].as_u64()), (200, Some(1)), "{received}");
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let messages = inbound(&view);
    assert_eq!(messages.len(), 1, "an edit is not a new message: {messages:?}");
    assert_eq!(messages[0]["text"], "Qual o preço do plano mensal?");
    assert_eq!(messages[0]["content"]["body"], "Qual o preço do plano mensal?");
    assert_eq!(messages[0]["edits"][0]["text"], "Qual o preço do plano anual?", "the history is kept");
    assert_eq!(view["decisions"].as_array().unwrap().len(), 1, "an edit is not routed");
    assert_eq!(outbound_count(&view), outbound_count(&before), "and not answered");

    let revoke = json!({ "from": "5511987654321", "id": "wamid.e3", "timestamp": now.to_string(), "type": "revoke",
        "revoke": { "original_message_id": "wamid.e1" } });
    let (status, _) = host.post_payload(&post_messages(json!([revoke]))).await;
    assert_eq!(status, 200);
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let messages = inbound(&view);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["revoked_at"], json!(now * 1000), "{messages:?}");
    assert_eq!(view["decisions"].as_array().unwrap().len(), 1);

    // An edit of a message we never had is kept as it came, unrouted.
    let stray = json!({ "from": "5511987654321", "id": "wamid.e4", "timestamp": now.to_string(), "type": "edit",
        "edit": { "original_message_id": "wamid.never", "message": { "type": "text", "text": { "body": "oi?" } } } });
    host.post_payload(&post_messages(json!([stray]))).await;
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let kept: Vec<&Value> = view["messages"].as_array().unwrap().iter().filter(|m| m["id"] == "wamid.e4").collect();
    assert_eq!(kept.len(), 1, "{view}");
    assert_eq!((kept[0]["kind"].as_str(), kept[0]["text"].as_str()), (Some("edit"), Some("oi?")));
    assert_eq!(kept[0]["reply_to"], "wamid.never");
    assert_eq!(view["decisions"].as_array().unwrap().len(), 1);
}

/// `context.forwarded` / `frequently_forwarded` and a click-to-WhatsApp
/// `referral` (messages reference, "Text messages" and "Referral").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_flags_and_the_ad_referral_are_kept_on_the_message_and_the_conversation() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    let referral = json!({ "source_url": "https://fb.me/3cr4Wqqkv", "source_id": "120212345678900",
        "source_type": "ad", "headline": "Plano anual com 20% off", "body": "Fale com a gente",
        "media_type": "image", "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/ad.png",
        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-ZABDLQWXjUl9BsxIbQ" });
    let mut from_ad = text("wamid.f1", "Vi o anúncio", now);
    from_ad["referral"] = referral.clone();
    let mut forwarded = text("wamid.f2", "olha isso", now);
    forwarded["context"] = json!({ "forwarded": true });
    let mut viral = text("wamid.f3", "corrente", now);
    viral["context"] = json!({ "frequently_forwarded": true });
    let (status, received) = host.post_payload(&post_messages(json!([from_ad, forwarded, viral]))).await;
    assert_eq!((status, received["accepted"].as_u64()), (200, Some(3)), "{received}");
    host.settle().await;

    let view = host.conversation_of("+5511987654321").await;
    let messages = inbound(&view);
    let by_id = |id: &str| messages.iter().find(|m| m["id"] == id).unwrap().clone();
    assert_eq!(by_id("wamid.f1")["referral"], referral);
    assert_eq!(view["conversation"]["referral"], referral, "the conversation remembers where it came from");
    assert_eq!(by_id("wamid.f1").get("forwarded"), None);
    assert_eq!(by_id("wamid.f2")["forwarded"], "forwarded");
    assert_eq!(by_id("wamid.f3")["forwarded"], "frequently_forwarded");
}

const ANA_BSUID: &str = "BR.13491208655302741918";

/// A message as Meta sends it since BSUIDs (business-scoped user ids
/// reference): `contacts[].user_id` always, `wa_id`/`from` only when the
/// phone number may be shared.
fn bsuid_message(id: &str, body: &str, now: i64, wa_id: Option<&str>, user_id: &str) -> Value {
    let mut contact = json!({ "profile": { "name": "Ana Souza", "username": "@ana.souza" }, "user_id": user_id });
    let mut message = json!({ "from_user_id": user_id, "id": id, "timestamp": now.to_string(), "type": "text",
        "text": { "body": body } });
    if let Some(w) = wa_id {
        contact["wa_id"] = json!(w);
        message["from"] = json!(w);
    }
    let mut change = change(json!([message]), json!([]));
    change["value"]["contacts"] = json!([contact]);
    body_of(change)
}

fn body_of(change: Value) -> Value {
    body(vec![change])
}

async fn contacts_matching(host: &TestHost, q: &str) -> Vec<Value> {
    let (status, page) = host.get(&format!("/v1/contacts?q={}", q.replace('+', "%2B"))).await;
    assert_eq!(status, 200, "{page}");
    page["contacts"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_known_only_by_bsuid_is_one_contact_routed_and_answered_by_bsuid_then_linked_to_their_phone() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let now = host.now_secs();
    let (status, received) = host.post_payload(&bsuid_message("wamid.b1", "Oi, bom dia!", now, None, ANA_BSUID)).await;
    assert_eq!((status, received["accepted"].as_u64()), (200, Some(1)), "{received}");
    host.settle().await;

    let found = contacts_matching(&host, ANA_BSUID).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let ana = &found[0];
    assert_eq!((ana["phone"].as_str(), ana["user_id"].as_str()), (None, Some(ANA_BSUID)), "{ana}");
    assert_eq!(ana["username"], "@ana.souza");
    assert_eq!(ana["country"], "BR", "the BSUID's country");
    let conversations = host.conversations(ana["id"].as_str().unwrap()).await;
    let view = host.conversation(conversations[0]["id"].as_str().unwrap()).await;
    assert_eq!(view["decisions"].as_array().unwrap().len(), 1, "routed");
    let sent = meta.sent();
    assert_eq!(sent.len(), 1, "the greeting is answered");
    assert_eq!(sent[0].body["recipient"], ANA_BSUID, "{}", sent[0].body);
    assert!(sent[0].body.get("to").is_none(), "{}", sent[0].body);
    // Meta refuses authentication templates to a BSUID (131062): so does the host, before sending.
    let otp = json!({ "template": { "name": "login_code", "language": "pt_BR", "parameters": ["123456"], "category": "authentication" } });
    let cv = conversations[0]["id"].as_str().unwrap();
    let (status, err) = host.staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(otp)).await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("needs_phone")), "{err}");
    assert_eq!(meta.sent().len(), 1, "nothing went to Meta");

    // The same person, now with the phone number too: the same contact.
    host.post_payload(&bsuid_message("wamid.b2", "meu número", now, Some("5511987654321"), ANA_BSUID)).await;
    host.settle().await;
    let found = contacts_matching(&host, ANA_BSUID).await;
    assert_eq!(found.len(), 1);
    assert_eq!((found[0]["id"].as_str(), found[0]["phone"].as_str()), (ana["id"].as_str(), Some("+5511987654321")));
    assert_eq!(found[0]["identity_history"][0]["kind"], "phone", "{}", found[0]);
    assert_eq!(found[0]["identity_history"][0]["cause"], "message");

    // And an old-style message by phone alone finds it too.
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.b3", "de novo", now)).await;
    host.settle().await;
    assert_eq!(host.contact("+5511987654321").await.unwrap()["id"], ana["id"]);
    let (_, all) = host.get("/v1/contacts").await;
    assert_eq!(all["contacts"].as_array().unwrap().len(), 1, "one person, one contact: {all}");
}

/// Meta names a person by BSUID and phone together while two contacts
/// hold them (one imported by phone, one made by a BSUID-only message):
/// the host cannot give the phone to the BSUID's contact, so it suggests
/// the two as one person, with why; merged, every id finds the survivor,
/// which now holds both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bsuid_sent_with_a_phone_another_contact_holds_is_suggested_as_a_duplicate_and_merges() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    let (_, by_phone) = host.post_json("/v1/contacts", json!({ "phone": "+5511987654321", "name": "Ana Souza" })).await;
    host.post_payload(&bsuid_message("wamid.u1", "Oi", now, None, ANA_BSUID)).await;
    host.settle().await;
    let by_bsuid = host.contact(ANA_BSUID).await.expect("a contact for the BSUID");
    assert_ne!(by_bsuid["id"], by_phone["id"], "nothing yet said they are one person");
    host.post_payload(&bsuid_message("wamid.u2", "meu número", now, Some("5511987654321"), ANA_BSUID)).await;
    host.settle().await;

    let (_, dup) = host.get("/v1/duplicates").await;
    let pair = &dup["candidates"][0];
    let ids = [pair["a"]["id"].clone(), pair["b"]["id"].clone()];
    assert!(ids.contains(&by_phone["id"]) && ids.contains(&by_bsuid["id"]), "{dup}");
    assert!(pair["evidence"].to_string().contains("together"), "{dup}");

    let merge = json!({ "survivor": by_phone["id"], "merged": by_bsuid["id"] });
    let (status, merged) = host.staff("lead", "/v1/duplicates/merge", Some(merge)).await;
    assert_eq!(status, 200, "{merged}");
    host.post_payload(&bsuid_message("wamid.u3", "de novo", now, None, ANA_BSUID)).await;
    host.settle().await;
    let survivor = host.contact(ANA_BSUID).await.expect("the BSUID finds the survivor");
    assert_eq!(survivor["id"], by_phone["id"]);
    assert_eq!((survivor["phone"].as_str(), survivor["user_id"].as_str()), (Some("+5511987654321"), Some(ANA_BSUID)));
    assert_eq!(survivor["stats"]["inbound_messages"], 3, "every message, on one person: {survivor}");
    let (_, health) = host.get("/healthz").await;
    assert_eq!(health["quarantined"], 0, "nothing failed to apply: {health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_known_by_phone_learns_its_bsuid_and_is_found_by_it_alone() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    host.post_payload(&text_message("5511987654321", "Ana", "wamid.p1", "oi", now)).await;
    host.post_payload(&bsuid_message("wamid.p2", "oi", now, Some("5511987654321"), ANA_BSUID)).await;
    host.post_payload(&bsuid_message("wamid.p3", "sem número agora", now, None, ANA_BSUID)).await;
    host.settle().await;
    let (_, all) = host.get("/v1/contacts").await;
    let contacts = all["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1, "{all}");
    assert_eq!(
        (contacts[0]["phone"].as_str(), contacts[0]["user_id"].as_str()),
        (Some("+5511987654321"), Some(ANA_BSUID))
    );
    let view = host.conversation_of("+5511987654321").await;
    assert_eq!(inbound(&view).len(), 3);
}

/// Meta's system messages reference: `user_changed_number` comes from the
/// old number with the new one in `system.wa_id`; `user_changed_user_id`
/// may name no sender, only `system.previous_user_id` and `user_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_number_or_bsuid_moves_the_contact_and_keeps_the_old_one() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    host.post_payload(&bsuid_message("wamid.c1", "oi", now, Some("5511987654321"), ANA_BSUID)).await;
    host.settle().await;
    let ana = host.contact("+5511987654321").await.unwrap();

    let new_bsuid = "BR.88805551234500011122";
    let changed = json!({ "from": "5511987654321", "id": "wamid.c2", "timestamp": now.to_string(), "type": "system",
        "system": { "body": "User Ana Souza changed from 5511987654321 to 5511912345678",
                    "wa_id": "5511912345678", "type": "user_changed_number",
                    "user_id": new_bsuid, "previous_user_id": ANA_BSUID } });
    let mut c = change(json!([changed]), json!([]));
    c["value"].as_object_mut().unwrap().remove("contacts");
    let (status, received) = host.post_payload(&body_of(c)).await;
    assert_eq!((status, received["accepted"].as_u64()), (200, Some(1)), "{received}");
    host.settle().await;

    assert!(host.contact("+5511987654321").await.is_none(), "the old number is no longer the contact's");
    let moved = host.contact("+5511912345678").await.expect("the contact moved to the new number");
    assert_eq!(moved["id"], ana["id"]);
    assert_eq!(moved["user_id"], new_bsuid, "a new number comes with a new BSUID");
    let history = moved["identity_history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|h| h["kind"] == "phone" && h["previous"] == "+5511987654321" && h["cause"] == "user_changed_number"),
        "{history:?}"
    );
    // The next message from the new number is the same person.
    host.post_payload(&bsuid_message("wamid.c3", "número novo", now, Some("5511912345678"), new_bsuid)).await;
    // A BSUID change, with no sender at all.
    let newer_bsuid = "BR.99900011122233344455";
    let changed_id = json!({ "id": "wamid.c4", "timestamp": now.to_string(), "type": "system",
        "system": { "body": "User Ana Souza changed their user ID", "type": "user_changed_user_id",
                    "user_id": newer_bsuid, "previous_user_id": new_bsuid } });
    let mut c = change(json!([changed_id]), json!([]));
    c["value"].as_object_mut().unwrap().remove("contacts");
    let (status, received) = host.post_payload(&body_of(c)).await;
    assert_eq!((status, received["accepted"].as_u64(), received["quarantined"].as_u64()), (200, Some(1), Some(0)));
    host.post_payload(&bsuid_message("wamid.c5", "ainda eu", now, None, newer_bsuid)).await;
    host.settle().await;

    let (_, all) = host.get("/v1/contacts").await;
    let contacts = all["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1, "{all}");
    assert_eq!(contacts[0]["user_id"], newer_bsuid);
    let view = host.conversation_of("+5511912345678").await;
    let mut decided: Vec<&str> =
        view["decisions"].as_array().unwrap().iter().map(|d| d["message_id"].as_str().unwrap()).collect();
    decided.sort();
    assert_eq!(decided, ["wamid.c1", "wamid.c3", "wamid.c5"], "system messages are not routed");
    let (_, audit) = host.get("/v1/audit").await;
    let changes: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "identity_changed").collect();
    assert_eq!(changes.len(), 2, "{audit}");
}

/// Contacts known only by BSUID can be created and imported, and a sender
/// who later writes by BSUID finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_created_and_imported_by_bsuid_and_found_by_senders() {
    let host = TestHost::start().await;
    let (status, created) = host.post_json("/v1/contacts", json!({ "user_id": ANA_BSUID, "name": "Ana" })).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["phone"].as_str(), created["user_id"].as_str()), (None, Some(ANA_BSUID)));
    let (status, taken) = host.post_json("/v1/contacts", json!({ "user_id": ANA_BSUID })).await;
    assert_eq!((status, taken["error"]["code"].as_str()), (409, Some("already_exists")), "{taken}");
    for (body, code) in [
        (json!({ "name": "nobody" }), "missing_identity"),
        (json!({ "user_id": "13491208655302741918" }), "invalid_user_id"),
    ] {
        let (status, err) = host.post_json("/v1/contacts", body).await;
        assert_eq!((status, err["error"]["code"].as_str()), (400, Some(code)), "{err}");
    }

    let csv = "phone,name\nUS.77712345678901234567,Sam\n(11) 91234-5678,Bia\n";
    let resp = host
        .http
        .post(format!("{}/v1/contacts/import", host.base))
        .bearer_auth(API_KEY)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let job = wait_for("the import to finish", || async {
        let (_, j) = host.get(&format!("/v1/imports/{id}")).await;
        (j["status"] == "done").then_some(j)
    })
    .await;
    assert_eq!((job["created"].as_u64(), job["failed"].as_u64()), (Some(2), Some(0)), "{job}");
    let sam = contacts_matching(&host, "US.77712345678901234567").await;
    assert_eq!((sam.len(), sam[0]["country"].as_str()), (1, Some("US")));

    let now = host.now_secs();
    host.post_payload(&bsuid_message("wamid.i1", "oi", now, None, ANA_BSUID)).await;
    host.settle().await;
    let (_, all) = host.get("/v1/contacts").await;
    assert_eq!(all["contacts"].as_array().unwrap().len(), 3, "the sender found the contact made for them: {all}");
    let found = contacts_matching(&host, ANA_BSUID).await;
    assert_eq!((found[0]["id"].as_str(), found[0]["name"].as_str()), (created["id"].as_str(), Some("Ana")));
}

/// Meta's reaction messages reference: `reaction.message_id` names the
/// message reacted to; a reaction taken back comes without an `emoji`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_is_recorded_on_the_message_and_taking_it_back_is_not_routed() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    host.post_payload(&post_messages(json!([text("wamid.r1", "Oi, bom dia!", now)]))).await;
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let reply = view["messages"].as_array().unwrap().iter().find(|m| m["direction"] == "outbound").unwrap().clone();
    let reply_id = reply["id"].as_str().unwrap();
    // The business's reply has a wamid only once sent; the dry run keeps the host's id.
    let target = reply["wamid"].as_str().unwrap_or(reply_id).to_string();

    let react = |id: &str, emoji: Option<&str>| {
        let mut reaction = json!({ "message_id": target });
        if let Some(e) = emoji {
            reaction["emoji"] = json!(e);
        }
        json!({ "from": "5511987654321", "id": id, "timestamp": now.to_string(), "type": "reaction", "reaction": reaction })
    };
    host.post_payload(&post_messages(json!([react("wamid.r2", Some("👍"))]))).await;
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let reacted = view["messages"].as_array().unwrap().iter().find(|m| m["id"] == reply_id).unwrap().clone();
    assert_eq!(reacted["reaction"]["emoji"], "👍", "{reacted}");
    let decisions = view["decisions"].as_array().unwrap().len();
    assert_eq!(decisions, 2, "a reaction is also the person speaking");

    host.post_payload(&post_messages(json!([react("wamid.r3", None)]))).await;
    host.settle().await;
    let view = host.conversation_of("+5511987654321").await;
    let reacted = view["messages"].as_array().unwrap().iter().find(|m| m["id"] == reply_id).unwrap().clone();
    assert_eq!(reacted.get("reaction"), None, "taken back: {reacted}");
    assert_eq!(view["decisions"].as_array().unwrap().len(), decisions, "taking it back is not routed");
}

/// Each item is kept exactly as it came — fields this release does not
/// know included — for `webhook.raw_retention`, then forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_item_is_kept_as_meta_sent_it_for_the_retention_and_then_forgotten() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    let mut message = text("wamid.raw1", "oi", now);
    message["a_field_from_2027"] = json!({ "nested": [1, 2, 3] });
    let status =
        json!({ "id": "wamid.raw1", "status": "read", "timestamp": now.to_string(), "recipient_id": "5511987654321" });
    host.post_payload(&body(vec![change(json!([message.clone()]), json!([status.clone()]))])).await;
    host.settle().await;

    let (code, raw) = host.get("/v1/messages/wamid.raw1/raw").await;
    assert_eq!(code, 200, "{raw}");
    let items = raw["items"].as_array().unwrap();
    let kept_message = items.iter().find(|i| i["kind"] == "message").unwrap();
    assert_eq!(kept_message["value"], message, "verbatim, unknown field included");
    let kept_status = items.iter().find(|i| i["kind"] == "status").unwrap();
    assert_eq!((kept_status["status"].as_str(), &kept_status["value"]), (Some("read"), &status));
    // Another tenant cannot read it.
    let other = host.create_tenant("other", "100000000000777", "other-secret-123").await;
    let (code, _) = host.get_as(&other, "/v1/messages/wamid.raw1/raw").await;
    assert_eq!(code, 404);

    let raw_items = &host.server().state.stages().raw;
    assert_eq!(raw_items.expire(host.clock_now() - 1000).unwrap(), 0, "younger than the cut-off: kept");
    assert_eq!(raw_items.expire(host.clock_now() + 1).unwrap(), 2);
    let (code, _) = host.get("/v1/messages/wamid.raw1/raw").await;
    assert_eq!(code, 404, "forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_json_is_kept_with_a_zero_retention() {
    let host = TestHost::start_with(|c| c.webhook.raw_retention = std::time::Duration::ZERO).await;
    host.post_payload(&post_messages(json!([text("wamid.raw2", "oi", host.now_secs())]))).await;
    host.settle().await;
    let (code, _) = host.get("/v1/messages/wamid.raw2/raw").await;
    assert_eq!(code, 404);
}

/// Plants a template follow-up in Ana's conversation `cv`, due now, as
/// the follow-up plugin would have planned it.
fn plant_template(host: &TestHost, cv: &str, contact: &str, id: &str, category: Option<&str>) {
    let mut template = json!({ "name": "oferta", "language": "pt_BR", "parameters": [] });
    if let Some(c) = category {
        template["category"] = json!(c);
    }
    let action = json!({ "type": "send_template", "template": template });
    let timer = switchboard::followup::Timer {
        id: id.into(),
        tenant: "demo".into(),
        conversation_id: cv.into(),
        contact_id: contact.into(),
        wa_id: "5511987654321".into(),
        follow_up: serde_json::from_value(json!({ "at": host.clock_now(), "attempt": 1, "action": action })).unwrap(),
        scheduled_at: host.clock_now(),
        reason: "test".into(),
        planned_by: "test".into(),
    };
    let stages = host.server().state.stages();
    let mut batch = Batch::new();
    stages.timers.schedule(&mut batch, &timer).unwrap();
    stages.store.commit(batch).unwrap();
}

/// The first follow-up suppression audited in `cv`, once there is one.
async fn first_suppression(host: &TestHost, cv: &str) -> Value {
    wait_for("the suppression", || async {
        let (_, audit) = host.get(&format!("/v1/conversations/{cv}/audit")).await;
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "follow_up_suppressed").cloned()
    })
    .await
}

/// Waits until the follow-up message `id` is in `cv`.
async fn follow_up_sent(host: &TestHost, cv: &str, id: &str) {
    wait_for("the follow-up to go", || async {
        let view = host.conversation(cv).await;
        view["messages"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned()
    })
    .await;
}

/// A change of another field, in the shape of Meta's reference for it.
fn field_change(waba: &str, field: &str, value: Value) -> Value {
    json!({ "object": "whatsapp_business_account",
            "entry": [{ "id": waba, "time": 1795453200, "changes": [{ "field": field, "value": value }] }] })
}

const WABA: &str = "102290129340398";

/// Meta's `phone_number_quality_update`, `phone_number_name_update` and
/// `account_update` references: the number's health is visible with its
/// history, audited, counted; while it is flagged no business-initiated
/// template goes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_health_events_are_visible_and_a_flagged_number_sends_no_template() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    // A message teaches which business account and display number are the tenant's.
    let mut first = post_messages(json!([text("wamid.n1", "Quanto custa?", now)]));
    first["entry"][0]["id"] = json!(WABA);
    host.post_payload(&first).await;
    host.settle().await;

    let flagged = field_change(
        WABA,
        "phone_number_quality_update",
        json!({
        "display_phone_number": "15550783881", "event": "FLAGGED", "max_daily_conversations_per_business": "TIER_1K" }),
    );
    let (status, received) = host.post_payload(&flagged).await;
    assert_eq!((status, received["fields"].as_u64()), (200, Some(1)), "{received}");
    let named = field_change(
        WABA,
        "phone_number_name_update",
        json!({
        "display_phone_number": "15550783881", "decision": "APPROVED", "requested_verified_name": "Loja da Ana" }),
    );
    host.post_payload(&named).await;

    let (status, numbers) = host.get("/v1/numbers").await;
    assert_eq!(status, 200, "{numbers}");
    let number = &numbers["numbers"][0];
    assert_eq!(number["phone_number_id"], PHONE_NUMBER_ID);
    assert_eq!(number["display_phone_number"], "15550783881", "learned from the message's metadata");
    assert_eq!((number["status"].as_str(), number["messaging_limit"].as_str()), (Some("FLAGGED"), Some("TIER_1K")));
    assert_eq!(number["verified_name"], "Loja da Ana");
    assert_eq!(number["history"].as_array().unwrap().len(), 2, "{number}");
    let (_, audit) = host.get("/v1/audit").await;
    let health: Vec<&Value> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "number_health_changed").collect();
    assert_eq!(health.len(), 2, "{audit}");
    let page = host.metrics().await;
    assert_eq!(
        metric(&page, "switchboard_webhook_field_changes_total{field=\"phone_number_quality_update\"}"),
        Some(1.0)
    );
    let (_, events) = host.get("/v1/webhook-events?field=phone_number_name_update").await;
    assert_eq!(events["events"][0]["value"]["decision"], "APPROVED", "{events}");

    // A template follow-up due now is suppressed, and says why.
    let view = host.conversation_of("+5511987654321").await;
    let (cv, contact) = (view["conversation"]["id"].as_str().unwrap(), view["contact"]["id"].as_str().unwrap());
    plant_template(&host, cv, contact, "fu_flagged", None);
    let suppressed = first_suppression(&host, cv).await;
    assert!(suppressed["reason"].as_str().unwrap().contains("flagged"), "{suppressed}");

    // Unflagged, the next one goes.
    let unflagged = field_change(
        WABA,
        "phone_number_quality_update",
        json!({
        "display_phone_number": "15550783881", "event": "UNFLAGGED", "max_daily_conversations_per_business": "TIER_1K" }),
    );
    host.post_payload(&unflagged).await;
    plant_template(&host, cv, contact, "fu_unflagged", None);
    follow_up_sent(&host, cv, "msg_fu_unflagged").await;
}

/// A field change that names neither a known number nor a known business
/// account must be signed with an operator secret, and is the operator's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_change_of_an_unknown_account_needs_an_operator_secret_and_is_the_operators() {
    let host = TestHost::start_with(|c| c.webhook.app_secrets = vec!["operator-secret-1".into()]).await;
    let update = field_change(
        "999999999999999",
        "account_update",
        json!({
        "phone_number": "15550001111", "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [{ "restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION", "expiration": 1795539600 }] }),
    );
    let (status, _) = host.post_payload(&update).await;
    assert_eq!(status, 401, "the tenant's secret does not vouch for an account it is not known to own");
    let body = serde_json::to_vec(&update).unwrap();
    let (status, received) =
        host.post_raw(&body, Some(&switchboard::ingest::signature::sign(b"operator-secret-1", &body))).await;
    assert_eq!((status, received["fields"].as_u64()), (200, Some(1)), "{received}");
    let (_, mine) = host.get("/v1/webhook-events").await;
    assert_eq!(mine["events"], json!([]), "not the tenant's");
    let (status, operator) = host.admin(Method::GET, "/admin/v1/webhook-events", None).await;
    assert_eq!(status, 200);
    assert_eq!(operator["events"][0]["field"], "account_update", "{operator}");
}

/// Meta's `smb_message_echoes` reference (WhatsApp Business app
/// coexistence): what the business sends from the app comes back as an
/// echo, `from` the business, `to` the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_from_the_whatsapp_business_app_joins_the_conversation_as_a_human_reply() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    host.post_payload(&post_messages(json!([text("wamid.e1", "Vocês entregam em Campinas?", now)]))).await;
    host.settle().await;
    let before = host.conversation_of("+5511987654321").await;
    assert_eq!(before["conversation"]["needs_reply"], true, "the question waits for a person");

    let echo = json!({ "from": "15550783881", "to": "5511987654321", "id": "wamid.echo1", "timestamp": now.to_string(),
        "type": "text", "text": { "body": "Entregamos sim, em 2 dias." } });
    let mut c = change(json!([]), json!([]));
    c["field"] = json!("smb_message_echoes");
    let value = c["value"].as_object_mut().unwrap();
    for k in ["messages", "statuses", "contacts"] {
        value.remove(k);
    }
    value.insert("message_echoes".into(), json!([echo]));
    let (status, received) = host.post_payload(&body(vec![c])).await;
    assert_eq!((status, received["accepted"].as_u64()), (200, Some(1)), "{received}");
    host.settle().await;

    let view = host.conversation_of("+5511987654321").await;
    let echoed = view["messages"].as_array().unwrap().iter().find(|m| m["id"] == "wamid.echo1").unwrap().clone();
    assert_eq!((echoed["direction"].as_str(), echoed["status"].as_str()), (Some("outbound"), Some("sent")), "{echoed}");
    assert_eq!(echoed["author"], json!({ "kind": "human", "staff": "whatsapp_business_app" }));
    assert_eq!(echoed["text"], "Entregamos sim, em 2 dias.");
    assert_eq!(view["decisions"], before["decisions"], "not routed");
    assert_eq!(view["conversation"]["needs_reply"], false, "a person answered");
    let (_, all) = host.get("/v1/contacts").await;
    assert_eq!(all["contacts"].as_array().unwrap().len(), 1, "the business's number is not a contact: {all}");
}

/// Meta's `history` webhook reference (coexistence): after onboarding,
/// the WhatsApp Business app's past chats arrive in chunks of threads, one
/// per person; a message `from` the business was the business's own. They
/// join the person's conversation as they were, and nothing is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_business_apps_chat_history_joins_the_conversation_unanswered() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    let (t1, t2, t3) =
        ((now - 3 * 86_400).to_string(), (now - 3 * 86_400 + 60).to_string(), (now - 86_400).to_string());
    let history = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
        "history": [{
            "metadata": { "phase": 1, "chunk_order": 1, "progress": 55 },
            "threads": [{ "id": "5511987654321", "messages": [
                { "from": "5511987654321", "id": "wamid.h1", "timestamp": t1, "type": "text",
                  "text": { "body": "Oi, vocês abrem sábado?" }, "history_context": { "status": "READ" } },
                { "from": "15550783881", "to": "5511987654321", "id": "wamid.h2", "timestamp": t2, "type": "text",
                  "text": { "body": "Abrimos das 9h às 13h." }, "history_context": { "status": "READ" } },
                { "from": "5511987654321", "id": "wamid.h3", "timestamp": t3, "type": "image",
                  "image": { "mime_type": "image/jpeg", "caption": "Esse modelo" }, "history_context": { "status": "DELIVERED" } },
                { "from": "5511987654321", "timestamp": t3, "type": "text", "text": { "body": "sem id" } }
            ]}]
        }]
    });
    let (status, received) = host.post_payload(&field_change(WABA, "history", history)).await;
    assert_eq!(status, 200, "{received}");
    assert_eq!((received["accepted"].as_u64(), received["quarantined"].as_u64()), (Some(3), Some(1)), "{received}");
    host.settle().await;

    // Two days of silence apart: two conversations, as they happened.
    let contact = host.contact("+5511987654321").await.expect("the person of the thread");
    let conversations = host.conversations(contact["id"].as_str().unwrap()).await;
    let mut views = Vec::new();
    for c in conversations.iter().rev() {
        views.push(host.conversation(c["id"].as_str().unwrap()).await);
    }
    let messages: Vec<Value> = views.iter().flat_map(|v| v["messages"].as_array().unwrap().clone()).collect();
    let ids: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["wamid.h1", "wamid.h2", "wamid.h3"], "the whole chat, in order: {views:?}");
    assert_eq!(views.len(), 2, "{views:?}");
    assert_eq!(messages[0]["direction"], "inbound");
    assert_eq!(messages[1]["author"], json!({ "kind": "human", "staff": "whatsapp_business_app" }));
    assert_eq!((messages[1]["direction"].as_str(), messages[1]["status"].as_str()), (Some("outbound"), Some("read")));
    assert_eq!((messages[2]["kind"].as_str(), messages[2]["text"].as_str()), (Some("image"), Some("Esse modelo")));
    for view in &views {
        assert_eq!(view["decisions"], json!([]), "history is not routed: {view}");
        assert_eq!(view["conversation"]["needs_reply"], false, "nobody is asked to answer the past");
        let cv = view["conversation"]["id"].as_str().unwrap();
        assert_eq!(host.pending_follow_up(cv).await, Value::Null, "nor is a follow-up planned");
    }

    // Meta sends the media ids of the last 14 days' media later, in
    // another history webhook: the kept message gains its id, once.
    let media = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
        "history": [{ "metadata": { "phase": 0, "chunk_order": 2, "progress": 100 },
            "threads": [{ "id": "5511987654321", "messages": [
                { "from": "5511987654321", "id": "wamid.h3", "timestamp": t3, "type": "image",
                  "image": { "id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "HgGj1tvy5tRz7dm1fVHOYrcSyGNbKg7ubdwbhk1pLNg=",
                             "caption": "Esse modelo" }, "history_context": { "status": "DELIVERED" } }
            ]}] }]
    });
    let (_, received) = host.post_payload(&field_change(WABA, "history", media.clone())).await;
    assert_eq!(received["accepted"], 1, "{received}");
    host.settle().await;
    let (_, again) = host.post_payload(&field_change(WABA, "history", media)).await;
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(1)), "{again}");
    let newest = host.conversation(conversations[0]["id"].as_str().unwrap()).await;
    let image = &newest["messages"][0];
    assert_eq!((image["id"].as_str(), image["content"]["id"].as_str()), (Some("wamid.h3"), Some("1479537139650973")));
    assert_eq!(newest["messages"].as_array().unwrap().len(), 1, "completed, not added: {newest}");

    // The chunk's progress is an event of its own, its messages counted;
    // a business that declines to share says so the same way.
    let declined = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
        "history": [{ "errors": [{ "code": 2593109, "title": "History sync is turned off by the business",
            "message": "History sync is turned off by the business",
            "error_data": { "details": "The business has chosen not to share chat history." } }] }]
    });
    let (status, _) = host.post_payload(&field_change(WABA, "history", declined)).await;
    assert_eq!(status, 200);
    let (_, events) = host.get("/v1/webhook-events?field=history").await;
    let events = events["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 3, "the redelivered chunk once: {events:?}");
    let chunks: Vec<&Value> = events.iter().map(|e| &e["value"]["history"][0]).collect();
    let progress = chunks.iter().find(|c| c["metadata"]["progress"] == 55).expect("the chunk's progress");
    assert_eq!((progress["threads"].as_u64(), progress["messages"].as_u64()), (Some(1), Some(4)));
    assert!(chunks.iter().any(|c| c["errors"][0]["code"] == 2593109), "{events:?}");
    let (_, kept) = host.get("/v1/quarantine").await;
    assert_eq!(kept["items"][0]["field"], "history", "{kept}");
}

/// Meta's `calls` webhook (Cloud API calling): a user's call is logged in
/// their conversation when it connects and when it ends, and not routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_call_is_logged_on_the_conversation_and_not_routed() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    host.post_payload(&post_messages(json!([text("wamid.k1", "Posso ligar?", now)]))).await;
    host.settle().await;
    let before = host.conversation_of("+5511987654321").await;
    let call = |event: &str, extra: Value| {
        let mut c = json!({ "id": "wacid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjM", "from": "5511987654321", "to": "15550783881",
            "event": event, "timestamp": now.to_string(), "direction": "USER_INITIATED" });
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let mut change = change(json!([]), json!([]));
    change["field"] = json!("calls");
    let value = change["value"].as_object_mut().unwrap();
    value.remove("messages");
    value.remove("statuses");
    value.insert(
        "calls".into(),
        json!([call("connect", json!({})), call("terminate", json!({ "status": "COMPLETED", "duration": 33 }))]),
    );
    let (status, received) = host.post_payload(&body(vec![change])).await;
    assert_eq!((status, received["accepted"].as_u64()), (200, Some(2)), "{received}");
    host.settle().await;

    let view = host.conversation_of("+5511987654321").await;
    let calls: Vec<&Value> = view["messages"].as_array().unwrap().iter().filter(|m| m["kind"] == "call").collect();
    assert_eq!(calls.len(), 2, "{view}");
    let ended = calls.iter().find(|c| c["content"]["event"] == "terminate").unwrap();
    let text = ended["text"].as_str().unwrap();
    assert!(text.contains("completed") && text.contains("33 s"), "{text}");
    assert_eq!(view["decisions"], before["decisions"], "a call is not routed");
}

/// Meta's `user_preferences` reference: a user who tells WhatsApp to stop
/// marketing messages gets no template its sender marks `marketing`
/// until they resume; other templates still go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketing_stop_holds_back_marketing_templates_until_resumed() {
    let host = TestHost::start().await;
    let now = host.now_secs();
    host.post_payload(&post_messages(json!([text("wamid.u1", "Oi", now)]))).await;
    host.settle().await;
    let preference = |value: &str, at: i64| {
        let mut c = change(json!([]), json!([]));
        c["field"] = json!("user_preferences");
        let v = c["value"].as_object_mut().unwrap();
        v.remove("messages");
        v.remove("statuses");
        v.insert(
            "user_preferences".into(),
            json!([{ "wa_id": "5511987654321", "detail": format!("User requested to {value} marketing messages"),
            "category": "marketing_messages", "value": value, "timestamp": at }]),
        );
        body(vec![c])
    };
    let (status, received) = host.post_payload(&preference("stop", now)).await;
    assert_eq!((status, received["accepted"].as_u64()), (200, Some(1)), "{received}");
    host.settle().await;
    let ana = host.contact("+5511987654321").await.unwrap();
    assert_eq!(ana["marketing_stopped_at"], json!(now * 1000), "{ana}");

    let view = host.conversation_of("+5511987654321").await;
    let (cv, contact) = (view["conversation"]["id"].as_str().unwrap(), ana["id"].as_str().unwrap());
    plant_template(&host, cv, contact, "fu_promo", Some("marketing"));
    let suppressed = first_suppression(&host, cv).await;
    assert!(suppressed["reason"].as_str().unwrap().contains("stopped marketing"), "{suppressed}");
    plant_template(&host, cv, contact, "fu_receipt", Some("utility"));
    follow_up_sent(&host, cv, "msg_fu_receipt").await;

    host.post_payload(&preference("resume", now + 1)).await;
    host.settle().await;
    assert_eq!(host.contact("+5511987654321").await.unwrap()["marketing_stopped_at"], Value::Null);
    let (_, audit) = host.get("/v1/audit").await;
    let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"marketing_stopped") && actions.contains(&"marketing_resumed"), "{actions:?}");
}

/// The reason a router gave for the newest decision in `view`, as JSON.
fn last_reason(view: &Value) -> Value {
    let decisions = view["decisions"].as_array().unwrap();
    let last = decisions.last().unwrap_or_else(|| panic!("no decision: {view}"));
    serde_json::from_str(last["decision"]["reason"].as_str().unwrap()).unwrap_or_else(|e| panic!("{e}: {last}"))
}

/// WIT 0.2.0 beside the frozen 0.1.0: a router built against 0.2.0 sees a
/// contact as WhatsApp knows it in 2026 (no phone, a BSUID and a username)
/// and a message's ad referral and forwarded flag; the category of the
/// templates it answers with reaches the host's rules. A 0.1.0 router on
/// the same host keeps working as it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_built_against_wit_0_2_0_sees_bsuids_referrals_and_forwarding_beside_0_1_0() {
    let meta = FakeMeta::start().await;
    let host = TestHost::sending_to(&meta).await;
    let now = host.now_secs();
    let (status, v1) = host.upload(API_KEY, "router", guest("echo_router"), true).await;
    assert!(status == 201 && v1.to_string().contains(r#""wit_version":"0.1.0""#), "{status} {v1}");
    host.post_payload(&bsuid_message("wamid.w1", "Oi", now, None, ANA_BSUID)).await;
    host.settle().await;
    let view = host.conversation_of(ANA_BSUID).await;
    assert_eq!(view["decisions"][0]["outcome"], "decided", "the 0.1.0 router decides for a BSUID-only contact: {view}");
    assert_eq!(last_reason(&view)["contact_name"], "Ana Souza");
    assert_eq!(meta.sent().len(), 1, "and its reply goes");

    let (status, v2) = host.upload(API_KEY, "router", guest("v2_router"), true).await;
    assert!(status == 201 && v2.to_string().contains(r#""wit_version":"0.2.0""#), "{status} {v2}");
    let mut from_ad = bsuid_message("wamid.w2", "Vi o anúncio", now, None, ANA_BSUID);
    let message = &mut from_ad["entry"][0]["changes"][0]["value"]["messages"][0];
    message["context"] = json!({ "forwarded": true, "frequently_forwarded": true });
    message["referral"] = json!({ "source_url": "https://fb.me/3cr4Wqqkv", "source_id": "120212345678900123",
        "source_type": "ad", "headline": "Frete grátis hoje", "body": "Só hoje", "media_type": "image",
        "image_url": "https://scontent.xx.fbcdn.net/ad.jpg", "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMXP-mhLjmMjdJPTAS_5DIGNy5jD7U0TA" });
    host.post_payload(&from_ad).await;
    host.settle().await;
    let view = host.conversation_of(ANA_BSUID).await;
    let seen = last_reason(&view);
    assert_eq!((seen["phone"].as_str(), seen["user_id"].as_str()), (Some(""), Some(ANA_BSUID)), "{seen}");
    assert_eq!(seen["username"], "@ana.souza");
    assert!(seen["kind"].as_str().unwrap().ends_with("Text"), "{seen}");
    assert!(seen["forwarded"].as_str().unwrap().ends_with("FrequentlyForwarded"), "{seen}");
    assert_eq!(seen["referral_headline"], "Frete grátis hoje");
    assert!(seen["ctwa_clid"].as_str().unwrap().starts_with("ARAkLkA8"), "{seen}");
    assert_eq!((seen["edited"].as_bool(), seen["revoked"].as_bool()), (Some(false), Some(false)));
    assert_eq!(seen["history"], 2, "the earlier exchange: {seen}");
    assert_eq!(meta.sent().len(), 2, "the 0.2.0 router's reply went too");

    // Its authentication template to a contact without a phone is refused
    // by the host (as Meta would, error 131062), and says why.
    host.post_payload(&bsuid_message("wamid.w3", "code", now, None, ANA_BSUID)).await;
    host.settle().await;
    let view = host.conversation_of(ANA_BSUID).await;
    let actions = view["decisions"].as_array().unwrap().last().unwrap()["actions"].to_string();
    assert!(actions.contains("authentication template needs a phone number"), "{actions}");
    assert_eq!(meta.sent().len(), 2, "nothing went to Meta");
}
