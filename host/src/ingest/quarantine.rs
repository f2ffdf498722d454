//! The quarantine: webhook items this release could not read, kept exactly
//! as Meta sent them with the reason, so nothing acknowledged is lost and a
//! later release (or a fixed tenant setting) can read them again
//! (`replay`).
//!
//! An item's id is a digest of what was kept, so a redelivered body keeps
//! its odd items once, not once per delivery.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::payload::Unreadable;
use crate::clock::Millis;
use crate::store::{Batch, Result, Store, Tree, keys};

const QUARANTINE: Tree = Tree("ingest.quarantine");

/// The tenant of items whose business number could not be read: only the
/// operator sees and replays them.
pub const OPERATOR: &str = "";

/// One kept item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Quarantined {
    /// `uq_` and a digest of the kept item.
    pub id: String,
    /// Empty for items no business number could be read from.
    pub tenant: String,
    /// The change's `field` (`messages`…).
    pub field: String,
    pub phone_number_id: Option<String>,
    /// Where it was in the body it came in.
    pub path: String,
    /// Why it could not be read (the latest reason, after a replay).
    pub reason: String,
    pub received_at: Millis,
    /// Replays that could not read it either.
    pub replays: u32,
    pub last_replay_at: Option<Millis>,
    /// The change's value reduced to this item, as Meta sent it.
    #[schema(value_type = Object)]
    pub value: Value,
}

impl Quarantined {
    pub fn new(tenant: &str, item: Unreadable, received_at: Millis) -> Quarantined {
        let digest = Sha256::new()
            .chain_update(item.field.as_bytes())
            .chain_update([0])
            .chain_update(item.value.to_string().as_bytes())
            .finalize();
        Quarantined {
            id: format!("uq_{}", hex::encode(&digest[..12])),
            tenant: tenant.to_string(),
            field: item.field,
            phone_number_id: item.phone_number_id,
            path: item.path,
            reason: item.reason,
            received_at,
            replays: 0,
            last_replay_at: None,
            value: item.value,
        }
    }
}

#[derive(Clone)]
pub struct Quarantine {
    store: Store,
}

impl Quarantine {
    pub fn new(store: Store) -> Quarantine {
        Quarantine { store }
    }

    fn key(tenant: &str, id: &str) -> Vec<u8> {
        keys::join(&[tenant.as_bytes(), id.as_bytes()])
    }

    /// Keeps `item` in `batch` (again, after a replay that could not read it).
    pub fn keep(&self, batch: &mut Batch, item: &Quarantined) -> Result<()> {
        batch.put_json(QUARANTINE, Self::key(&item.tenant, &item.id), item)
    }

    /// Lets `item` go in `batch`: its events are journaled in the same one.
    pub fn release(&self, batch: &mut Batch, item: &Quarantined) {
        batch.delete(QUARANTINE, Self::key(&item.tenant, &item.id));
    }

    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<Quarantined>> {
        self.store.get_json(QUARANTINE, &Self::key(tenant, id))
    }

    /// `tenant`'s items in id order after `after`, at most `limit`.
    pub fn list(&self, tenant: &str, after: Option<&str>, limit: usize) -> Result<Vec<Quarantined>> {
        let prefix = keys::tenant_prefix(tenant);
        let start = match after {
            Some(id) => Self::key(tenant, id),
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for entry in self.store.after(QUARANTINE, &start)? {
            let (k, v) = entry?;
            if !k.starts_with(&prefix) || out.len() == limit {
                break;
            }
            match serde_json::from_slice(&v) {
                Ok(item) => out.push(item),
                Err(e) => tracing::error!(error = %e, "an unreadable quarantine record; skipped"),
            }
        }
        Ok(out)
    }

    /// Items kept, every tenant's.
    pub fn count(&self) -> Result<usize> {
        self.store.len(QUARANTINE)
    }
}
