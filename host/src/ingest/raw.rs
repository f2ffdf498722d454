//! Every webhook item as Meta sent it, kept for `webhook.raw_retention`:
//! a later release can re-derive what an older one did not read (a field
//! it ignored), and support can see exactly what arrived. Written in the
//! same commit that journals the item's event.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::store::{Batch, Result, Store, Tree, keys};

const RAW: Tree = Tree("ingest.raw");
/// `received_at ␟ raw key`, for expiry by age.
const RAW_BY_TIME: Tree = Tree("ingest.raw.by_time");

/// One message or status as it came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RawItem {
    /// `message` or `status`.
    pub kind: String,
    /// The message's `wamid` (for a status: the message it is about).
    pub wamid: String,
    /// A status's `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub received_at: Millis,
    /// The item exactly as it was in the body.
    #[schema(value_type = Object)]
    pub value: RawJson,
}

/// An item's JSON as it was in the body: written out once when the body is
/// read, stored and served as that text, never parsed again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// `item` written out (`None` only if it cannot be, which a parsed
    /// value always can).
    pub fn of(item: &Value) -> Option<RawJson> {
        serde_json::value::to_raw_value(item).ok().map(RawJson)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.get() == other.get()
    }
}

#[derive(Clone)]
pub struct RawItems {
    store: Store,
}

impl RawItems {
    pub fn new(store: Store) -> RawItems {
        RawItems { store }
    }

    fn key(tenant: &str, item: &RawItem) -> Vec<u8> {
        let status = item.status.as_deref().unwrap_or_default();
        keys::join(&[tenant.as_bytes(), item.wamid.as_bytes(), item.kind.as_bytes(), status.as_bytes()])
    }

    pub fn keep(&self, batch: &mut Batch, tenant: &str, item: &RawItem) -> Result<()> {
        let key = Self::key(tenant, item);
        batch.put(RAW_BY_TIME, [keys::ts(item.received_at).as_slice(), &key].concat(), []);
        batch.put_json(RAW, key, item)
    }

    /// What arrived about the message `wamid`: the message, then its statuses.
    pub fn of_message(&self, tenant: &str, wamid: &str) -> Result<Vec<RawItem>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), wamid.as_bytes()]);
        self.store.scan_prefix(RAW, &prefix)?.values().collect()
    }

    /// Forgets items received before `before` (a redelivered item is kept
    /// from its latest receipt); returns how many.
    pub fn expire(&self, before: Millis) -> Result<usize> {
        let mut removed = 0;
        loop {
            let mut batch = Batch::new();
            let mut n = 0;
            for k in self.store.range(RAW_BY_TIME, &keys::ts(i64::MIN), &keys::ts(before))?.keys().take(1000) {
                let k = k?;
                let raw_key = k[8..].to_vec();
                let stored: Option<RawItem> = self.store.get_json(RAW, &raw_key)?;
                if stored.is_some_and(|s| s.received_at < before) {
                    batch.delete(RAW, raw_key);
                    removed += 1;
                }
                batch.delete(RAW_BY_TIME, k);
                n += 1;
            }
            if n == 0 {
                return Ok(removed);
            }
            self.store.commit(batch)?;
        }
    }
}
