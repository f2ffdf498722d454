//! Context: everything the host knows about a conversation at the moment a
//! plugin is asked to decide — its thread, recent history, interaction
//! times, the 24-hour window, the deal, the contact's stats and signals.
//!
//! Threading lives here too, because "which conversation does this message
//! belong to" is the first question context answers: a reply quoting an
//! earlier message joins that message's conversation while it is open; any
//! other message joins the contact's latest conversation unless it was
//! resolved or has been quiet longer than the inactivity timeout.

use chrono::{Datelike, Offset, TimeZone, Timelike};

use crate::clock::{DAY, Millis};
use crate::crm::{Company, Contact, Conversation, ConversationStatus, Crm, Deal, Message};
use crate::model::{Priority, new_id};
use crate::store::StoreError;
use crate::tenants::Tenant;

/// WhatsApp's customer-service window.
pub const SERVICE_WINDOW: Millis = DAY;

/// Local wall-clock time of the tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LocalTime {
    pub utc_offset_minutes: i32,
    /// 0 = Monday.
    pub weekday: u8,
    pub minute_of_day: u16,
}

impl LocalTime {
    pub fn at(tz: chrono_tz::Tz, now: Millis) -> LocalTime {
        // A UTC instant has exactly one local time; `earliest` is total.
        let Some(t) = tz.timestamp_millis_opt(now).earliest() else {
            return LocalTime { utc_offset_minutes: 0, weekday: 0, minute_of_day: 0 };
        };
        LocalTime {
            utc_offset_minutes: t.offset().fix().local_minus_utc() / 60,
            weekday: t.weekday().num_days_from_monday() as u8,
            minute_of_day: (t.hour() * 60 + t.minute()) as u16,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServiceWindow {
    pub open: bool,
    pub closes_at: Option<Millis>,
}

impl ServiceWindow {
    /// The window is per contact: it opens with their last inbound message.
    pub fn of(contact: &Contact, now: Millis) -> ServiceWindow {
        let closes_at = contact.stats.last_inbound_at.map(|t| t + SERVICE_WINDOW);
        ServiceWindow { open: closes_at.is_some_and(|c| now < c), closes_at }
    }
}

/// The input every plugin world shares. Every field has a default, so a
/// hand-written test input only needs the fields a plugin reads.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Context {
    pub tenant: String,
    pub now: Millis,
    pub local_time: LocalTime,
    pub contact: Contact,
    pub company: Option<Company>,
    pub deal: Option<Deal>,
    pub conversation: Conversation,
    /// Recent messages, oldest first, without the one being decided on.
    pub history: Vec<Message>,
    pub window: ServiceWindow,
}

impl Context {
    /// This context after the event being applied changed its contact and
    /// conversation. Nothing is read again: the event's own writes are not
    /// committed yet, so the history is what [`ContextBuilder::build`] read.
    pub fn updated(self, contact: &Contact, conversation: &Conversation) -> Context {
        Context {
            window: ServiceWindow::of(contact, self.now),
            contact: contact.clone(),
            conversation: conversation.clone(),
            ..self
        }
    }
}

/// Which conversation a message belongs to.
#[derive(Debug, Clone)]
pub struct Thread {
    pub conversation: Conversation,
    /// As read from the store; None for a new conversation.
    pub previous: Option<Conversation>,
    /// An inactive conversation this message closed by opening a new one.
    pub closed: Option<(Conversation, Conversation)>,
}

/// The records a decision is about, as the event will write them.
pub struct About<'a> {
    pub contact: &'a Contact,
    pub company: Option<&'a Company>,
    pub deal: Option<&'a Deal>,
    pub conversation: &'a Conversation,
}

#[derive(Clone)]
pub struct ContextBuilder {
    crm: Crm,
    inactivity_timeout: Millis,
    history: usize,
}

impl ContextBuilder {
    pub fn new(crm: Crm, inactivity_timeout: Millis, history: usize) -> Self {
        ContextBuilder { crm, inactivity_timeout, history }
    }

    /// Threads an inbound message written at `at` (quoting `reply_to`).
    pub fn thread(
        &self,
        tenant: &str,
        contact: &Contact,
        reply_to: Option<&str>,
        at: Millis,
        deal: Option<&Deal>,
    ) -> Result<Thread, StoreError> {
        // A reply joins the conversation of the message it quotes, reopening
        // it if it had only gone quiet; a resolved one stays closed.
        if let Some(quoted) = reply_to
            && let Some(m) = self.crm.message(tenant, quoted)?.filter(|m| m.contact_id == contact.id)
            && let Some(c) = self.crm.conversation(tenant, &m.conversation_id)?
            && c.status != ConversationStatus::Resolved
        {
            let mut reopened = c.clone();
            reopened.status = ConversationStatus::Open;
            reopened.resolved_at = None;
            return Ok(Thread { conversation: reopened, previous: Some(c), closed: None });
        }
        let latest = self.crm.latest_conversation(tenant, &contact.id)?;
        let mut closed = None;
        if let Some(c) = latest
            && c.status == ConversationStatus::Open
        {
            if at - c.last_message_at < self.inactivity_timeout {
                return Ok(Thread { conversation: c.clone(), previous: Some(c), closed: None });
            }
            let mut ended = c.clone();
            ended.status = ConversationStatus::Expired;
            ended.resolved_at = Some(c.last_message_at + self.inactivity_timeout);
            ended.needs_reply = false;
            ended.respond_by = None;
            closed = Some((ended, c));
        }
        let conversation = Conversation {
            id: new_id("cv"),
            contact_id: contact.id.clone(),
            company_id: contact.company_id.clone(),
            deal_id: deal.map(|d| d.id.clone()),
            status: ConversationStatus::Open,
            opened_at: at,
            last_message_at: at,
            last_inbound_at: None,
            last_outbound_at: None,
            resolved_at: None,
            assignee: None,
            priority: Priority::Normal,
            needs_reply: false,
            respond_by: None,
            tags: Vec::new(),
            inbound_messages: 0,
            outbound_messages: 0,
            last_decision_id: None,
            ..Default::default()
        };
        Ok(Thread { conversation, previous: None, closed })
    }

    /// [`ContextBuilder::build`], loading the contact's company and the
    /// conversation's deal itself.
    pub fn build_for(
        &self,
        tenant: &Tenant,
        now: Millis,
        contact: &Contact,
        conversation: &Conversation,
        exclude_message: Option<&str>,
    ) -> Result<Context, StoreError> {
        let company = match &contact.company_id {
            Some(id) => self.crm.company(&tenant.id, id)?,
            None => None,
        };
        let deal = match &conversation.deal_id {
            Some(id) => self.crm.deal(&tenant.id, id)?,
            None => None,
        };
        let about = About { contact, company: company.as_ref(), deal: deal.as_ref(), conversation };
        self.build(tenant, now, about, exclude_message)
    }

    /// Assembles the context for a decision about `about.conversation`.
    pub fn build(
        &self,
        tenant: &Tenant,
        now: Millis,
        about: About<'_>,
        exclude_message: Option<&str>,
    ) -> Result<Context, StoreError> {
        let About { contact, company, deal, conversation } = about;
        let mut history = self.crm.recent_messages(&tenant.id, &conversation.id, self.history + 1)?;
        history.retain(|m| Some(m.id.as_str()) != exclude_message);
        let excess = history.len().saturating_sub(self.history);
        history.drain(..excess);
        Ok(Context {
            tenant: tenant.id.clone(),
            now,
            local_time: LocalTime::at(tenant.tz(), now),
            contact: contact.clone(),
            company: company.cloned(),
            deal: deal.filter(|d| conversation.deal_id.as_deref().is_none_or(|id| id == d.id)).cloned(),
            conversation: conversation.clone(),
            history,
            window: ServiceWindow::of(contact, now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_follows_the_timezone() {
        // 2025-11-24 12:00 UTC is a Monday; São Paulo is UTC-3.
        let t = LocalTime::at(chrono_tz::America::Sao_Paulo, 1_763_985_600_000);
        assert_eq!((t.weekday, t.minute_of_day, t.utc_offset_minutes), (0, 9 * 60, -180));
    }
}
