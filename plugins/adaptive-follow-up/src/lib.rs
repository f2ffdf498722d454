//! Switchboard's reference follow-up planner. No fixed timers: it times a
//! follow-up from the contact's own pattern and knows when to stop.
//!
//! - **When.** After our message goes out (bot, staff or a follow-up), the
//!   wait is `spacing-factor` × how long *this contact* usually takes to
//!   answer (their median reply latency), clamped to
//!   [`min-spacing`, `max-spacing`]; with no history yet, `initial-spacing`.
//!   A `responsiveness` signal (0…1, from the feedback plugin) widens the
//!   wait for slow repliers and narrows it for quick ones. The time is then
//!   moved to within an hour of when the contact usually writes (once they
//!   have written three times), and never into `quiet-hours`.
//! - **Backing off.** Each unanswered follow-up multiplies the wait by
//!   `backoff`; after `max-attempts` unanswered follow-ups it stops.
//! - **Completion, not hesitation.** "thanks", "done", "ya lo compré", "já
//!   comprei", a 👍 reaction, or a resolved conversation end the follow-ups.
//!   "let me think", "vou pensar" keep them, with a longer wait.
//! - **What.** Text while the 24-hour window will still be open when it
//!   fires; otherwise the approved `template` (the host enforces this too).
//! - A contact who writes cancels what is pending: it is our turn.
//!
//! Settings (tenant `config` of the follow-up world; minutes unless noted):
//!
//! | key | default |
//! |---|---|
//! | `max-attempts` | `3` |
//! | `spacing-factor` | `2.0` |
//! | `min-spacing` / `max-spacing` | `60` / `2880` |
//! | `initial-spacing` | `240` |
//! | `backoff` | `2.0` |
//! | `quiet-hours` | `21:00-08:00` (tenant local time; the host checks the contact's) |
//! | `text` | `Hi! Just checking in — can I help with anything else?` |
//! | `template` / `template-language` | `follow_up` / `en` |
//! | `closing-words` | see [`CLOSING`] |
//! | `hesitation-words` | see [`HESITATION`] |

use switchboard_plugin::follow_up::*;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Messages that close the exchange (English, Portuguese, Spanish).
pub const CLOSING: &str = "thanks,thank you,thx,done,all set,bought it,obrigado,obrigada,valeu,já comprei,ja comprei,comprei,resolvido,gracias,ya lo compré,ya lo compre,listo,perfecto,perfeito,👍";
/// Messages that postpone rather than close.
pub const HESITATION: &str = "let me think,i'll think,i will think,maybe later,later,vou pensar,vou ver,talvez,depois,lo pienso,voy a pensar,quizás,quizas,luego";

struct Adaptive;

impl FollowUp for Adaptive {
    fn plan_next(input: Input) -> Result<Plan, String> {
        let ctx = &input.context;
        if ctx.conversation.resolved {
            return Ok(Plan::cancel("the conversation is resolved: done"));
        }
        match &input.trigger {
            Trigger::Inbound(m) => {
                if is_closing(m) {
                    return Ok(Plan::cancel(format!(
                        "closing signal {:?}: the exchange is complete",
                        m.text.clone().unwrap_or_default()
                    )));
                }
                Ok(Plan::cancel("the contact wrote: our turn to answer"))
            }
            Trigger::Outbound(_) => schedule(&input),
            Trigger::TimerFired(_) | Trigger::Routed(_) | Trigger::StatusChanged(_) => {
                Ok(Plan::nothing("nothing changes the plan"))
            }
        }
    }
}

fn words(key: &str, default: &str) -> Vec<String> {
    config(key)
        .unwrap_or_else(|| default.into())
        .split(',')
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn contains_any(text: &str, list: &[String]) -> bool {
    let text = text.to_lowercase();
    list.iter().any(|w| {
        text.match_indices(w.as_str()).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + w.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

fn is_closing(m: &Message) -> bool {
    let text = m.text.clone().unwrap_or_default();
    if m.kind == MessageKind::Reaction {
        return text.contains('👍') || text.contains('🙏') || text.contains('❤');
    }
    contains_any(&text, &words("closing-words", CLOSING))
        && !contains_any(&text, &words("hesitation-words", HESITATION))
        && !text.contains('?')
}

fn schedule(input: &Input) -> Result<Plan, String> {
    let ctx = &input.context;
    let max_attempts: u32 = config_or("max-attempts", 3);
    if input.unanswered_attempts >= max_attempts {
        return Ok(Plan::cancel(format!("{max_attempts} follow-ups went unanswered: stopping")));
    }
    // The contact's last word decides whether we are done or waiting.
    let last_inbound = ctx.conversation.history.iter().rev().find(|m| m.direction == Direction::Inbound);
    let mut hesitant = false;
    if let Some(m) = last_inbound {
        if is_closing(m) {
            return Ok(Plan::nothing("the contact closed the exchange: no follow-up"));
        }
        hesitant = contains_any(&m.lowercase_text(), &words("hesitation-words", HESITATION));
    }
    let (wait, basis) = spacing(ctx, input.unanswered_attempts, hesitant);
    let at = place(ctx, ctx.now + wait);
    let attempt = input.unanswered_attempts + 1;
    let window_open_then = ctx.conversation.window.closes_at.is_some_and(|c| at < c);
    let action = if window_open_then {
        Action::SendText(
            config("text").unwrap_or_else(|| "Hi! Just checking in — can I help with anything else?".into()),
        )
    } else {
        Action::SendTemplate(Template {
            name: config("template").unwrap_or_else(|| "follow_up".into()),
            language: config("template-language").unwrap_or_else(|| "en".into()),
            parameters: vec![],
        })
    };
    let reason = format!("follow-up {attempt}/{max_attempts} in {} min ({basis})", (at - ctx.now) / MINUTE);
    log(LogLevel::Debug, &reason);
    Ok(Plan::schedule(at, action, attempt, reason))
}

/// How long to wait, and why.
fn spacing(ctx: &Context, unanswered: u32, hesitant: bool) -> (i64, String) {
    let factor: f64 = config_or("spacing-factor", 2.0);
    let min = config_or::<i64>("min-spacing", 60) * MINUTE;
    let max = config_or::<i64>("max-spacing", 2880) * MINUTE;
    let (mut base, mut basis) = match ctx.stats.median_reply_latency {
        Some(median) => {
            let w = (median as f64 * factor) as i64;
            (w.clamp(min, max), format!("{factor}× their usual reply time of {} min", median as i64 / MINUTE))
        }
        None => (config_or::<i64>("initial-spacing", 240) * MINUTE, "no reply history yet".to_string()),
    };
    // A learned responsiveness (1 = answers at once, 0 = rarely) stretches
    // the wait for slow repliers.
    if let Some(r) = ctx.contact.signal("responsiveness") {
        let stretch = 1.0 + (1.0 - r.clamp(0.0, 1.0)) * 2.0;
        base = ((base as f64) * stretch).clamp(min as f64, (max * 2) as f64) as i64;
        basis.push_str(&format!(", ×{stretch:.1} for responsiveness {r:.2}"));
    }
    if hesitant {
        base = base * 3 / 2;
        basis.push_str(", longer: they wanted time to think");
    }
    let backoff: f64 = config_or("backoff", 2.0);
    let wait = (base as f64 * backoff.powi(unanswered as i32)).min((7 * DAY) as f64) as i64;
    if unanswered > 0 {
        basis.push_str(&format!(", backed off ×{:.0} after {unanswered} unanswered", backoff.powi(unanswered as i32)));
    }
    (wait, basis)
}

/// Moves `at` to an hour the contact has been active in, and out of quiet
/// hours (both in the tenant's local time).
fn place(ctx: &Context, at: i64) -> i64 {
    let offset = i64::from(ctx.local_time.utc_offset_minutes) * MINUTE;
    let hour_of = |t: i64| ((t + offset).rem_euclid(DAY) / HOUR) as u8;
    let mut active: Vec<u8> =
        ctx.conversation.history.iter().filter(|m| m.direction == Direction::Inbound).map(|m| hour_of(m.at)).collect();
    // Too few messages say nothing about a pattern.
    if active.len() < 3 {
        active.clear();
    }
    let near_active = |h: u8| {
        active.iter().any(|a| {
            (i16::from(*a) - i16::from(h)).rem_euclid(24) <= 1 || (i16::from(h) - i16::from(*a)).rem_euclid(24) <= 1
        })
    };
    let quiet = config("quiet-hours").unwrap_or_else(|| "21:00-08:00".into());
    let (q_start, q_end) = parse_quiet(&quiet).unwrap_or((21, 8));
    let is_quiet = |h: u8| if q_start <= q_end { h >= q_start && h < q_end } else { h >= q_start || h < q_end };
    let mut t = at;
    // Up to a day ahead, the first whole hour that is not quiet and, if we
    // know them, one the contact writes in.
    for step in 0..24 {
        let candidate = if step == 0 { at } else { (at / HOUR + step) * HOUR };
        let h = hour_of(candidate);
        if !is_quiet(h) && (active.is_empty() || near_active(h)) {
            return candidate;
        }
        if step == 0 {
            t = candidate;
        }
    }
    // No active hour outside quiet hours: just leave the quiet hours.
    for step in 1..24 {
        let candidate = (at / HOUR + step) * HOUR;
        if !is_quiet(hour_of(candidate)) {
            return candidate;
        }
    }
    t
}

fn parse_quiet(spec: &str) -> Option<(u8, u8)> {
    let (a, b) = spec.split_once('-')?;
    let h = |s: &str| s.trim().split(':').next()?.parse::<u8>().ok().filter(|h| *h < 24);
    Some((h(a)?, h(b)?))
}

switchboard_plugin::export_follow_up!(Adaptive);
