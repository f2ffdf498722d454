//! Which plugin each tenant runs for each world, and with what settings.
//!
//! A tenant without its own active version runs the built-in default for
//! the world. Swapping is a pointer swap under a lock: a decision that
//! already took its [`Plugin`] finishes on it; the next one gets the new
//! version. Compiled plugins are shared by hash, so a rollback to an
//! earlier version costs no compilation.
//!
//! The registry also watches health (see `health`): a version that fails
//! too often is suspended and the last good version (or the built-in)
//! takes over; a contact whose own messages keep failing it is quarantined
//! instead. The tenant can see both, with why, in the API.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use utoipa::ToSchema;

use super::compiled::Compiled;
use super::health::{BreakerConfig, Health, QuarantinedContact, Verdict, VersionHealth};
use super::versions::{ActiveRecord, Suspension, VersionRecord, Versions};
use super::{Failure, LogLine, Plugin, PluginError, PluginLogs, PluginMeta, Runtime, World};
use crate::clock::Millis;
use crate::config::{PluginConfig, PluginLimits};
use crate::store::{Batch, Store, StoreError, Tree, keys};

const CONFIG: Tree = Tree("plugins.config");

/// The default router, built from `plugins/default-router` by `build.rs`.
pub const DEFAULT_ROUTER_WASM: &[u8] = include_bytes!(env!("SB_BUILT_DEFAULT_ROUTER_WASM"));
/// The default follow-up planner, from `plugins/adaptive-follow-up`.
pub const ADAPTIVE_FOLLOW_UP_WASM: &[u8] = include_bytes!(env!("SB_BUILT_ADAPTIVE_FOLLOW_UP_WASM"));
/// The default feedback plugin, from `plugins/engagement-feedback`.
pub const ENGAGEMENT_FEEDBACK_WASM: &[u8] = include_bytes!(env!("SB_BUILT_ENGAGEMENT_FEEDBACK_WASM"));

/// Sample inputs every upload must handle (also in `examples/inputs/`).

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the component is {size} bytes; this tenant's limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Invalid(#[from] PluginError),
    #[error("this is a {found} component; upload it to /v1/plugins/{found} (or build the {expected} world)")]
    WorldMismatch { expected: World, found: World },
    #[error(
        "on the built-in sample input the plugin failed — {0}. Reproduce with \
         `switchboard plugin run FILE --world WORLD --input examples/inputs/…`"
    )]
    SampleRun(Failure),
    #[error("no version {0} of this world for this tenant")]
    UnknownVersion(String),
    #[error("version {0} was retired (beyond the tenant's retention limit, its bytes were deleted); upload it again")]
    Retired(String),
    #[error("nothing to roll back to: the built-in is already running")]
    NothingToRollBack,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A version as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionView {
    #[serde(flatten)]
    pub record: VersionRecord,
    pub active: bool,
    pub health: Health,
    /// Contacts whose decisions skip this version for now (their messages
    /// kept making it fail).
    pub quarantined_contacts: Vec<QuarantinedContact>,
}

pub struct Registry {
    runtime: Arc<Runtime>,
    store: Store,
    versions: Versions,
    builtins: HashMap<World, Plugin>,
    compiled: Mutex<Compiled>,
    active: RwLock<HashMap<(String, World), Plugin>>,
    health: Mutex<HashMap<(String, World, String), VersionHealth>>,
    breaker: BreakerConfig,
    /// Versions per tenant and world that keep their bytes.
    max_versions: usize,
    pub logs: PluginLogs,
}

impl Registry {
    /// Compiles the built-ins and loads every tenant's active versions
    /// (from the compile cache: no recompilation after a restart).
    pub fn new(runtime: Arc<Runtime>, store: Store, config: &PluginConfig) -> Result<Registry, PluginError> {
        let started = std::time::Instant::now();
        let router = runtime.compile(DEFAULT_ROUTER_WASM, Some("default-router"))?;
        let follow_up = runtime.compile(ADAPTIVE_FOLLOW_UP_WASM, Some("adaptive-follow-up"))?;
        let feedback = runtime.compile(ENGAGEMENT_FEEDBACK_WASM, Some("engagement-feedback"))?;
        for builtin in [&router, &follow_up, &feedback] {
            runtime.remember(builtin);
        }
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "built-in plugins ready");
        let registry = Registry {
            versions: Versions::new(store.clone()),
            runtime,
            store,
            builtins: HashMap::from([
                (World::Router, router),
                (World::FollowUp, follow_up),
                (World::Feedback, feedback),
            ]),
            compiled: Mutex::new(Compiled::new(config.compiled_cache_bytes)),
            active: RwLock::default(),
            health: Mutex::default(),
            breaker: config.into(),
            max_versions: config.max_versions.max(1),
            logs: PluginLogs::new(500),
        };
        let engine = |e: StoreError| PluginError::Engine(e.to_string());
        let refs = registry.versions.backfill_blob_refs().map_err(engine)?;
        if refs > 0 {
            tracing::info!(versions = refs, "recorded which versions use which stored components");
        }
        let active = registry.versions.all_active().map_err(engine)?;
        for (tenant, world, record) in active {
            let Some(hash) = record.version else { continue };
            match registry.load(&hash) {
                Ok(plugin) => registry.swap(&tenant, world, Some(plugin)),
                Err(e) => {
                    tracing::error!(%tenant, %world, %hash, error = %e, "cannot load the active version; using the built-in")
                }
            }
        }
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "plugins loaded");
        Ok(registry)
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The plugin `tenant` runs for `world` right now, if any.
    pub fn active(&self, tenant: &str, world: World) -> Option<Plugin> {
        let own = self.active.read().ok().and_then(|a| a.get(&(tenant.to_string(), world)).cloned());
        own.or_else(|| self.builtins.get(&world).cloned())
    }

    pub fn builtin(&self, world: World) -> Option<Plugin> {
        self.builtins.get(&world).cloned()
    }

    fn swap(&self, tenant: &str, world: World, plugin: Option<Plugin>) {
        if let Ok(mut a) = self.active.write() {
            match plugin {
                Some(p) => a.insert((tenant.to_string(), world), p),
                None => a.remove(&(tenant.to_string(), world)),
            };
        }
    }

    /// Makes `plugin` active in memory only (tests, `plugin run`).
    pub fn activate(&self, tenant: &str, plugin: Plugin) {
        let world = plugin.meta.world;
        self.swap(tenant, world, Some(plugin));
    }

    /// Back to the built-in default, in memory only.
    pub fn deactivate(&self, tenant: &str, world: World) {
        self.swap(tenant, world, None);
    }

    /// A stored version, compiled (shared by hash).
    fn load(&self, hash: &str) -> Result<Plugin, PluginError> {
        if let Some(p) = self.compiled.lock().ok().and_then(|mut c| c.get(hash)) {
            return Ok(p);
        }
        let wasm = self
            .versions
            .blob(hash)
            .map_err(|e| PluginError::Engine(e.to_string()))?
            .ok_or_else(|| PluginError::Engine(format!("the bytes of {hash} are missing")))?;
        let plugin = self.runtime.compile(&wasm, None)?;
        self.runtime.remember(&plugin);
        if let Ok(mut c) = self.compiled.lock() {
            c.insert(plugin.clone());
        }
        Ok(plugin)
    }

    /// Validates and stores an upload. Returns the version and whether it
    /// is new (uploading the same bytes again is harmless).
    pub fn upload(
        &self,
        tenant: &str,
        world: World,
        wasm: &[u8],
        limits: &PluginLimits,
        uploaded_by: &str,
        now: Millis,
    ) -> Result<(VersionRecord, bool), UploadError> {
        let plugin = self.check(wasm, Some(world), limits)?;
        let hash = plugin.meta.hash.clone();
        if let Some(existing) = self.versions.get(tenant, world, &hash)? {
            return Ok((existing, false));
        }
        let record = VersionRecord {
            version: hash.clone(),
            world,
            wit_version: plugin.meta.wit_version.clone(),
            size: wasm.len(),
            uploaded_at: now,
            uploaded_by: uploaded_by.to_string(),
            suspended: None,
            retired_at: None,
        };
        match self.versions.add(tenant, &record, wasm) {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                let existing = self.versions.get(tenant, world, &hash)?.ok_or(StoreError::Conflict)?;
                return Ok((existing, false));
            }
            Err(e) => return Err(e.into()),
        }
        // Only now, accepted, is its compiled code kept.
        self.runtime.remember(&plugin);
        if let Ok(mut c) = self.compiled.lock() {
            c.insert(plugin);
        }
        self.retire_old(tenant, world, now)?;
        Ok((record, true))
    }

    /// Keeps the bytes of the tenant's newest `max_versions` versions of
    /// `world`, of the active one and of those in its recent activation
    /// history (what a rollback reaches); older ones are retired: record
    /// and hash kept, bytes deleted.
    fn retire_old(&self, tenant: &str, world: World, now: Millis) -> Result<(), StoreError> {
        let active = self.versions.active(tenant, world)?;
        let recent: Vec<&str> =
            active.history.iter().rev().take(self.max_versions).flatten().map(String::as_str).collect();
        let keep = |v: &VersionRecord| {
            active.version.as_deref() == Some(v.version.as_str()) || recent.contains(&v.version.as_str())
        };
        for (i, v) in self.versions.list(tenant, world)?.iter().enumerate() {
            if i >= self.max_versions && v.retired_at.is_none() && !keep(v) {
                tracing::info!(%tenant, %world, version = %v.version, "version retired: over the retention limit");
                self.versions.retire(tenant, v, now)?;
            }
        }
        Ok(())
    }

    /// Bytes of compiled code held in memory (for `/metrics`).
    pub fn compiled_bytes(&self) -> usize {
        self.compiled.lock().map(|c| c.used()).unwrap_or_default()
    }

    /// Everything upload checks, without storing (see [`check`]).
    pub fn check(&self, wasm: &[u8], world: Option<World>, limits: &PluginLimits) -> Result<Plugin, UploadError> {
        check(&self.runtime, wasm, world, limits)
    }

    /// Activates a stored version (`None`: the built-in) for the next
    /// decision on. Activating a suspended version clears its suspension.
    pub fn activate_version(
        &self,
        tenant: &str,
        world: World,
        version: Option<&str>,
        by: &str,
        now: Millis,
    ) -> Result<ActiveRecord, UploadError> {
        let (plugin, cleared) = match version {
            Some(hash) => {
                let mut record = self
                    .versions
                    .get(tenant, world, hash)?
                    .ok_or_else(|| UploadError::UnknownVersion(hash.to_string()))?;
                if record.retired_at.is_some() {
                    return Err(UploadError::Retired(hash.to_string()));
                }
                let plugin = self.load(hash)?;
                let cleared = record.suspended.take().map(|_| record);
                (Some(plugin), cleared)
            }
            None => (None, None),
        };
        let active = self.versions.set_active(tenant, world, version, by, now, cleared.as_ref())?;
        if let Some(hash) = version
            && let Ok(mut h) = self.health.lock()
        {
            h.remove(&(tenant.to_string(), world, hash.to_string()));
        }
        self.swap(tenant, world, plugin);
        Ok(active)
    }

    /// Back to the version active before the current one (or to `to`).
    /// Each rollback walks one step further back through the activation
    /// history, past suspended and retired versions, down to the built-in.
    pub fn rollback(
        &self,
        tenant: &str,
        world: World,
        to: Option<&str>,
        by: &str,
        now: Millis,
    ) -> Result<ActiveRecord, UploadError> {
        if let Some(hash) = to {
            return self.activate_version(tenant, world, Some(hash), by, now);
        }
        let usable = |v: Option<&str>| self.usable(tenant, world, v);
        let Some(record) = self.versions.roll_back(tenant, world, by, now, usable)? else {
            return Err(UploadError::NothingToRollBack);
        };
        let plugin = record.version.as_deref().map(|hash| self.load(hash)).transpose()?;
        self.swap(tenant, world, plugin);
        Ok(record)
    }

    /// Whether `version` (`None`: the built-in) can be made active.
    fn usable(&self, tenant: &str, world: World, version: Option<&str>) -> Result<bool, StoreError> {
        let Some(hash) = version else { return Ok(true) };
        Ok(self.versions.get(tenant, world, hash)?.is_some_and(|v| v.suspended.is_none() && v.retired_at.is_none()))
    }

    /// The most recent earlier activation that can run (`None`: the
    /// built-in).
    fn last_good(&self, tenant: &str, world: World) -> Result<Option<String>, StoreError> {
        let active = self.versions.active(tenant, world)?;
        for candidate in active.history.iter().rev() {
            match candidate {
                None => return Ok(None),
                Some(hash) if Some(hash) == active.version.as_ref() => continue,
                Some(hash) if self.usable(tenant, world, Some(hash))? => return Ok(Some(hash.clone())),
                Some(_) => {}
            }
        }
        Ok(None)
    }

    /// Counts a call's outcome for `contact_id`; suspends the version, or
    /// quarantines the contact, when the breaker says so.
    pub fn record_outcome(
        &self,
        tenant: &str,
        meta: &PluginMeta,
        contact_id: &str,
        failure: Option<&Failure>,
        now: Millis,
    ) {
        let key = (tenant.to_string(), meta.world, meta.hash.clone());
        let verdict = {
            let Ok(mut all) = self.health.lock() else { return };
            all.entry(key).or_default().record(&self.breaker, contact_id, failure, now)
        };
        match verdict {
            Verdict::Fine => {}
            Verdict::Quarantine(q) => {
                let message = format!(
                    "contact {} quarantined for version {} until {} after {} failures (last: {}); its decisions take the fallback",
                    q.contact_id, meta.hash, q.until, q.failures, q.cause
                );
                tracing::warn!(%tenant, world = %meta.world, "{message}");
                let line = LogLine { at: now, level: "warn", source: "host", message };
                self.logs.append(tenant, meta.world, &meta.hash, vec![line]);
            }
            Verdict::Suspend { .. } if meta.builtin.is_some() => {}
            Verdict::Suspend { failures, calls, cause } => {
                if let Err(e) = self.suspend(tenant, meta, &cause, failures, calls, now) {
                    tracing::error!(%tenant, version = %meta.hash, error = %e, "suspending a failing version failed");
                }
            }
        }
    }

    /// Whether `contact_id`'s decisions skip `meta` now (see `health`).
    pub fn contact_quarantined(
        &self,
        tenant: &str,
        meta: &PluginMeta,
        contact_id: &str,
        now: Millis,
    ) -> Option<QuarantinedContact> {
        let key = (tenant.to_string(), meta.world, meta.hash.clone());
        self.health.lock().ok()?.get_mut(&key)?.quarantined(contact_id, now)
    }

    fn suspend(
        &self,
        tenant: &str,
        meta: &PluginMeta,
        reason: &str,
        failures: u32,
        calls: u32,
        now: Millis,
    ) -> Result<(), UploadError> {
        let world = meta.world;
        let Some(mut record) = self.versions.get(tenant, world, &meta.hash)? else { return Ok(()) };
        let active = self.versions.active(tenant, world)?;
        if active.version.as_deref() != Some(meta.hash.as_str()) {
            return Ok(()); // already replaced
        }
        let replacement = self.last_good(tenant, world)?;
        let replacement_plugin = match &replacement {
            Some(hash) => Some(self.load(hash)?),
            None => None,
        };
        let replaced_by = replacement.clone().unwrap_or_else(|| "builtin".into());
        record.suspended =
            Some(Suspension { at: now, reason: reason.to_string(), failures, calls, replaced_by: replaced_by.clone() });
        self.versions.set_active(
            tenant,
            world,
            replacement.as_deref(),
            "switchboard (automatic suspension)",
            now,
            Some(&record),
        )?;
        self.swap(tenant, world, replacement_plugin);
        let message = format!(
            "version {} suspended: {failures} of its last {calls} calls failed (last: {reason}); now running {replaced_by}",
            meta.hash
        );
        tracing::warn!(%tenant, %world, "{message}");
        self.logs.append(tenant, world, &meta.hash, vec![LogLine { at: now, level: "error", source: "host", message }]);
        Ok(())
    }

    /// The tenant's versions of `world` with their health.
    pub fn version_views(
        &self,
        tenant: &str,
        world: World,
        now: Millis,
    ) -> Result<(ActiveRecord, Vec<VersionView>), StoreError> {
        let active = self.versions.active(tenant, world)?;
        let health = self.health.lock().ok();
        let views = self
            .versions
            .list(tenant, world)?
            .into_iter()
            .map(|record| {
                let key = (tenant.to_string(), world, record.version.clone());
                let (health, quarantined_contacts) =
                    health.as_ref().and_then(|h| h.get(&key)).map(|h| h.view(now)).unwrap_or_default();
                VersionView {
                    active: active.version.as_deref() == Some(record.version.as_str()),
                    health,
                    quarantined_contacts,
                    record,
                }
            })
            .collect();
        Ok((active, views))
    }

    /// The tenant's settings for `world` (the plugin's `config` import).
    pub fn config(&self, tenant: &str, world: World) -> Result<Arc<BTreeMap<String, String>>, StoreError> {
        let key = keys::join(&[tenant.as_bytes(), world.as_str().as_bytes()]);
        Ok(Arc::new(self.store.get_json(CONFIG, &key)?.unwrap_or_default()))
    }

    pub fn set_config(&self, tenant: &str, world: World, config: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let key = keys::join(&[tenant.as_bytes(), world.as_str().as_bytes()]);
        let mut batch = Batch::new();
        batch.put_json(CONFIG, key, config)?;
        self.store.commit(batch)
    }
}

/// Everything an upload must pass, without storing anything: a component,
/// a served WIT version, the expected world, allowed imports, compiles, and
/// decides well on the world's built-in sample input within `limits`.
/// `switchboard plugin check` runs exactly this.
pub fn check(
    runtime: &Runtime,
    wasm: &[u8],
    world: Option<World>,
    limits: &PluginLimits,
) -> Result<Plugin, UploadError> {
    if wasm.len() > limits.component_bytes {
        return Err(UploadError::TooLarge { size: wasm.len(), limit: limits.component_bytes });
    }
    let plugin = runtime.compile(wasm, None)?;
    if let Some(expected) = world.filter(|w| *w != plugin.meta.world) {
        return Err(UploadError::WorldMismatch { expected, found: plugin.meta.world });
    }
    match super::call::sample_run(runtime, &plugin, limits) {
        Some(f) => Err(UploadError::SampleRun(f)),
        None => Ok(plugin),
    }
}
