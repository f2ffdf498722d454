//! Follow-ups end to end, with a moved clock: when (and whether) each one
//! goes, under the adaptive reference plugin and the host's rules.

mod support;

use serde_json::{Value, json};
use support::*;
use switchboard::clock::{HOUR, MINUTE};

const ANA: &str = "5511987654321";

async fn say(host: &TestHost, id: &str, text: &str) {
    host.post_payload(&text_message(ANA, "Ana", id, text, host.now_secs())).await;
    host.settle().await;
}

async fn staff_reply(host: &TestHost, conversation: &str, text: &str) {
    let (status, body) =
        host.staff("marta", &format!("/v1/conversations/{conversation}/messages"), Some(json!({ "text": text }))).await;
    assert_eq!(status, 202, "{body}");
    host.settle().await;
}

fn follow_ups(view: &Value) -> Vec<Value> {
    view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"].as_str().unwrap().starts_with("msg_fu_"))
        .cloned()
        .collect()
}

/// Waits (real time) until the conversation has `n` follow-up messages.
async fn wait_for_follow_ups(host: &TestHost, conversation: &str, n: usize) -> Value {
    wait_for("follow-ups to fire", || async {
        let view = host.conversation(conversation).await;
        (follow_ups(&view).len() >= n).then_some(view)
    })
    .await
}

/// A contact who answered our first reply in 30 minutes goes quiet after
/// our second: the follow-up waits twice their usual time, fires once, and
/// the next one backs off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_timed_from_the_contacts_pattern_fire_once_and_back_off() {
    let host = TestHost::start().await;
    say(&host, "wamid.F1", "Oi, qual o preço do plano anual?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null, "the contact wrote last: nothing to follow up");
    staff_reply(&host, &cv, "O anual custa R$ 1.200. Quer a proposta?").await;
    let first = host.pending_follow_up(&cv).await;
    assert!(
        first["follow_up"]["at"].as_i64().unwrap() - host.clock_now() >= 4 * HOUR - MINUTE,
        "no history yet: the initial 4 h, {first}"
    );

    host.clock.advance(30 * MINUTE);
    say(&host, "wamid.F2", "Hmm, e o mensal?").await;
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null, "a reply cancels what was pending");
    host.clock.advance(MINUTE);
    staff_reply(&host, &cv, "O mensal custa R$ 120.").await;
    let pending = host.pending_follow_up(&cv).await;
    let wait = pending["follow_up"]["at"].as_i64().unwrap() - host.clock_now();
    // Their answer also taught the feedback plugin how responsive they are
    // (1 = at once); a less responsive contact gets a wider spacing.
    let contact = host.contact(&format!("+{ANA}")).await.unwrap();
    let responsiveness = contact["signals"]["responsiveness"]["value"].as_f64().unwrap();
    let basis = (60.0 * MINUTE as f64 * (1.0 + (1.0 - responsiveness) * 2.0)) as i64;
    // Webhook timestamps are whole seconds and real time runs on under the
    // moved clock, so the learned 30 minutes is off by a second or so —
    // which the ×3.3 of the formula turns into a few seconds either way.
    assert!(
        (basis - 2 * MINUTE..=basis + MINUTE).contains(&wait),
        "2 × their 30-minute reply time, widened for responsiveness {responsiveness:.2}: {} min ({pending})",
        wait / MINUTE
    );
    assert_eq!(pending["follow_up"]["action"]["type"], "send_text", "the window will still be open");
    assert_eq!(pending["follow_up"]["attempt"], 1);

    // Not before it is due…
    host.clock.advance(wait - 5 * MINUTE);
    host.fire_due_timers().await;
    assert_eq!(follow_ups(&host.conversation(&cv).await).len(), 0);
    // …and once when it is.
    host.clock.advance(6 * MINUTE);
    let view = wait_for_follow_ups(&host, &cv, 1).await;
    host.fire_due_timers().await;
    let view2 = host.conversation(&cv).await;
    let sent = follow_ups(&view2);
    assert_eq!(sent.len(), 1, "fires once");
    assert_eq!(sent[0]["author"]["kind"], "bot");
    assert_eq!(sent[0]["status"], "dry_run");
    assert_eq!(view["conversation"]["unanswered_follow_ups"], 1);
    // The next one backs off (×2) from the same basis.
    let next = host.pending_follow_up(&cv).await;
    assert_eq!(next["follow_up"]["attempt"], 2);
    let next_wait = next["follow_up"]["at"].as_i64().unwrap() - host.clock_now();
    assert!(
        (2 * basis - 4 * MINUTE..=2 * basis + MINUTE).contains(&next_wait),
        "backed off ×2 from {} min: {} min ({next})",
        basis / MINUTE,
        next_wait / MINUTE
    );

    let (_, audit) = host.get(&format!("/v1/conversations/{cv}/audit")).await;
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains(&"follow_up_scheduled")
            && actions.contains(&"follow_up_sent")
            && actions.contains(&"human_reply"),
        "{actions:?}"
    );
    print_timeline(&audit);
}

fn print_timeline(audit: &Value) {
    eprintln!("timeline:");
    for e in audit["entries"].as_array().unwrap() {
        eprintln!(
            "  {} {:<22} {:<40} {}",
            e["at"],
            e["action"].as_str().unwrap(),
            e["actor"].to_string(),
            e["reason"].as_str().unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_signals_end_the_follow_ups_and_hesitation_does_not() {
    let host = TestHost::start().await;
    say(&host, "wamid.C1", "Quanto custa?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    staff_reply(&host, &cv, "R$ 120 por mês.").await;
    assert_ne!(host.pending_follow_up(&cv).await, Value::Null);

    say(&host, "wamid.C2", "Vou pensar e te aviso").await;
    staff_reply(&host, &cv, "Claro, fico à disposição!").await;
    assert_ne!(host.pending_follow_up(&cv).await, Value::Null, "hesitation is not completion");

    say(&host, "wamid.C3", "Obrigado, já comprei!").await;
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null);
    staff_reply(&host, &cv, "Que ótimo, obrigada!").await;
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null, "the contact closed the exchange");
    let (_, audit) = host.get(&format!("/v1/conversations/{cv}/audit")).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "follow_up_cancelled" && e["reason"].as_str().unwrap().contains("closing signal")),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_are_tenant_tunable_and_it_stops_after_max_attempts() {
    let host = TestHost::start().await;
    let (status, _) = host
        .call(
            reqwest::Method::PUT,
            "/v1/plugins/follow-up/config",
            API_KEY,
            Some(json!({ "config": { "max-attempts": "1", "initial-spacing": "30" } })),
        )
        .await;
    assert_eq!(status, 200);
    say(&host, "wamid.M1", "Quanto custa?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    staff_reply(&host, &cv, "R$ 120.").await;
    let pending = host.pending_follow_up(&cv).await;
    assert!(
        pending["follow_up"]["at"].as_i64().unwrap() - host.clock_now() <= 30 * MINUTE,
        "initial-spacing from config: {pending}"
    );
    host.clock.advance(31 * MINUTE);
    wait_for_follow_ups(&host, &cv, 1).await;
    host.settle().await;
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null, "max-attempts 1: stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_conversation_gets_nothing_automated_and_resumes() {
    let host = TestHost::start().await;
    say(&host, "wamid.P1", "Quanto custa?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    let (status, _) = host.staff("marta", &format!("/v1/conversations/{cv}/pause"), None).await;
    assert_eq!(status, 200);
    say(&host, "wamid.P2", "Oi, bom dia!").await;
    let view = host.conversation(&cv).await;
    assert_eq!(
        view["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "outbound").count(),
        0,
        "no bot reply"
    );
    assert!(view["decisions"][1]["actions"].to_string().contains("paused"), "{}", view["decisions"][1]);
    assert_eq!(view["conversation"]["needs_reply"], true, "a person must answer instead");
    staff_reply(&host, &cv, "Bom dia!").await;
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null, "no follow-up while paused");

    host.staff("marta", &format!("/v1/conversations/{cv}/resume"), None).await;
    say(&host, "wamid.P3", "Oi!").await;
    let view = host.conversation(&cv).await;
    assert_eq!(
        view["messages"].as_array().unwrap().iter().filter(|m| m["author"]["kind"] == "bot").count(),
        1,
        "the bot answers again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_during_a_pending_follow_up_means_it_never_fires() {
    let host = TestHost::start().await;
    say(&host, "wamid.T1", "Quanto custa?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    staff_reply(&host, &cv, "R$ 120.").await;
    assert_ne!(host.pending_follow_up(&cv).await, Value::Null);
    let (status, c) = host.staff("joao", &format!("/v1/conversations/{cv}/takeover"), None).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["takeover"]["staff"], "joao");
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null);
    host.clock.advance(2 * 24 * HOUR);
    host.fire_due_timers().await;
    assert_eq!(follow_ups(&host.conversation(&cv).await).len(), 0, "never fires");
    // While taken over, the router's bot reply is suppressed too.
    say(&host, "wamid.T2", "Oi, bom dia!").await;
    let view = host.conversation(&cv).await;
    assert_eq!(view["messages"].as_array().unwrap().iter().filter(|m| m["author"]["kind"] == "bot").count(), 0);
    assert_eq!(view["conversation"]["assignee"], json!({ "kind": "agent", "id": "joao" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_timers_survive_a_restart_and_fire_once() {
    let mut host = TestHost::start().await;
    say(&host, "wamid.R1", "Quanto custa?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    staff_reply(&host, &cv, "R$ 120.").await;
    let pending = host.pending_follow_up(&cv).await;
    host.restart().await;
    assert_eq!(host.pending_follow_up(&cv).await, pending, "kept on disk");
    host.clock.advance(5 * HOUR);
    wait_for_follow_ups(&host, &cv, 1).await;
    host.restart().await;
    host.fire_due_timers().await;
    assert_eq!(follow_ups(&host.conversation(&cv).await).len(), 1, "fired exactly once across restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opting_out_stops_everything_automated_until_opting_back_in() {
    let host = TestHost::start().await;
    say(&host, "wamid.O1", "Quanto custa?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    staff_reply(&host, &cv, "R$ 120.").await;
    say(&host, "wamid.O2", "PARAR").await;
    let contact = host.contact(&format!("+{ANA}")).await.unwrap();
    assert_eq!(contact["opted_out"], true);
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null);
    say(&host, "wamid.O3", "oi, bom dia").await;
    staff_reply(&host, &cv, "Olá!").await;
    let view = host.conversation(&cv).await;
    assert_eq!(
        view["messages"].as_array().unwrap().iter().filter(|m| m["author"]["kind"] == "bot").count(),
        0,
        "no bot reply"
    );
    assert_eq!(host.pending_follow_up(&cv).await, Value::Null, "no follow-up");

    say(&host, "wamid.O4", "Start").await;
    assert_eq!(host.contact(&format!("+{ANA}")).await.unwrap()["opted_out"], false);
    let (_, audit) = host.get(&format!("/v1/conversations/{cv}/audit")).await;
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"opted_out") && actions.contains(&"opted_in"), "{actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_in_the_contacts_time_defer_and_a_closed_window_allows_only_templates() {
    let host = TestHost::start().await;
    say(&host, "wamid.Q1", "Quanto custa?").await;
    let cv = host.conversation_of(&format!("+{ANA}")).await["conversation"]["id"].as_str().unwrap().to_string();
    let contact = host.contact(&format!("+{ANA}")).await.unwrap();
    let timers = &host.server().state.stages().timers;
    let plant = |id: &str, at: i64, action: Value| switchboard::followup::Timer {
        id: id.into(),
        tenant: "demo".into(),
        conversation_id: cv.clone(),
        contact_id: contact["id"].as_str().unwrap().into(),
        wa_id: ANA.into(),
        follow_up: serde_json::from_value(json!({ "at": at, "action": action, "attempt": 1 })).unwrap(),
        scheduled_at: host.clock_now(),
        reason: "test".into(),
        planned_by: "test".into(),
    };
    // Due at 23:00 in São Paulo (the contact's +55 number): waits until 08:00.
    let eleven_pm = MONDAY_AFTERNOON_MS + 9 * HOUR;
    let mut batch = switchboard::store::Batch::new();
    timers.schedule(&mut batch, &plant("fu_quiet", eleven_pm, json!({ "type": "send_template", "template": { "name": "follow_up", "language": "pt_BR", "parameters": [] } }))).unwrap();
    host.server().state.stages().store.commit(batch).unwrap();
    host.clock.set(eleven_pm + MINUTE);
    wait_for("the deferral", || async {
        let p = host.pending_follow_up(&cv).await;
        (p["id"] == "fu_quiet" && p["follow_up"]["at"].as_i64() != Some(eleven_pm)).then_some(())
    })
    .await;
    let deferred = host.pending_follow_up(&cv).await["follow_up"]["at"].as_i64().unwrap();
    assert_eq!(deferred, MONDAY_AFTERNOON_MS + 18 * HOUR, "08:00 the next morning in São Paulo");
    host.clock.set(deferred + MINUTE);
    let view = wait_for_follow_ups(&host, &cv, 1).await;
    assert_eq!(follow_ups(&view)[0]["kind"], "template", "outside the window a template may go");
    host.settle().await; // the planner has had its say about the sent follow-up

    // A text planned for after the window closed is suppressed, and said so.
    let mut batch = switchboard::store::Batch::new();
    let late = deferred + 2 * 24 * HOUR;
    timers.schedule(&mut batch, &plant("fu_text", late, json!({ "type": "send_text", "body": "Oi?" }))).unwrap();
    host.server().state.stages().store.commit(batch).unwrap();
    host.clock.set(late + MINUTE);
    wait_for("the suppression", || async {
        let (_, audit) = host.get(&format!("/v1/conversations/{cv}/audit")).await;
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "follow_up_suppressed").cloned()
    })
    .await;
    let (_, audit) = host.get(&format!("/v1/conversations/{cv}/audit")).await;
    let suppressed =
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "follow_up_suppressed").unwrap().clone();
    assert!(suppressed["reason"].as_str().unwrap().contains("only a template"), "{suppressed}");
    assert_eq!(follow_ups(&host.conversation(&cv).await).len(), 1);
}
