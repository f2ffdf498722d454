//! Uploaded plugin versions: content-addressed, immutable, per tenant.
//!
//! The component bytes are stored once per sha256 (two tenants uploading
//! the same file share the blob); each tenant sees only the versions in
//! its own list. A tenant's active version per world, with the history of
//! what was active before, is one record, so activation and rollback are a
//! single atomic write.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::World;
use crate::clock::Millis;
use crate::store::{Batch, Result, Store, Tree, keys};

const BLOBS: Tree = Tree("plugins.blobs");
/// `hash ␟ tenant ␟ world` for every version whose bytes are kept: a blob
/// is deleted when the last version using it is retired.
const BLOB_REFS: Tree = Tree("plugins.blob_refs");
const VERSIONS: Tree = Tree("plugins.versions");
const ACTIVE: Tree = Tree("plugins.active");

/// How many earlier activations are remembered for rollback.
const HISTORY: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Suspension {
    pub at: Millis,
    /// What the failing calls said, e.g. `fuel exhausted: …`.
    pub reason: String,
    /// Failures of the version in the breaker's window when it tripped…
    #[serde(default)]
    pub failures: u32,
    /// …out of this many calls.
    #[serde(default)]
    pub calls: u32,
    /// The version (or `builtin`) that took over.
    pub replaced_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionRecord {
    /// sha256 of the component, hex: the version's identity.
    pub version: String,
    pub world: World,
    /// The `switchboard:plugin` WIT version the component targets.
    pub wit_version: String,
    pub size: usize,
    pub uploaded_at: Millis,
    /// The API key (label and id) that uploaded it.
    pub uploaded_by: String,
    /// Set when the host took the version out of service after repeated failures.
    pub suspended: Option<Suspension>,
    /// Set when the version fell out of the tenant's retention limit: its
    /// record and hash stay, its bytes are gone (upload it again to use it).
    #[serde(default)]
    pub retired_at: Option<Millis>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActiveRecord {
    /// The active version, or `None` for the built-in default.
    pub version: Option<String>,
    /// Versions active before, oldest first (`None`: the built-in).
    pub history: Vec<Option<String>>,
    pub changed_at: Millis,
    pub changed_by: String,
}

#[derive(Clone)]
pub struct Versions {
    store: Store,
}

fn version_key(tenant: &str, world: World, hash: &str) -> Vec<u8> {
    keys::join(&[tenant.as_bytes(), world.as_str().as_bytes(), hash.as_bytes()])
}

fn ref_key(hash: &str, tenant: &str, world: World) -> Vec<u8> {
    keys::join(&[hash.as_bytes(), tenant.as_bytes(), world.as_str().as_bytes()])
}

fn active_key(tenant: &str, world: World) -> Vec<u8> {
    keys::join(&[tenant.as_bytes(), world.as_str().as_bytes()])
}

impl Versions {
    pub fn new(store: Store) -> Self {
        Versions { store }
    }

    pub fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        self.store.get(BLOBS, hash.as_bytes())
    }

    pub fn get(&self, tenant: &str, world: World, hash: &str) -> Result<Option<VersionRecord>> {
        self.store.get_json(VERSIONS, &version_key(tenant, world, hash))
    }

    /// The tenant's versions of `world`, newest upload first.
    pub fn list(&self, tenant: &str, world: World) -> Result<Vec<VersionRecord>> {
        let prefix = keys::prefix(&[tenant.as_bytes(), world.as_str().as_bytes()]);
        let mut all: Vec<VersionRecord> = self.store.scan_prefix(VERSIONS, &prefix)?.values().collect::<Result<_>>()?;
        all.sort_by(|a, b| b.uploaded_at.cmp(&a.uploaded_at).then_with(|| a.version.cmp(&b.version)));
        Ok(all)
    }

    /// Stores a new version (and its bytes, if no one stored them before).
    pub fn add(&self, tenant: &str, record: &VersionRecord, wasm: &[u8]) -> Result<()> {
        let mut batch = Batch::new();
        if !self.store.contains(BLOBS, record.version.as_bytes())? {
            batch.put(BLOBS, record.version.as_bytes(), wasm);
        }
        let key = version_key(tenant, record.world, &record.version);
        batch.require_absent(VERSIONS, key.clone());
        batch.put_json(VERSIONS, key, record)?;
        batch.put(BLOB_REFS, ref_key(&record.version, tenant, record.world), []);
        self.store.commit(batch)
    }

    /// Retires a version: its record stays, marked; its bytes go once no
    /// other version (of any tenant) uses them.
    pub fn retire(&self, tenant: &str, record: &VersionRecord, now: Millis) -> Result<()> {
        let hash = &record.version;
        let mine = ref_key(hash, tenant, record.world);
        let others = self
            .store
            .scan_prefix(BLOB_REFS, &keys::prefix(&[hash.as_bytes()]))?
            .keys()
            .filter(|k| k.as_ref().map_or(true, |k| *k != mine))
            .count();
        let mut batch = Batch::new();
        let mut retired = record.clone();
        retired.retired_at = Some(now);
        batch.put_json(VERSIONS, version_key(tenant, record.world, hash), &retired)?;
        batch.delete(BLOB_REFS, mine);
        if others == 0 {
            batch.delete(BLOBS, hash.as_bytes());
        }
        self.store.commit(batch)
    }

    /// Versions uploaded before retention existed have no blob reference:
    /// records them once, at start.
    pub fn backfill_blob_refs(&self) -> Result<usize> {
        if self.store.first(BLOB_REFS)?.is_some() {
            return Ok(0);
        }
        let mut batch = Batch::new();
        let mut n = 0;
        for entry in self.store.scan_prefix(VERSIONS, b"")? {
            let (k, v) = entry?;
            let record: VersionRecord = crate::store::decode(VERSIONS, &v)?;
            let Some(tenant) = k.split(|&b| b == keys::SEP).next() else { continue };
            if record.retired_at.is_none() {
                batch.put(BLOB_REFS, ref_key(&record.version, &String::from_utf8_lossy(tenant), record.world), []);
                n += 1;
            }
        }
        self.store.commit(batch)?;
        Ok(n)
    }

    /// Walks the activation history back: the most recent earlier entry
    /// `usable` accepts becomes active, and the entries after it (the
    /// current version among them) are dropped, so the next rollback goes
    /// further back rather than forward again. `None` if there is nothing
    /// to go back to.
    pub fn roll_back(
        &self,
        tenant: &str,
        world: World,
        by: &str,
        now: Millis,
        usable: impl Fn(Option<&str>) -> Result<bool>,
    ) -> Result<Option<ActiveRecord>> {
        let key = active_key(tenant, world);
        let Some((previous, read)) = self.store.get_json_as_read::<ActiveRecord>(ACTIVE, &key)? else {
            return Ok(None);
        };
        let mut found = None;
        for (i, candidate) in previous.history.iter().enumerate().rev() {
            if candidate != &previous.version && usable(candidate.as_deref())? {
                found = Some(i);
                break;
            }
        }
        let mut record = previous.clone();
        match found {
            Some(i) => {
                record.version = record.history[i].clone();
                record.history.truncate(i);
            }
            // Nothing earlier: back to the built-in, unless already there.
            None if previous.version.is_some() => {
                record.version = None;
                record.history.clear();
            }
            None => return Ok(None),
        }
        record.changed_at = now;
        record.changed_by = by.to_string();
        let mut batch = Batch::new();
        batch.require_value(ACTIVE, key.clone(), Some(read));
        batch.put_json(ACTIVE, key, &record)?;
        self.store.commit(batch)?;
        Ok(Some(record))
    }

    pub fn put(&self, tenant: &str, record: &VersionRecord) -> Result<()> {
        let mut batch = Batch::new();
        batch.put_json(VERSIONS, version_key(tenant, record.world, &record.version), record)?;
        self.store.commit(batch)
    }

    pub fn active(&self, tenant: &str, world: World) -> Result<ActiveRecord> {
        Ok(self.store.get_json(ACTIVE, &active_key(tenant, world))?.unwrap_or_default())
    }

    /// Makes `version` active (None: the built-in), remembering what was.
    /// Optionally updates a version record in the same write (suspension).
    pub fn set_active(
        &self,
        tenant: &str,
        world: World,
        version: Option<&str>,
        by: &str,
        now: Millis,
        also: Option<&VersionRecord>,
    ) -> Result<ActiveRecord> {
        let key = active_key(tenant, world);
        let (previous, read) = self.store.get_json_as_read::<ActiveRecord>(ACTIVE, &key)?.unzip();
        let mut record = previous.clone().unwrap_or_default();
        if record.version.as_deref() != version || previous.is_none() {
            if previous.is_some() {
                record.history.push(record.version.take());
            }
            let excess = record.history.len().saturating_sub(HISTORY);
            record.history.drain(..excess);
        }
        record.version = version.map(String::from);
        record.changed_at = now;
        record.changed_by = by.to_string();
        let mut batch = Batch::new();
        batch.require_value(ACTIVE, key.clone(), read);
        batch.put_json(ACTIVE, key, &record)?;
        if let Some(v) = also {
            batch.put_json(VERSIONS, version_key(tenant, v.world, &v.version), v)?;
        }
        self.store.commit(batch)?;
        Ok(record)
    }

    /// Every (tenant, world) with an active record, for loading at start.
    pub fn all_active(&self) -> Result<Vec<(String, World, ActiveRecord)>> {
        let mut out = Vec::new();
        for entry in self.store.scan_prefix(ACTIVE, b"")? {
            let (k, v) = entry?;
            let mut parts = k.split(|&b| b == keys::SEP);
            let (Some(tenant), Some(world)) = (parts.next(), parts.next()) else { continue };
            let Some(world) = World::parse(&String::from_utf8_lossy(world)) else { continue };
            out.push((String::from_utf8_lossy(tenant).into_owned(), world, crate::store::decode(ACTIVE, &v)?));
        }
        Ok(out)
    }
}
