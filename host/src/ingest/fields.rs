//! Webhook fields other than `messages` — account and number updates,
//! template reviews, calls, Business-app echoes, history, user preferences
//! — each kept as it came, for the tenant it belongs to, and listed in the
//! API. The stages that act on one (number health, …) read it from here.
//!
//! A change that names no phone-number id belongs to the tenant whose
//! numbers its business account (the entry's id) was seen with; one whose
//! account was never seen with a tenant's number is the operator's.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::payload::FieldChange;
use crate::clock::Millis;
use crate::store::{Batch, Result, Store, Tree, keys};

/// `tenant ␟ received_at ␟ id`: newest last.
const FIELDS: Tree = Tree("ingest.fields");
/// `tenant ␟ id` → its key in `FIELDS`: a redelivery is kept once.
const FIELD_IDS: Tree = Tree("ingest.fields.by_id");
/// `tenant ␟ field ␟ received_at ␟ id` → its key in `FIELDS`: one field's
/// events read without the others (number health folds three of them at
/// every template follow-up; `history` alone can be thousands).
const BY_FIELD: Tree = Tree("ingest.fields.by_field");
/// WhatsApp Business Account id → the tenant its numbers belong to.
const WABA_OWNERS: Tree = Tree("ingest.waba_owners");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldEvent {
    /// `wf_` and a digest of what came.
    pub id: String,
    /// Empty: the operator's (no tenant's number or account named).
    pub tenant: String,
    pub field: String,
    pub waba_id: Option<String>,
    pub phone_number_id: Option<String>,
    pub received_at: Millis,
    /// The change's `value`, as Meta sent it.
    #[schema(value_type = Object)]
    pub value: Value,
}

impl FieldEvent {
    pub fn new(tenant: &str, change: FieldChange, received_at: Millis) -> FieldEvent {
        let digest = Sha256::new()
            .chain_update(change.field.as_bytes())
            .chain_update([0])
            .chain_update(change.waba_id.as_deref().unwrap_or_default().as_bytes())
            .chain_update([0])
            .chain_update(change.value.to_string().as_bytes())
            .finalize();
        FieldEvent {
            id: format!("wf_{}", hex::encode(&digest[..12])),
            tenant: tenant.to_string(),
            field: change.field,
            waba_id: change.waba_id,
            phone_number_id: change.phone_number_id,
            received_at,
            value: change.value,
        }
    }
}

#[derive(Clone)]
pub struct FieldEvents {
    store: Store,
}

impl FieldEvents {
    pub fn new(store: Store) -> FieldEvents {
        FieldEvents { store }
    }

    /// Keeps `event` in `batch`; `false` if it was kept before (a redelivery).
    pub fn keep(&self, batch: &mut Batch, event: &FieldEvent) -> Result<bool> {
        let id_key = keys::join(&[event.tenant.as_bytes(), event.id.as_bytes()]);
        if self.store.contains(FIELD_IDS, &id_key)? {
            return Ok(false);
        }
        let at_id = [keys::ts(event.received_at).as_slice(), event.id.as_bytes()].concat();
        let key = [keys::tenant_prefix(&event.tenant).as_slice(), &at_id].concat();
        let by_field = [keys::prefix(&[event.tenant.as_bytes(), event.field.as_bytes()]).as_slice(), &at_id].concat();
        batch.put(FIELD_IDS, id_key, key.clone());
        batch.put(BY_FIELD, by_field, key.clone());
        batch.put_json(FIELDS, key, event)?;
        Ok(true)
    }

    /// `tenant`'s events, newest first, of `field` if given, at most `limit`.
    pub fn list(&self, tenant: &str, field: Option<&str>, limit: usize) -> Result<Vec<FieldEvent>> {
        let Some(field) = field else {
            let all = self.store.scan_prefix(FIELDS, &keys::tenant_prefix(tenant))?.values::<FieldEvent>();
            return all.rev().take(limit).collect();
        };
        let index = self.store.scan_prefix(BY_FIELD, &keys::prefix(&[tenant.as_bytes(), field.as_bytes()]))?;
        let mut out = Vec::new();
        for entry in index.rev().take(limit) {
            let (_, key) = entry?;
            out.extend(self.store.get_json::<FieldEvent>(FIELDS, &key)?);
        }
        Ok(out)
    }

    /// The tenant whose numbers the business account `waba_id` was seen with.
    pub fn waba_owner(&self, waba_id: &str) -> Result<Option<String>> {
        Ok(self.store.get(WABA_OWNERS, waba_id.as_bytes())?.map(|t| String::from_utf8_lossy(&t).into_owned()))
    }

    /// Records that `waba_id` holds `tenant`'s numbers (a `messages` change
    /// for one of them came in its entry).
    pub fn learn_waba(&self, batch: &mut Batch, waba_id: &str, tenant: &str) -> Result<()> {
        if self.waba_owner(waba_id)?.as_deref() != Some(tenant) {
            batch.put(WABA_OWNERS, waba_id.as_bytes(), tenant.as_bytes());
        }
        Ok(())
    }
}
