//! Read receipts for staff: a person opening a conversation marks the
//! contact's last message read and shows them "typing…"; a person's
//! answer marks it read (when the tenant wants receipts).

use super::staff::{StaffActions, StaffError};
use crate::model::Direction;
use crate::outbound::receipts::Receipt;
use crate::store::Batch;

impl StaffActions {
    /// Marks the conversation's latest message from the contact read;
    /// its id, or `None` if the contact has written nothing yet.
    pub fn mark_read(
        &self,
        tenant: &str,
        conversation_id: &str,
        phone_number_id: &str,
        typing: bool,
    ) -> Result<Option<String>, StaffError> {
        if self.crm.conversation(tenant, conversation_id)?.is_none() {
            return Err(StaffError::NoConversation(conversation_id.into()));
        }
        let recent = self.crm.recent_messages(tenant, conversation_id, 50)?;
        let Some(last) = recent.iter().rev().find(|m| m.direction == Direction::Inbound) else { return Ok(None) };
        let receipt = Receipt {
            tenant: tenant.to_string(),
            phone_number_id: phone_number_id.to_string(),
            message_id: last.id.clone(),
            typing,
            queued_at: self.now(),
        };
        let mut batch = Batch::new();
        self.outbox.mark_read(&mut batch, &receipt)?;
        self.crm.commit(batch)?;
        self.outbox.wake_sender();
        Ok(Some(last.id.clone()))
    }
}
