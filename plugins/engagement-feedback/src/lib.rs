//! Switchboard's reference feedback plugin: turns each closed exchange into
//! four signals about the contact, each a running average (weight `alpha`
//! for the newest exchange) so one odd day does not define a person.
//!
//! | signal | range | from |
//! |---|---|---|
//! | `responsiveness` | 0…1 | how fast they answer us: 1 within minutes, ½ after an hour, → 0 over a day; an exchange that ends with our follow-ups unanswered counts as 0 |
//! | `engagement` | 0…1 | how much they put in: turns, messages and their length, answering follow-ups |
//! | `clarity` | 0…1 | how rarely we had to ask them to clarify (questions we asked per reply of ours) |
//! | `preferred-hour` | 0…23 | the local hour they write in most (circular mean of their active hours) |
//!
//! Settings (`config` of the feedback world): `alpha` (default `0.5`).

use switchboard_plugin::feedback::*;

const HOUR_MS: f64 = 3_600_000.0;

struct Engagement;

impl Feedback for Engagement {
    fn learn(input: Input) -> Result<Vec<SignalUpdate>, String> {
        let alpha: f64 = config_or::<f64>("alpha", 0.5).clamp(0.05, 1.0);
        let i = &input.interaction;
        let contact = &input.contact;
        let blend = |name: &str, sample: f64| SignalUpdate {
            name: name.into(),
            value: match contact.signal(name) {
                Some(old) => (1.0 - alpha) * old + alpha * sample,
                None => sample,
            }
            .clamp(0.0, 1.0),
        };
        let mut out = Vec::new();

        let responsiveness = match (i.closed_by, i.contact_reply_latency) {
            (CloseReason::FollowUpUnanswered, _) => Some(0.0),
            (_, Some(latency)) => Some(1.0 / (1.0 + latency as f64 / HOUR_MS)),
            _ => None,
        };
        if let Some(r) = responsiveness {
            out.push(blend("responsiveness", r));
        }

        if i.inbound_messages > 0 {
            let turns = (f64::from(i.turns) / 6.0).min(1.0);
            let volume = (f64::from(i.inbound_messages) / 4.0).min(1.0);
            let length = (f64::from(i.mean_inbound_length) / 80.0).min(1.0);
            let answered = if i.follow_up_answered { 1.0 } else { 0.5 };
            out.push(blend("engagement", 0.35 * turns + 0.25 * volume + 0.25 * length + 0.15 * answered));
        } else if i.closed_by == CloseReason::FollowUpUnanswered {
            out.push(blend("engagement", 0.0));
        }

        if i.outbound_messages > 0 {
            let asked = f64::from(i.clarifying_questions) / f64::from(i.outbound_messages);
            out.push(blend("clarity", 1.0 - asked.min(1.0)));
        }

        if !i.active_hours.is_empty() {
            // Circular mean: 23:00 and 01:00 average to midnight, not noon.
            let (mut x, mut y) = (0.0f64, 0.0f64);
            for h in &i.active_hours {
                let angle = f64::from(*h) / 24.0 * std::f64::consts::TAU;
                x += angle.cos();
                y += angle.sin();
            }
            let hour = (y.atan2(x) / std::f64::consts::TAU * 24.0).rem_euclid(24.0).round() % 24.0;
            out.push(SignalUpdate { name: "preferred-hour".into(), value: hour });
        }
        log(LogLevel::Debug, &format!("{} signals from an exchange closed by {:?}", out.len(), i.closed_by));
        Ok(out)
    }
}

switchboard_plugin::export_feedback!(Engagement);
