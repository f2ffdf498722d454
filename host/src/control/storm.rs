//! The storm guard: caps on automated messages no plugin can override.
//!
//! A follow-up plugin once sent 152 texts to one contact in 35 seconds,
//! and a router that acknowledges every message after hours answers a
//! chatty contact dozens of times a minute. Whatever the plugins decide,
//! the host sends a contact at most `per_minute` automated messages a
//! minute and `per_day` a day, and acknowledges a conversation at most
//! once a day. A send the guard stops is suppressed and audited with the
//! rule that fired, like any other host rule.

use crate::clock::{DAY, MINUTE, Millis};
use crate::crm::{Contact, Conversation};

pub use crate::config::StormLimits;

/// Which cap stopped a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormRule {
    PerMinute(u32),
    PerDay(u32),
    AlreadyAcknowledged,
}

impl std::fmt::Display for StormRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StormRule::PerMinute(n) => {
                write!(f, "storm guard: {n} automated messages to this contact in the last minute")
            }
            StormRule::PerDay(n) => write!(f, "storm guard: {n} automated messages to this contact in the last day"),
            StormRule::AlreadyAcknowledged => {
                f.write_str("storm guard: this conversation was already acknowledged in the last day")
            }
        }
    }
}

/// One contact's automated sends, checked and counted as a decision acts.
pub struct Storm<'a> {
    limits: StormLimits,
    contact: &'a mut Contact,
    now: Millis,
}

impl<'a> Storm<'a> {
    pub fn new(limits: StormLimits, contact: &'a mut Contact, now: Millis) -> Self {
        // Only the last day counts; older sends are forgotten.
        contact.automated_sends.retain(|t| now.saturating_sub(*t) < DAY);
        Storm { limits, contact, now }
    }

    /// The contact the messages would go to.
    pub fn contact(&self) -> &Contact {
        self.contact
    }

    /// Whether one more automated message may go now; if so it is counted.
    pub fn allow(&mut self) -> Result<(), StormRule> {
        let sent = &self.contact.automated_sends;
        let last_minute = sent.iter().filter(|t| self.now.saturating_sub(**t) < MINUTE).count() as u32;
        if last_minute >= self.limits.per_contact_per_minute {
            return Err(StormRule::PerMinute(last_minute));
        }
        if sent.len() as u32 >= self.limits.per_contact_per_day {
            return Err(StormRule::PerDay(sent.len() as u32));
        }
        self.contact.automated_sends.push(self.now);
        Ok(())
    }

    /// [`Storm::allow`] for an acknowledgement, which also goes at most
    /// once a day per conversation.
    pub fn allow_acknowledgement(&mut self, conversation: &mut Conversation) -> Result<(), StormRule> {
        if conversation.acknowledged_at.is_some_and(|t| self.now.saturating_sub(t) < DAY) {
            return Err(StormRule::AlreadyAcknowledged);
        }
        self.allow()?;
        conversation.acknowledged_at = Some(self.now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_minute_and_per_day_and_one_acknowledgement() {
        let limits = StormLimits { per_contact_per_minute: 3, per_contact_per_day: 5 };
        let mut contact = Contact::default();
        let mut storm = Storm::new(limits, &mut contact, 0);
        assert!((0..3).all(|_| storm.allow().is_ok()));
        assert_eq!(storm.allow(), Err(StormRule::PerMinute(3)));
        let mut storm = Storm::new(limits, &mut contact, MINUTE);
        assert!(storm.allow().is_ok() && storm.allow().is_ok());
        assert_eq!(storm.allow(), Err(StormRule::PerDay(5)));
        let mut storm = Storm::new(limits, &mut contact, DAY + MINUTE);
        assert!(storm.allow().is_ok(), "a day later it starts over");

        let mut conversation = Conversation::default();
        let mut storm = Storm::new(limits, &mut contact, 2 * DAY);
        assert!(storm.allow_acknowledgement(&mut conversation).is_ok());
        assert_eq!(storm.allow_acknowledgement(&mut conversation), Err(StormRule::AlreadyAcknowledged));
    }
}
