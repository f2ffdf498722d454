//! A tenant's CRM endpoints, their health, and dead letters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::SyncEvent;
use crate::clock::Millis;
use crate::store::{Batch, Result, Store, Tree, keys};

const ENDPOINTS: Tree = Tree("sync.endpoints");
const DEAD: Tree = Tree("sync.dead_letters");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    pub id: String,
    pub tenant: String,
    pub url: String,
    /// Signs every delivery; shown once at creation, never returned.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    #[schema(write_only)]
    pub secret: String,
    /// Event types to send (empty: all).
    pub events: Vec<String>,
    pub created_at: Millis,
}

impl Endpoint {
    pub fn wants(&self, kind: super::EventKind) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind.as_str())
    }
}

/// Delivery health of an endpoint, since the host started.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[schema(as = EndpointHealth)]
pub struct Health {
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead_lettered: u64,
    pub consecutive_failures: u32,
    /// While failing: no attempt before this time (ms).
    pub retry_at: Option<Millis>,
    pub last_success_at: Option<Millis>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    pub id: String,
    pub endpoint: String,
    pub event: SyncEvent,
    pub attempts: u32,
    pub last_error: String,
    pub dead_at: Millis,
}

#[derive(Clone)]
pub struct Endpoints {
    store: Store,
    /// By (tenant, endpoint id): nothing about an endpoint's delivery is
    /// ever shared with, or readable by, another tenant.
    health: Arc<Mutex<HashMap<(String, String), Health>>>,
}

impl Endpoints {
    pub fn new(store: Store) -> Self {
        Endpoints { store, health: Arc::default() }
    }

    pub fn list(&self, tenant: &str) -> Result<Vec<Endpoint>> {
        self.store.scan_prefix(ENDPOINTS, &keys::tenant_prefix(tenant))?.values().collect()
    }

    pub fn all(&self) -> Result<Vec<Endpoint>> {
        self.store.scan_prefix(ENDPOINTS, b"")?.values().collect()
    }

    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<Endpoint>> {
        self.store.get_json(ENDPOINTS, &keys::join(&[tenant.as_bytes(), id.as_bytes()]))
    }

    pub fn put(&self, e: &Endpoint) -> Result<()> {
        let mut batch = Batch::new();
        batch.put_json(ENDPOINTS, keys::join(&[e.tenant.as_bytes(), e.id.as_bytes()]), e)?;
        self.store.commit(batch)
    }

    pub fn delete(&self, e: &Endpoint) -> Result<()> {
        let mut batch = Batch::new();
        batch.delete(ENDPOINTS, keys::join(&[e.tenant.as_bytes(), e.id.as_bytes()]));
        self.store.commit(batch)
    }

    pub fn health(&self, endpoint: &Endpoint) -> Health {
        let key = (endpoint.tenant.clone(), endpoint.id.clone());
        self.health.lock().ok().and_then(|h| h.get(&key).cloned()).unwrap_or_default()
    }

    pub fn update_health(&self, endpoint: &Endpoint, f: impl FnOnce(&mut Health)) {
        if let Ok(mut h) = self.health.lock() {
            f(h.entry((endpoint.tenant.clone(), endpoint.id.clone())).or_default());
        }
    }

    pub fn add_dead(&self, batch: &mut Batch, tenant: &str, d: &DeadLetter) -> Result<()> {
        batch.put_json(DEAD, keys::join(&[tenant.as_bytes(), d.id.as_bytes()]), d)
    }

    pub fn dead_letters(&self, tenant: &str) -> Result<Vec<DeadLetter>> {
        self.store.scan_prefix(DEAD, &keys::tenant_prefix(tenant))?.values().collect()
    }

    pub fn dead_letter(&self, tenant: &str, id: &str) -> Result<Option<DeadLetter>> {
        self.store.get_json(DEAD, &keys::join(&[tenant.as_bytes(), id.as_bytes()]))
    }

    pub fn remove_dead(&self, batch: &mut Batch, tenant: &str, id: &str) {
        batch.delete(DEAD, keys::join(&[tenant.as_bytes(), id.as_bytes()]));
    }
}
