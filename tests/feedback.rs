//! Feedback end to end: closed exchanges become signals on the contact,
//! kept with their history, and the same message is decided differently
//! once a contact's history has built up.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;
use switchboard::clock::{HOUR, MINUTE};

async fn say(host: &TestHost, from: &str, id: &str, text: &str) {
    host.post_payload(&text_message(from, "X", id, text, host.now_secs())).await;
    host.settle().await;
}

async fn staff_reply(host: &TestHost, from: &str, text: &str) {
    let cv = host.conversation_of(&format!("+{from}")).await["conversation"]["id"].as_str().unwrap().to_string();
    let (status, body) =
        host.staff("marta", &format!("/v1/conversations/{cv}/messages"), Some(json!({ "text": text }))).await;
    assert_eq!(status, 202, "{body}");
    host.settle().await;
}

async fn signals(host: &TestHost, from: &str) -> Value {
    let contact = host.contact(&format!("+{from}")).await.unwrap();
    host.get(&format!("/v1/contacts/{}/signals", contact["id"].as_str().unwrap())).await.1
}

const LONG: &str =
    "Estamos avaliando o plano anual para a equipe inteira, com integração ao nosso CRM e suporte dedicado.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_closes_the_exchange_and_the_feedback_plugin_updates_the_signals() {
    let host = TestHost::start().await;
    let from = "5511987650901";
    say(&host, from, "wamid.FB1", "Quanto custa?").await;
    staff_reply(&host, from, "Qual plano te interessa?").await;
    host.clock.advance(5 * MINUTE);
    say(&host, from, "wamid.FB2", "O anual").await;

    let s = signals(&host, from).await;
    let r = s["signals"]["responsiveness"]["value"].as_f64().unwrap();
    assert!((r - 1.0 / (1.0 + 5.0 / 60.0)).abs() < 0.01, "answered in 5 minutes: {r}");
    assert_eq!(s["signals"]["clarity"]["value"], 0.0, "we had to ask what they meant");
    assert_eq!(s["signals"]["preferred-hour"]["value"], 14.0, "they write at 14:00 São Paulo time");
    assert!(s["signals"]["engagement"]["value"].as_f64().unwrap() > 0.0);
    let history = s["history"].as_array().unwrap();
    assert!(history.iter().all(|h| h["closed_by"] == "contact_replied"));
    assert_eq!(history.iter().filter(|h| h["name"] == "responsiveness").count(), 1);

    // A resolution closes the exchange too.
    let cv = host.conversation_of(&format!("+{from}")).await["conversation"]["id"].as_str().unwrap().to_string();
    staff_reply(&host, from, "Perfeito, enviei a proposta.").await;
    host.staff("marta", &format!("/v1/conversations/{cv}/resolve"), None).await;
    host.settle().await;
    let s = signals(&host, from).await;
    assert!(s["history"].as_array().unwrap().iter().any(|h| h["closed_by"] == "resolved"), "{s}");
    let (_, audit) = host.get(&format!("/v1/conversations/{cv}/audit")).await;
    assert!(audit["entries"].as_array().unwrap().iter().any(|e| e["action"] == "signals_updated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engaged_buyer_on_a_late_stage_deal_goes_to_a_human_faster() {
    let host = TestHost::start().await;
    let (fresh, engaged) = ("5511987650911", "5511987650912");
    for phone in [fresh, engaged] {
        let (_, c) = host.post_json("/v1/contacts", json!({ "phone": format!("+{phone}") })).await;
        host.post_json(
            "/v1/deals",
            json!({ "contact_id": c["id"], "name": "Anual", "stage": "negotiation", "owner": "marta" }),
        )
        .await;
    }
    // A contact with no history.
    say(&host, fresh, "wamid.E0", "Podemos fechar hoje?").await;
    // A contact who writes a lot, at length, and answers within minutes.
    for (i, text) in [LONG, LONG, LONG].iter().enumerate() {
        say(&host, engaged, &format!("wamid.E{}", i + 1), text).await;
    }
    staff_reply(&host, engaged, "Ótimo! Preparei a proposta, posso enviar?").await;
    host.clock.advance(3 * MINUTE);
    say(&host, engaged, "wamid.E9", "Podemos fechar hoje?").await;

    let last = |v: Value| v["decisions"].as_array().unwrap().last().cloned().unwrap();
    let d_fresh = last(host.conversation_of(&format!("+{fresh}")).await);
    let d_engaged = last(host.conversation_of(&format!("+{engaged}")).await);
    assert_eq!(
        (d_fresh["decision"]["priority"].as_str(), d_fresh["decision"]["respond_within_ms"].as_u64()),
        (Some("high"), Some(30 * 60_000))
    );
    assert_eq!(
        (d_engaged["decision"]["priority"].as_str(), d_engaged["decision"]["respond_within_ms"].as_u64()),
        (Some("urgent"), Some(10 * 60_000)),
        "{d_engaged}"
    );
    assert!(d_engaged["decision"]["reason"].as_str().unwrap().contains("engaged buyer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_replier_gets_wider_follow_up_spacing_and_unanswered_follow_ups_count_against_them() {
    let host = TestHost::start().await;
    let (quick, slow) = ("5511987650921", "5511987650922");
    // While the clock jumps ahead, no follow-up may be due: the contacts'
    // reply times are measured from our replies, not from a follow-up the
    // timer scanner might send first.
    let follow_up_config = |max: &str| json!({ "config": { "max-attempts": max } });
    host.call(Method::PUT, "/v1/plugins/follow-up/config", API_KEY, Some(follow_up_config("0"))).await;
    for (from, wait) in [(quick, 5 * MINUTE), (slow, 20 * HOUR)] {
        say(&host, from, &format!("wamid.S{from}1"), "Quanto custa?").await;
        staff_reply(&host, from, "R$ 120 por mês.").await;
        host.clock.advance(wait);
        say(&host, from, &format!("wamid.S{from}2"), "E o anual?").await;
    }
    host.call(Method::PUT, "/v1/plugins/follow-up/config", API_KEY, Some(follow_up_config("3"))).await;
    for from in [quick, slow] {
        staff_reply(&host, from, "R$ 1.200.").await;
    }
    let spacing = |v: Value, now: i64| v["follow_up"]["at"].as_i64().unwrap() - now;
    let now = host.clock_now();
    let cv = |from: &str| {
        let h = &host;
        let from = from.to_string();
        async move { h.conversation_of(&format!("+{from}")).await["conversation"]["id"].as_str().unwrap().to_string() }
    };
    let quick_wait = spacing(host.pending_follow_up(&cv(quick).await).await, now);
    let slow_wait = spacing(host.pending_follow_up(&cv(slow).await).await, now);
    let slow_r = signals(&host, slow).await["signals"]["responsiveness"]["value"].as_f64().unwrap();
    assert!(slow_r < 0.1, "{slow_r}");
    assert!(slow_wait > 10 * quick_wait, "slow: {} h, quick: {} min", slow_wait / HOUR, quick_wait / MINUTE);

    // One unanswered follow-up is the end (max-attempts 1): the exchange
    // closes unanswered and responsiveness drops.
    host.call(Method::PUT, "/v1/plugins/follow-up/config", API_KEY, Some(json!({ "config": { "max-attempts": "1" } })))
        .await;
    let quick_cv = cv(quick).await;
    let before = signals(&host, quick).await["signals"]["responsiveness"]["value"].as_f64().unwrap();
    host.clock.advance(quick_wait + MINUTE);
    wait_for("the follow-up and the closed exchange", || async {
        let s = signals(&host, quick).await;
        s["history"].as_array().unwrap().iter().any(|h| h["closed_by"] == "follow_up_unanswered").then_some(())
    })
    .await;
    let after = signals(&host, quick).await["signals"]["responsiveness"]["value"].as_f64().unwrap();
    assert!(after < before, "{before} → {after}");
    assert_eq!(host.pending_follow_up(&quick_cv).await, Value::Null);
}
