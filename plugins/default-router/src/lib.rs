//! Switchboard's default router, the one every new tenant starts with.
//!
//! It decides in this order; the first rule that matches wins:
//!
//! 1. **Nothing to answer** — reactions, system notices, and messages that
//!    only close the exchange ("thanks", "ok", "👍", "obrigado", "gracias")
//!    need no reply.
//! 2. **Urgent** — a message with an urgent keyword (`urgent-keywords`) goes
//!    to the deal owner or the support team, priority urgent, 15 minutes.
//! 3. **Late-stage deal** — when the contact's deal is in a late stage
//!    (`late-stages`), the deal owner (or the sales team) answers, priority
//!    high, 30 minutes — or urgent within 10 minutes when the contact's
//!    learned `engagement` signal is at least `engaged-threshold` (0.7): a
//!    buyer this involved should not wait.
//! 4. **Buying intent** — a sales keyword (`sales-keywords`) goes to the
//!    sales team within 2 hours.
//! 5. **Greeting** — a bare greeting inside business hours gets the bot's
//!    `greeting-reply`.
//! 6. **Everything else** goes to the support team within 4 hours.
//!
//! Outside `business-hours` a human hand-off is acknowledged at once with
//! `after-hours-reply` — once: not again while that acknowledgement is the
//! last thing we said — and the deadline counts from the next opening.
//!
//! Settings (tenant `config`, all optional):
//!
//! | key | default |
//! |---|---|
//! | `business-hours` | `mon-fri 09:00-18:00` (`;` separates more ranges, e.g. `mon-fri 09:00-18:00; sat 10:00-14:00`) |
//! | `support-team` | `support` |
//! | `sales-team` | `sales` |
//! | `urgent-keywords` | see [`URGENT`] |
//! | `sales-keywords` | see [`SALES`] |
//! | `late-stages` | `proposal,negotiation,contract,closing` |
//! | `engaged-threshold` | `0.7` |
//! | `greeting-reply` | `Hi! Thanks for writing. How can we help you today?` |
//! | `after-hours-reply` | `Thanks for your message! We're closed right now and will answer as soon as we open.` |

mod hours;
mod words;

use switchboard_plugin::router::*;

/// Keywords that make a message urgent, in the languages WhatsApp
/// businesses most often serve (English, Portuguese, Spanish).
pub const URGENT: &str = "urgent,urgente,asap,emergency,emergencia,emergência,cancel,cancelar,complaint,reclamação,reclamo,queja,refund,reembolso,broken,quebrado,roto,not working,não funciona,no funciona";
/// Keywords that signal buying intent.
pub const SALES: &str = "price,pricing,preço,precio,quote,orçamento,cotización,cotizacion,buy,comprar,plan,plano,discount,desconto,descuento,demo";
const LATE_STAGES: &str = "proposal,negotiation,contract,closing";
const GREETING_REPLY: &str = "Hi! Thanks for writing. How can we help you today?";
const AFTER_HOURS_REPLY: &str = "Thanks for your message! We're closed right now and will answer as soon as we open.";

struct DefaultRouter;

impl Router for DefaultRouter {
    fn route(input: Input) -> Result<Decision, String> {
        let hours =
            hours::BusinessHours::parse(&config("business-hours").unwrap_or_else(|| "mon-fri 09:00-18:00".into()))
                .map_err(|e| format!("setting business-hours: {e}"))?;
        let open = hours.is_open(&input.context.local_time);
        let decision = decide(&input, open);
        Ok(if open || !matches!(decision.handler, Handler::Human(_)) {
            decision
        } else {
            after_hours(decision, &hours, &input.context.local_time, acknowledged(&input))
        })
    }
}

fn decide(input: &Input, open: bool) -> Decision {
    let message = &input.message;
    let text = message.lowercase_text();
    let support = Assignee::Team(config("support-team").unwrap_or_else(|| "support".into()));
    let sales = Assignee::Team(config("sales-team").unwrap_or_else(|| "sales".into()));
    let deal = input.context.deal.as_ref();
    let owner = deal.and_then(|d| d.owner.clone()).map(Assignee::Agent);

    if matches!(message.kind, MessageKind::Reaction | MessageKind::System) {
        return Decision::no_reply(format!("a {:?} needs no reply", message.kind).to_lowercase());
    }
    if words::is_closing(&text) {
        return Decision::no_reply("the contact closed the exchange");
    }
    let urgent = config("urgent-keywords").unwrap_or_else(|| URGENT.into());
    if let Some(word) = words::find_any(&text, &urgent) {
        return Decision::human(owner.unwrap_or(support), format!("urgent keyword \"{word}\""))
            .with_priority(Priority::Urgent)
            .within_minutes(15)
            .with_tag("urgent");
    }
    let late = config("late-stages").unwrap_or_else(|| LATE_STAGES.into());
    if let Some(deal) = deal.filter(|d| words::list_contains(&late, &d.stage)) {
        let threshold: f64 = config_or("engaged-threshold", 0.7);
        if let Some(engagement) = input.context.contact.signal("engagement").filter(|e| *e >= threshold) {
            return Decision::human(
                owner.unwrap_or(sales),
                format!("engaged buyer ({engagement:.2}) on deal \"{}\" at stage {}", deal.name, deal.stage),
            )
            .with_priority(Priority::Urgent)
            .within_minutes(10)
            .with_tag("late-stage")
            .with_tag("engaged");
        }
        return Decision::human(owner.unwrap_or(sales), format!("deal \"{}\" is at stage {}", deal.name, deal.stage))
            .with_priority(Priority::High)
            .within_minutes(30)
            .with_tag("late-stage");
    }
    let sales_words = config("sales-keywords").unwrap_or_else(|| SALES.into());
    if let Some(word) = words::find_any(&text, &sales_words) {
        return Decision::human(sales, format!("buying intent: \"{word}\"")).within_minutes(120).with_tag("sales");
    }
    if open && words::is_greeting(&text) {
        let reply = config("greeting-reply").unwrap_or_else(|| GREETING_REPLY.into());
        return Decision::bot(Reply::Text(reply), "a greeting inside business hours");
    }
    Decision::human(support, "no rule matched: support answers").within_minutes(240)
}

/// Outside business hours: acknowledge at once (once: not again while the
/// acknowledgement is the last word from our side), and count the deadline
/// from the next opening so the inbox does not flag it overdue overnight.
fn after_hours(decision: Decision, hours: &hours::BusinessHours, now: &LocalTime, acknowledged: bool) -> Decision {
    let until_open = hours.minutes_until_open(now).map(|m| m * 60_000);
    let respond_within = match (decision.respond_within, until_open) {
        (Some(within), Some(wait)) => Some(within + wait),
        (within, _) => within,
    };
    let reason = format!("{} (after hours)", decision.reason);
    let decision = Decision { respond_within, reason, ..decision }.with_tag("after-hours");
    if acknowledged {
        return decision;
    }
    decision.acknowledged_with(Reply::Text(after_hours_reply()))
}

fn after_hours_reply() -> String {
    config("after-hours-reply").unwrap_or_else(|| AFTER_HOURS_REPLY.into())
}

/// Whether the bot already acknowledged since a person last wrote to the
/// contact: the contact writing again after hours gets no second notice.
fn acknowledged(input: &Input) -> bool {
    let reply = after_hours_reply();
    input
        .context
        .conversation
        .history
        .iter()
        .rev()
        .filter(|m| m.direction == Direction::Outbound)
        .take_while(|m| m.author != Author::Human)
        .any(|m| m.author == Author::Bot && m.text.as_deref() == Some(reply.as_str()))
}

switchboard_plugin::export_router!(DefaultRouter);
