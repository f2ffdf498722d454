//! Tenants: who owns a WhatsApp number, with which secrets and limits.
//!
//! Inbound webhooks find their tenant by `metadata.phone_number_id`; API
//! calls by the hash of their bearer key. Secrets that Meta needs in plain
//! form (app secret, access token) are stored as given but never returned
//! by the API; API keys are stored only as SHA-256 hashes.

mod changes;
mod demo;

pub use changes::{NewTenant, TenantPatch};
pub use demo::{DemoCredentials, ensure_demo, read_env as read_demo_env};

use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::config::PluginLimits;
use crate::store::{Batch, Store, StoreError, Tree};

const TENANTS: Tree = Tree("tenants");
const BY_PHONE_ID: Tree = Tree("tenants.by_phone_number_id");
const API_KEYS: Tree = Tree("tenants.api_keys");
const API_KEY_IDS: Tree = Tree("tenants.api_keys.by_id");
/// WhatsApp Business Account id → the tenant configured with it.
const BY_WABA_ID: Tree = Tree("tenants.by_waba_id");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    /// WhatsApp business phone-number ids this tenant receives on.
    pub phone_number_ids: Vec<String>,
    /// Meta app secret: verifies `X-Hub-Signature-256`.
    pub app_secret: String,
    /// Accepted in the webhook verification handshake.
    pub verify_token: Option<String>,
    /// Graph API bearer token; without it sends are dry-runs.
    pub access_token: Option<String>,
    /// The WhatsApp Business Account the numbers belong to: where its
    /// message templates are read, created and deleted.
    #[serde(default)]
    pub waba_id: Option<String>,
    /// Mark the contact's messages read when the bot or a person answers
    /// (Meta's read receipt: blue ticks).
    #[serde(default)]
    pub read_receipts: bool,
    /// Messages per second each of its numbers may send (Meta: 80 by
    /// default, up to 1,000 once upgraded); `None`: the operator's
    /// `outbound.messages_per_second`.
    #[serde(default)]
    pub messages_per_second: Option<u32>,
    /// Meta's messaging limit for its numbers: people each may start
    /// conversations with in 24 hours (250, 1000, 10000, 100000); `None`:
    /// unlimited.
    #[serde(default)]
    pub unique_users_per_day: Option<u32>,
    /// IANA timezone for business hours, e.g. `America/Sao_Paulo`.
    pub timezone: String,
    /// Region for phone numbers written without a country code, e.g. `BR`.
    pub default_region: String,
    pub disabled: bool,
    /// Per-tenant overrides of the operator's plugin limits.
    pub limits: Option<PluginLimits>,
    /// Per-tenant caps on automated messages (the storm guard); `None`:
    /// the operator's `[automation]`.
    #[serde(default)]
    pub automation: Option<crate::config::StormLimits>,
    /// A message that is exactly one of these opts the contact out of
    /// automated messages (defaults: STOP, BAJA, PARAR, SAIR, UNSUBSCRIBE…).
    #[serde(default = "default_opt_out")]
    pub opt_out_keywords: Vec<String>,
    /// …and one of these opts them back in.
    #[serde(default = "default_opt_in")]
    pub opt_in_keywords: Vec<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// The keywords a new tenant starts with, in the languages WhatsApp
/// businesses here write in; a tenant replaces them in its settings.
const OPT_OUT: &[&str] = &["stop", "baja", "parar", "sair", "unsubscribe", "cancelar suscripción", "descadastrar"];
const OPT_IN: &[&str] = &["start", "unstop", "alta", "voltar", "volver", "subscribe"];

pub fn default_opt_out() -> Vec<String> {
    OPT_OUT.iter().map(|s| s.to_string()).collect()
}

pub fn default_opt_in() -> Vec<String> {
    OPT_IN.iter().map(|s| s.to_string()).collect()
}

impl Tenant {
    /// The storm guard's caps for this tenant.
    pub fn automation_limits(&self, operator: crate::config::StormLimits) -> crate::config::StormLimits {
        self.automation.unwrap_or(operator)
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub label: String,
    pub created_at: Millis,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("phone number id {0} already belongs to another tenant")]
    PhoneNumberTaken(String),
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error("no tenant {0}")]
    NotFound(String),
    /// What the operator sent cannot make a valid tenant; says what to fix.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Clone)]
pub struct Tenants {
    store: Store,
}

impl Tenants {
    pub fn new(store: Store) -> Self {
        Tenants { store }
    }

    pub fn get(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.store.get_json(TENANTS, id.as_bytes())
    }

    /// The tenant that owns `phone_number_id`, disabled or not (a disabled
    /// tenant's webhooks are still verified with its secret, then ignored).
    pub fn by_phone_number_id(&self, phone_number_id: &str) -> Result<Option<Tenant>, StoreError> {
        let Some(id) = self.store.get(BY_PHONE_ID, phone_number_id.as_bytes())? else {
            return Ok(None);
        };
        self.get(&String::from_utf8_lossy(&id))
    }

    /// The tenant configured with the WhatsApp Business Account `waba_id`
    /// (its template and account webhooks name only the account).
    pub fn by_waba_id(&self, waba_id: &str) -> Result<Option<Tenant>, StoreError> {
        let Some(id) = self.store.get(BY_WABA_ID, waba_id.as_bytes())? else {
            return Ok(None);
        };
        Ok(self.get(&String::from_utf8_lossy(&id))?.filter(|t| t.waba_id.as_deref() == Some(waba_id)))
    }

    /// The enabled tenant an API key belongs to, with the key's record.
    pub fn by_api_key(&self, key: &str) -> Result<Option<(Tenant, ApiKey)>, StoreError> {
        let Some(record) = self.store.get_json::<ApiKey>(API_KEYS, hash_key(key).as_bytes())? else {
            return Ok(None);
        };
        Ok(self.get(&record.tenant)?.filter(|t| !t.disabled).map(|t| (t, record)))
    }

    /// The tenant's keys (never the keys themselves: only hashes are kept).
    pub fn api_keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError> {
        let mut out = Vec::new();
        for entry in self.store.scan_prefix(API_KEY_IDS, &crate::store::keys::tenant_prefix(tenant))? {
            let (_, hash) = entry?;
            out.extend(self.store.get_json::<ApiKey>(API_KEYS, &hash)?);
        }
        Ok(out)
    }

    /// Revokes a key at once; false if the tenant has no such key.
    pub fn revoke_api_key(&self, tenant: &str, key_id: &str) -> Result<bool, StoreError> {
        let id_key = crate::store::keys::join(&[tenant.as_bytes(), key_id.as_bytes()]);
        let Some(hash) = self.store.get(API_KEY_IDS, &id_key)? else { return Ok(false) };
        let mut batch = Batch::new();
        batch.delete(API_KEYS, hash);
        batch.delete(API_KEY_IDS, id_key);
        self.store.commit(batch)?;
        Ok(true)
    }

    pub fn list(&self) -> Result<Vec<Tenant>, StoreError> {
        self.store.scan_prefix(TENANTS, b"")?.values().collect()
    }

    /// Whether any tenant accepts `token` in the verification handshake.
    pub fn accepts_verify_token(&self, token: &str) -> Result<bool, StoreError> {
        Ok(self.list()?.iter().any(|t| !t.disabled && t.verify_token.as_deref() == Some(token)))
    }

    /// Creates a tenant; [`TenantError::Exists`] if the id is taken, even
    /// by a create racing this one.
    pub fn create(&self, tenant: &Tenant) -> Result<(), TenantError> {
        match self.write(tenant, None) {
            Err(TenantError::Store(StoreError::Taken { tree })) if tree == TENANTS.0 => {
                Err(TenantError::Exists(tenant.id.clone()))
            }
            other => other,
        }
    }

    /// Creates or replaces a tenant, keeping the phone-number index exact.
    pub fn put(&self, tenant: &Tenant) -> Result<(), TenantError> {
        let previous = self.store.get_json_as_read::<Tenant>(TENANTS, tenant.id.as_bytes())?;
        self.write(tenant, previous.as_ref().map(|(t, bytes)| (t, bytes.clone())))
    }

    /// Writes `tenant` only if the stored record is still `previous`, the
    /// bytes as read (`None`: absent), so two writers never silently
    /// replace each other.
    fn write(&self, tenant: &Tenant, previous: Option<(&Tenant, Vec<u8>)>) -> Result<(), TenantError> {
        let mut batch = Batch::new();
        let previous = match previous {
            None => {
                batch.require_absent(TENANTS, tenant.id.as_bytes());
                None
            }
            Some((p, bytes)) => {
                batch.require_value(TENANTS, tenant.id.as_bytes(), Some(bytes));
                Some(p)
            }
        };
        for phone in &tenant.phone_number_ids {
            match self.store.get(BY_PHONE_ID, phone.as_bytes())? {
                Some(owner) if owner != tenant.id.as_bytes() => {
                    return Err(TenantError::PhoneNumberTaken(phone.clone()));
                }
                Some(owner) => batch.require_value(BY_PHONE_ID, phone.as_bytes(), Some(owner)),
                None => batch.require_absent(BY_PHONE_ID, phone.as_bytes()),
            }
            batch.put(BY_PHONE_ID, phone.as_bytes(), tenant.id.as_bytes());
        }
        for old in previous.iter().flat_map(|p| &p.phone_number_ids) {
            if !tenant.phone_number_ids.contains(old) {
                batch.delete(BY_PHONE_ID, old.as_bytes());
            }
        }
        if let Some(old) = previous.and_then(|p| p.waba_id.as_ref()).filter(|w| tenant.waba_id.as_ref() != Some(*w)) {
            batch.delete(BY_WABA_ID, old.as_bytes());
        }
        if let Some(waba) = &tenant.waba_id {
            batch.put(BY_WABA_ID, waba.as_bytes(), tenant.id.as_bytes());
        }
        batch.put_json(TENANTS, tenant.id.as_bytes(), tenant)?;
        match self.store.commit(batch) {
            // A racing write took one of the phone-number ids: say which.
            Err(StoreError::Taken { tree }) if tree == BY_PHONE_ID.0 => {
                for phone in &tenant.phone_number_ids {
                    if self.store.get(BY_PHONE_ID, phone.as_bytes())?.is_some_and(|o| o != tenant.id.as_bytes()) {
                        return Err(TenantError::PhoneNumberTaken(phone.clone()));
                    }
                }
                Err(StoreError::Conflict.into())
            }
            other => Ok(other?),
        }
    }

    /// Creates an API key for `tenant`; the key itself is returned once and
    /// only its hash is kept.
    pub fn create_api_key(&self, tenant: &str, label: &str, now: Millis) -> Result<(String, ApiKey), StoreError> {
        let key = generate_secret("sbk_");
        let record = self.register_api_key(tenant, &key, label, now)?;
        Ok((key, record))
    }

    /// Registers a known key (the demo tenant's, kept across restarts).
    pub fn register_api_key(&self, tenant: &str, key: &str, label: &str, now: Millis) -> Result<ApiKey, StoreError> {
        let record =
            ApiKey { id: crate::model::new_id("key"), tenant: tenant.into(), label: label.into(), created_at: now };
        let hash = hash_key(key);
        let mut batch = Batch::new();
        batch.put_json(API_KEYS, hash.as_bytes(), &record)?;
        batch.put(API_KEY_IDS, crate::store::keys::join(&[tenant.as_bytes(), record.id.as_bytes()]), hash.as_bytes());
        self.store.commit(batch)?;
        Ok(record)
    }
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// 32 random bytes, hex, with a readable prefix.
pub fn generate_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{prefix}{}", hex::encode(bytes))
}
