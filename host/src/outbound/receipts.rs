//! Read receipts: the contact's message marked read (and, when a person
//! opens the conversation, the typing indicator shown), as Meta's
//! `{"status": "read", "message_id": …, "typing_indicator": …}` send.
//! Queued in the commit that answers (or opens) and sent best-effort: a
//! lost receipt costs a blue tick, so it is tried once and never holds
//! up a message.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Outbox;
use crate::clock::Millis;
use crate::store::{Batch, Result, Tree, keys};

/// `seq` → [`Receipt`].
const RECEIPTS: Tree = Tree("outbound.receipts");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub tenant: String,
    pub phone_number_id: String,
    /// The contact's message (`wamid…`).
    pub message_id: String,
    /// Shows the contact "typing…" (until the reply, or 25 seconds).
    pub typing: bool,
    pub queued_at: Millis,
}

impl Receipt {
    /// Meta's body for it.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({ "messaging_product": "whatsapp", "status": "read", "message_id": self.message_id });
        if self.typing {
            body["typing_indicator"] = json!({ "type": "text" });
        }
        body
    }
}

impl Outbox {
    pub fn mark_read(&self, batch: &mut Batch, receipt: &Receipt) -> Result<()> {
        let seq = self.store.generate_id()?;
        batch.put_json(RECEIPTS, keys::be(seq).to_vec(), receipt)
    }

    /// Receipts waiting, oldest first, with their keys.
    pub fn receipts(&self, limit: usize) -> Result<Vec<(Vec<u8>, Receipt)>> {
        let mut out = Vec::new();
        for entry in self.store.scan_prefix(RECEIPTS, b"")?.take(limit) {
            let (k, v) = entry?;
            out.push((k, crate::store::decode(RECEIPTS, &v)?));
        }
        Ok(out)
    }

    pub fn forget_receipt(&self, key: &[u8]) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(RECEIPTS, key.to_vec());
        self.store.commit(batch)
    }
}
