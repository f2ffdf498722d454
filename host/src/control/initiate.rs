//! Business-initiated conversations: a person writes to a contact first.
//! With an open conversation the message joins it; with none (or only
//! closed ones) it opens one — a template outside the 24-hour window, as
//! WhatsApp requires of a business that writes first.

use serde_json::json;

use super::staff::{StaffActions, StaffError, sendable};
use super::{Actor, AuditAction, AuditEntry};
use crate::crm::{Author, Conversation, ConversationStatus, Message};
use crate::model::{Assignee, Reply, new_id};
use crate::outbound::outgoing::{self, Outgoing};
use crate::store::{self, Batch};
use crate::templates::Book;

impl StaffActions {
    /// Sends `reply` to the contact as `who`, in its open conversation or
    /// in a new one assigned to them. A contact who opted out gets
    /// nothing.
    pub fn message_contact(
        &self,
        tenant: &str,
        contact_id: &str,
        who: &str,
        reply: &Reply,
        phone_number_id: &str,
    ) -> Result<(Conversation, Message), StaffError> {
        let read = self.crm.contact(tenant, contact_id)?.ok_or_else(|| StaffError::NoContact(contact_id.into()))?;
        if read.opted_out {
            return Err(StaffError::OptedOut);
        }
        let open = self.crm.latest_conversation(tenant, contact_id)?.filter(|c| c.status == ConversationStatus::Open);
        if let Some(open) = open {
            let message = self.reply(tenant, &open.id, who, reply, None, phone_number_id)?;
            let conversation = self.crm.conversation(tenant, &open.id)?.unwrap_or(open);
            return Ok((conversation, message));
        }
        let book = self.book(tenant, reply)?;
        let started = store::optimistic(|| self.open(tenant, contact_id, who, reply, &book, phone_number_id))?;
        let started = started.ok_or(StaffError::KeptChanging("contact"))?;
        self.outbox.wake_sender();
        Ok(started)
    }

    /// One try at opening a conversation with `reply` in it; `None` if
    /// the contact changed meanwhile.
    fn open(
        &self,
        tenant: &str,
        contact_id: &str,
        who: &str,
        reply: &Reply,
        book: &Book,
        phone_number_id: &str,
    ) -> Result<Option<(Conversation, Message)>, StaffError> {
        let read = self.crm.contact(tenant, contact_id)?.ok_or_else(|| StaffError::NoContact(contact_id.into()))?;
        let (mut contact, now, mut batch) = (read.clone(), self.now(), Batch::new());
        let reply = sendable(reply, book, &contact, now)?;
        let mut conversation = Conversation {
            id: new_id("cv"),
            contact_id: contact.id.clone(),
            company_id: contact.company_id.clone(),
            status: ConversationStatus::Open,
            opened_at: now,
            last_message_at: now,
            exchange_since: now,
            assignee: Some(Assignee::Agent(who.to_string())),
            ..Default::default()
        };
        let o = Outgoing {
            id: new_id("msg"),
            reply: &reply,
            author: Author::Human { staff: who.to_string() },
            reply_to: None,
            quoting: None,
            decision_id: None,
            phone_number_id,
            now,
        };
        let message = outgoing::queue(&self.crm, &self.outbox, &mut batch, tenant, &mut conversation, &mut contact, o)?;
        let what = format!("{who} started a conversation");
        let entry = AuditEntry::new(now, Actor::Staff { id: who.to_string() }, AuditAction::HumanReply, what)
            .with(json!({ "message": message.id }))
            .about(Some(&conversation.id), Some(&contact.id));
        self.control.audit.record(&mut batch, tenant, &entry)?;
        // Guarded on the contact: a message the pipeline applied
        // meanwhile (which may have opened a conversation) makes this
        // run again, and then join that one.
        self.crm.put_contact(&mut batch, tenant, &mut contact, Some(&read))?;
        self.crm.put_conversation(&mut batch, tenant, &mut conversation, None)?;
        Ok(store::committed(self.crm.commit(batch))?.then_some((conversation, message)))
    }
}
