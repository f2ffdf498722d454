//! Creating and changing tenants: what the operator may send, what makes a
//! tenant valid, and the guarded write. The operator API parses and calls
//! these; nothing else checks a tenant.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{TENANTS, Tenant, TenantError, Tenants};
use crate::clock::Millis;
use crate::config::{PluginConfig, PluginLimits, StormLimits};
use crate::store::optimistic;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Lower-case letters, digits and `-`, 2–40 long.
    pub id: String,
    pub name: String,
    pub phone_number_ids: Vec<String>,
    pub app_secret: String,
    pub access_token: Option<String>,
    pub verify_token: Option<String>,
    /// The WhatsApp Business Account id (for message templates).
    pub waba_id: Option<String>,
    /// Mark messages read when answered (default: no).
    #[serde(default)]
    pub read_receipts: bool,
    /// Per number (default: the operator's, 80).
    pub messages_per_second: Option<u32>,
    /// Meta's messaging limit per number (default: unlimited).
    pub unique_users_per_day: Option<u32>,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default = "default_region")]
    pub default_region: String,
    pub limits: Option<PluginLimits>,
    /// Caps on automated messages per contact; default: the operator's.
    pub automation: Option<StormLimits>,
    /// Default: STOP, BAJA, PARAR, SAIR, UNSUBSCRIBE…
    pub opt_out_keywords: Option<Vec<String>>,
    /// Default: START, ALTA, VOLTAR…
    pub opt_in_keywords: Option<Vec<String>>,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_region() -> String {
    "US".into()
}

/// Fields to change; absent fields keep their value. `access_token: null`
/// removes the token (sends become dry runs).
#[derive(Deserialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub phone_number_ids: Option<Vec<String>>,
    pub app_secret: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub access_token: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub verify_token: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub waba_id: Option<Option<String>>,
    pub read_receipts: Option<bool>,
    /// `null` goes back to the operator's.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub messages_per_second: Option<Option<u32>>,
    /// `null`: unlimited.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub unique_users_per_day: Option<Option<u32>>,
    pub timezone: Option<String>,
    pub default_region: Option<String>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<PluginLimits>)]
    pub limits: Option<Option<PluginLimits>>,
    /// `null` goes back to the operator's caps.
    pub automation: Option<Option<StormLimits>>,
    pub disabled: Option<bool>,
    pub opt_out_keywords: Option<Vec<String>>,
    pub opt_in_keywords: Option<Vec<String>>,
}

/// Distinguishes "absent" (keep) from `null` (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

impl TenantPatch {
    fn apply(self, t: &mut Tenant) {
        let TenantPatch {
            name,
            phone_number_ids,
            app_secret,
            access_token,
            verify_token,
            waba_id,
            read_receipts,
            messages_per_second,
            unique_users_per_day,
            timezone,
            default_region,
            limits,
            automation,
            disabled,
            opt_out_keywords,
            opt_in_keywords,
        } = self;
        set(&mut t.name, name.map(|v| v.trim().to_string()));
        set(&mut t.phone_number_ids, phone_number_ids);
        set(&mut t.app_secret, app_secret);
        set(&mut t.access_token, access_token);
        set(&mut t.verify_token, verify_token);
        set(&mut t.waba_id, waba_id);
        set(&mut t.read_receipts, read_receipts);
        set(&mut t.messages_per_second, messages_per_second);
        set(&mut t.unique_users_per_day, unique_users_per_day);
        set(&mut t.timezone, timezone);
        set(&mut t.default_region, default_region.map(|v| v.to_ascii_uppercase()));
        set(&mut t.limits, limits);
        set(&mut t.automation, automation);
        set(&mut t.disabled, disabled);
        set(&mut t.opt_out_keywords, opt_out_keywords);
        set(&mut t.opt_in_keywords, opt_in_keywords);
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

impl Tenants {
    /// Creates a tenant from what the operator sent, once it is valid.
    pub fn create_from(&self, new: NewTenant, plugins: &PluginConfig, now: Millis) -> Result<Tenant, TenantError> {
        let tenant = Tenant {
            id: new.id,
            name: new.name.trim().to_string(),
            phone_number_ids: new.phone_number_ids,
            app_secret: new.app_secret,
            verify_token: new.verify_token,
            access_token: new.access_token,
            waba_id: new.waba_id,
            read_receipts: new.read_receipts,
            messages_per_second: new.messages_per_second,
            unique_users_per_day: new.unique_users_per_day,
            timezone: new.timezone,
            default_region: new.default_region.to_ascii_uppercase(),
            disabled: false,
            limits: new.limits,
            automation: new.automation,
            opt_out_keywords: new.opt_out_keywords.unwrap_or_else(super::default_opt_out),
            opt_in_keywords: new.opt_in_keywords.unwrap_or_else(super::default_opt_in),
            created_at: now,
            updated_at: now,
        };
        validate(&tenant, plugins)?;
        self.create(&tenant)?;
        tracing::info!(tenant = %tenant.id, "tenant created");
        Ok(tenant)
    }

    /// Applies `patch` to the tenant as stored, guarded on what was read: a
    /// concurrent change is re-read and the patch applied to it, never
    /// overwritten.
    pub fn update(
        &self,
        id: &str,
        patch: TenantPatch,
        plugins: &PluginConfig,
        now: Millis,
    ) -> Result<Tenant, TenantError> {
        let changed = optimistic(|| {
            let (read, bytes) = self
                .store
                .get_json_as_read::<Tenant>(TENANTS, id.as_bytes())?
                .ok_or_else(|| TenantError::NotFound(id.to_string()))?;
            let mut t = read.clone();
            patch.clone().apply(&mut t);
            t.updated_at = now;
            validate(&t, plugins)?;
            match self.write(&t, Some((&read, bytes))) {
                Ok(()) => Ok(Some(t)),
                Err(TenantError::Store(crate::store::StoreError::Conflict)) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        let t = changed.ok_or(TenantError::Store(crate::store::StoreError::Conflict))?;
        tracing::info!(tenant = %t.id, disabled = t.disabled, "tenant updated");
        Ok(t)
    }
}

/// Why `t` cannot be stored, if it cannot.
fn validate(t: &Tenant, plugins: &PluginConfig) -> Result<(), TenantError> {
    let bad = |msg: String| Err(TenantError::Invalid(msg));
    let id_ok = (2..=40).contains(&t.id.len())
        && t.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        return bad(format!("id {:?}: use 2–40 lower-case letters, digits and -", t.id));
    }
    if t.name.trim().is_empty() {
        return bad("name must not be empty".into());
    }
    if t.messages_per_second.is_some_and(|n| n == 0 || n > 1000) {
        return bad("messages_per_second: 1 to 1000 (Meta's highest throughput)".into());
    }
    if t.unique_users_per_day == Some(0) {
        return bad("unique_users_per_day: at least 1 (null: unlimited)".into());
    }
    if t.phone_number_ids.is_empty()
        || t.phone_number_ids.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return bad("phone_number_ids: one or more WhatsApp phone-number ids (digits)".into());
    }
    if t.app_secret.len() < 8 {
        return bad("app_secret: the Meta app secret (at least 8 characters)".into());
    }
    if t.timezone.parse::<chrono_tz::Tz>().is_err() {
        return bad(format!("timezone {:?} is not an IANA timezone (e.g. America/Sao_Paulo)", t.timezone));
    }
    if t.default_region.parse::<phonenumber::country::Id>().is_err() {
        return bad(format!("default_region {:?} is not an ISO region (e.g. BR)", t.default_region));
    }
    if let Some(l) = &t.limits {
        if l.fuel == 0 || l.deadline.is_zero() || l.memory_bytes < 64 * 1024 {
            return bad("limits: fuel, deadline and memory_bytes (≥ 64 KiB) must be set".into());
        }
        if l.memory_bytes > plugins.max_memory_bytes || l.table_elements > plugins.max_table_elements {
            return bad(format!(
                "limits: memory_bytes ≤ {} and table_elements ≤ {} (the operator's ceilings)",
                plugins.max_memory_bytes, plugins.max_table_elements
            ));
        }
    }
    Ok(())
}
