//! Which plugin each tenant runs for each world, and with what settings.
//!
//! A tenant without its own version runs the built-in default for the
//! world. Swapping is a pointer swap under a lock: a decision that already
//! took its `Plugin` finishes on it; the next one gets the new version.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use super::{Plugin, PluginError, PluginLogs, Runtime, World};
use crate::store::{Batch, Store, StoreError, Tree, keys};

const CONFIG: Tree = Tree("plugins.config");

/// The default router, built from `plugins/default-router` by `build.rs`.
pub const DEFAULT_ROUTER_WASM: &[u8] = include_bytes!(env!("SB_BUILT_DEFAULT_ROUTER_WASM"));

pub struct Registry {
    runtime: Arc<Runtime>,
    store: Store,
    builtins: HashMap<World, Plugin>,
    active: RwLock<HashMap<(String, World), Plugin>>,
    pub logs: PluginLogs,
}

impl Registry {
    pub fn new(runtime: Arc<Runtime>, store: Store) -> Result<Registry, PluginError> {
        let started = std::time::Instant::now();
        let router = runtime.compile(DEFAULT_ROUTER_WASM, Some("default-router"))?;
        tracing::info!(hash = %router.meta.hash, elapsed_ms = started.elapsed().as_millis() as u64, "built-in default router ready");
        let builtins = HashMap::from([(World::Router, router)]);
        Ok(Registry { runtime, store, builtins, active: RwLock::default(), logs: PluginLogs::new(500) })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The plugin `tenant` runs for `world` right now, if any.
    pub fn active(&self, tenant: &str, world: World) -> Option<Plugin> {
        let own = self.active.read().ok().and_then(|a| a.get(&(tenant.to_string(), world)).cloned());
        own.or_else(|| self.builtins.get(&world).cloned())
    }

    pub fn builtin(&self, world: World) -> Option<Plugin> {
        self.builtins.get(&world).cloned()
    }

    /// Makes `plugin` the one `tenant` runs for its world from the next
    /// decision on.
    pub fn activate(&self, tenant: &str, plugin: Plugin) {
        if let Ok(mut a) = self.active.write() {
            a.insert((tenant.to_string(), plugin.meta.world), plugin);
        }
    }

    /// Back to the built-in default.
    pub fn deactivate(&self, tenant: &str, world: World) {
        if let Ok(mut a) = self.active.write() {
            a.remove(&(tenant.to_string(), world));
        }
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
