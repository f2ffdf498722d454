//! The timer store: one pending follow-up per conversation, by due time.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::model::ScheduledFollowUp;
use crate::store::{Batch, Result, Store, Tree, keys};

const DUE: Tree = Tree("followup.due");
const PENDING: Tree = Tree("followup.pending");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Timer {
    /// Also the idempotency key of what it sends.
    pub id: String,
    pub tenant: String,
    pub conversation_id: String,
    pub contact_id: String,
    /// The contact's lane (its BSUID, else its `wa_id`), so the firing
    /// goes to the contact's worker.
    pub wa_id: String,
    pub follow_up: ScheduledFollowUp,
    /// When the plan was made (a reply after this cancels it).
    pub scheduled_at: Millis,
    pub reason: String,
    /// The plugin version that planned it.
    pub planned_by: String,
}

/// A conversation's pending follow-up as read, with the bytes it was read
/// as: what a write back is guarded on (never a re-encoding of the timer,
/// which an upgrade adding a field would make differ from every stored one).
#[derive(Debug, Clone, Default)]
pub struct Pending {
    pub timer: Option<Timer>,
    bytes: Option<Vec<u8>>,
}

/// A timer that is due, with its stored bytes (see [`Timers::fired`]).
#[derive(Debug, Clone)]
pub struct Due {
    pub timer: Timer,
    bytes: Vec<u8>,
}

#[derive(Clone)]
pub struct Timers {
    store: Store,
}

fn due_key(t: &Timer) -> Vec<u8> {
    keys::join(&[&keys::ts(t.follow_up.at), t.tenant.as_bytes(), t.id.as_bytes()])
}

fn pending_key(tenant: &str, conversation: &str) -> Vec<u8> {
    keys::join(&[tenant.as_bytes(), conversation.as_bytes()])
}

impl Timers {
    pub fn new(store: Store) -> Self {
        Timers { store }
    }

    /// The conversation's pending follow-up.
    pub fn pending(&self, tenant: &str, conversation: &str) -> Result<Option<Timer>> {
        self.store.get_json(PENDING, &pending_key(tenant, conversation))
    }

    /// The conversation's pending follow-up as read, to change it with
    /// [`Timers::replace`].
    pub fn read_pending(&self, tenant: &str, conversation: &str) -> Result<Pending> {
        let read = self.store.get_json_as_read(PENDING, &pending_key(tenant, conversation))?;
        let (timer, bytes) = read.unzip();
        Ok(Pending { timer, bytes })
    }

    /// Replaces the conversation's pending follow-up with `timer`.
    pub fn schedule(&self, batch: &mut Batch, timer: &Timer) -> Result<()> {
        self.cancel(batch, &timer.tenant, &timer.conversation_id)?;
        batch.put_json(DUE, due_key(timer), timer)?;
        batch.put_json(PENDING, pending_key(&timer.tenant, &timer.conversation_id), timer)
    }

    /// Drops the conversation's pending follow-up, if any; returns it.
    pub fn cancel(&self, batch: &mut Batch, tenant: &str, conversation: &str) -> Result<Option<Timer>> {
        let existing = self.pending(tenant, conversation)?;
        if let Some(t) = &existing {
            batch.delete(DUE, due_key(t));
            batch.delete(PENDING, pending_key(tenant, conversation));
        }
        Ok(existing)
    }

    /// Moves the conversation's pending follow-up from `original` (as read)
    /// to `current`, guarded: a concurrent change makes the commit conflict.
    pub fn replace(
        &self,
        batch: &mut Batch,
        tenant: &str,
        conversation: &str,
        original: &Pending,
        current: Option<&Timer>,
    ) -> Result<()> {
        if original.timer.as_ref() == current {
            return Ok(());
        }
        let key = pending_key(tenant, conversation);
        batch.require_value(PENDING, key.clone(), original.bytes.clone());
        if let Some(t) = &original.timer {
            batch.delete(DUE, due_key(t));
        }
        match current {
            Some(t) => {
                batch.put_json(DUE, due_key(t), t)?;
                batch.put_json(PENDING, key, t)
            }
            None => {
                batch.delete(PENDING, key);
                Ok(())
            }
        }
    }

    /// Timers due at `now`, earliest first.
    pub fn due(&self, now: Millis, limit: usize) -> Result<Vec<Due>> {
        let range = self.store.range(DUE, &keys::ts(i64::MIN), &keys::ts(now.saturating_add(1)))?;
        range
            .take(limit)
            .map(|entry| {
                let (_, bytes) = entry?;
                Ok(Due { timer: crate::store::decode(DUE, &bytes)?, bytes })
            })
            .collect()
    }

    /// The writes that take a due timer out of the store as it fires.
    pub fn fired(&self, batch: &mut Batch, due: &Due) {
        let timer = &due.timer;
        batch.delete(DUE, due_key(timer));
        // Only if it is still the pending one (not replaced meanwhile): both
        // copies are written from one encoding in one batch, so the due
        // copy's bytes are the pending copy's.
        let key = pending_key(&timer.tenant, &timer.conversation_id);
        batch.require_value(PENDING, key.clone(), Some(due.bytes.clone()));
        batch.delete(PENDING, key);
    }

    pub fn len(&self) -> Result<usize> {
        self.store.len(DUE)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}
