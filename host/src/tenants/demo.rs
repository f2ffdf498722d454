//! The `demo` tenant: created on start so a fresh clone works end to end.
//!
//! Its generated credentials are kept in `<data_dir>/demo.env` (owner-only)
//! so they survive restarts and the walkthrough can `source` them.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Tenant, TenantError, Tenants, generate_secret};
use crate::clock::Millis;
use crate::config::DemoConfig;

pub const DEMO_TENANT: &str = "demo";

#[derive(Debug, Clone)]
pub struct DemoCredentials {
    pub phone_number_id: String,
    pub app_secret: String,
    pub api_key: String,
    pub env_file: std::path::PathBuf,
}

/// Creates or refreshes the demo tenant from `config`, generating what the
/// config leaves unset (or reusing what an earlier start generated).
pub fn ensure_demo(
    tenants: &Tenants,
    config: &DemoConfig,
    data_dir: &Path,
    now: Millis,
) -> Result<DemoCredentials, TenantError> {
    let env_file = data_dir.join("demo.env");
    let saved = read_env(&env_file);
    let pick = |configured: &Option<String>, saved_key: &str, prefix: &str| {
        configured.clone().or_else(|| saved.get(saved_key).cloned()).unwrap_or_else(|| generate_secret(prefix))
    };
    let app_secret = pick(&config.app_secret, "SWITCHBOARD_DEMO_APP_SECRET", "");
    let api_key = pick(&config.api_key, "SWITCHBOARD_DEMO_API_KEY", "sbk_demo_");
    let existing = tenants.get(DEMO_TENANT)?;
    let tenant = Tenant {
        id: DEMO_TENANT.into(),
        name: "Demo".into(),
        phone_number_ids: vec![config.phone_number_id.clone()],
        app_secret: app_secret.clone(),
        verify_token: None,
        access_token: config.access_token.clone(),
        waba_id: config.waba_id.clone(),
        read_receipts: existing.as_ref().is_some_and(|t| t.read_receipts),
        messages_per_second: existing.as_ref().and_then(|t| t.messages_per_second),
        unique_users_per_day: existing.as_ref().and_then(|t| t.unique_users_per_day),
        timezone: config.timezone.clone(),
        default_region: config.default_region.clone(),
        disabled: false,
        limits: existing.as_ref().and_then(|t| t.limits.clone()),
        automation: existing.as_ref().and_then(|t| t.automation),
        opt_out_keywords: existing.as_ref().map_or_else(super::default_opt_out, |t| t.opt_out_keywords.clone()),
        opt_in_keywords: existing.as_ref().map_or_else(super::default_opt_in, |t| t.opt_in_keywords.clone()),
        created_at: existing.as_ref().map_or(now, |t| t.created_at),
        updated_at: now,
    };
    if existing.as_ref() != Some(&tenant) {
        tenants.put(&tenant)?;
    }
    if tenants.by_api_key(&api_key)?.is_none_or(|(t, _)| t.id != DEMO_TENANT) {
        tenants.register_api_key(DEMO_TENANT, &api_key, "demo", now)?;
    }
    let contents = format!(
        "# Demo tenant credentials, written by `switchboard serve`. Source it: . {}\n\
         SWITCHBOARD_DEMO_PHONE_NUMBER_ID={}\nSWITCHBOARD_DEMO_APP_SECRET={}\nSWITCHBOARD_DEMO_API_KEY={}\n",
        env_file.display(),
        config.phone_number_id,
        app_secret,
        api_key
    );
    write_private(&env_file, &contents)
        .map_err(|e| TenantError::Store(crate::store::StoreError::Engine(format!("{}: {e}", env_file.display()))))?;
    Ok(DemoCredentials { phone_number_id: config.phone_number_id.clone(), app_secret, api_key, env_file })
}

/// `KEY=value` lines of a previous `demo.env`, if any.
pub fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
