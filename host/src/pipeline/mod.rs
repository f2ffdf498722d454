//! The pipeline: journaled events in, CRM records out.
//!
//! ```text
//! webhook ─► Pipeline::submit ─► journal (durable, de-duplicated)
//!        dispatcher ─► worker[hash(contact) % N] ─► identity ─► context
//!                   ─► router plugin ─► act ─► one atomic commit
//!                      (records + send queue + journal ack)
//! ```
//!
//! Events about one contact always go to the same worker, in journal
//! order; different contacts run in parallel. Workers are OS threads
//! because every step they take blocks (sled, a sandboxed Wasm call) and
//! is bounded (plugin limits), so they never stall the async runtime that
//! serves the webhook.

mod amend;
pub mod event;
mod followup;
mod inbound;
pub mod intake;
pub mod journal;
pub mod learn;
mod observe;
mod scheduler;
mod status;
mod timer;
mod worker;

pub use event::Event;
pub use intake::{Owners, Received, Replayed};
pub use journal::{Appended, Journal};
pub use scheduler::{Scheduler, StalledLane};
pub use worker::PipelineHandle;

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::context::ContextBuilder;
use crate::crm::Crm;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::outbound::Outbox;
use crate::plugins::Registry;
use crate::store::{Batch, Store, StoreError};
use crate::tenants::Tenants;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

impl PipelineError {
    /// A guard failed: another writer got there first (the API creating
    /// the same contact, say). Running the event again reads the winner's
    /// records and goes on from them.
    fn is_conflict(&self) -> bool {
        matches!(self, PipelineError::Store(StoreError::Conflict | StoreError::Taken { .. }))
    }

    /// Worth retrying the same event (storage trouble) rather than setting
    /// it aside (it can never be applied).
    fn is_transient(&self) -> bool {
        matches!(self, PipelineError::Store(StoreError::Engine(_) | StoreError::Closed)) || self.is_conflict()
    }
}

/// The stages an event passes through, and what they share.
pub struct Stages {
    pub store: Store,
    pub tenants: Tenants,
    pub crm: Crm,
    pub identity: Identity,
    pub context: ContextBuilder,
    pub plugins: Arc<Registry>,
    pub outbox: Outbox,
    pub timers: crate::followup::Timers,
    /// What staff do to automation (takeover, replies, pauses…).
    pub staff: crate::control::staff::StaffActions,
    pub importer: crate::identity::import::Importer,
    /// Webhook items that could not be read.
    pub quarantine: crate::ingest::quarantine::Quarantine,
    /// Webhook items as Meta sent them, for a while.
    pub raw: crate::ingest::raw::RawItems,
    /// Changes of webhook fields other than `messages`.
    pub fields: crate::ingest::fields::FieldEvents,
    /// The tenants' business numbers and their health.
    pub numbers: crate::numbers::Numbers,
    pub duplicates: crate::identity::duplicates::Duplicates,
    pub control: crate::control::Control,
    pub signals: crate::feedback::Signals,
    pub sync: crate::sync::Outbox,
    /// Inbound media files.
    pub media: crate::media::Media,
    /// The tenants' message templates.
    pub templates: crate::templates::Templates,
    /// The Graph API client every call to Meta goes through.
    pub graph: crate::outbound::GraphClient,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub config: Config,
}

pub struct Pipeline {
    pub journal: Journal,
    pub stages: Stages,
    /// Events in memory and the lanes applying them (see `scheduler`).
    pub scheduler: Arc<Scheduler>,
    /// Tenants with new journal entries (or room again), for the dispatcher.
    dirty: Mutex<HashSet<String>>,
    wake: Condvar,
}

impl Pipeline {
    pub fn new(stages: Stages) -> Result<Arc<Pipeline>, StoreError> {
        Ok(Arc::new(Pipeline {
            journal: Journal::open(stages.store.clone(), stages.config.webhook.dedup_window.as_millis() as i64)?,
            scheduler: Arc::new(Scheduler::new(stages.config.pipeline.heavy_event)),
            stages,
            dirty: Mutex::default(),
            wake: Condvar::new(),
        }))
    }

    /// Journals `events` (dropping redeliveries) together with `extra`
    /// writes. Durable only after [`Store::sync`].
    pub fn submit(&self, events: Vec<Event>, extra: Batch) -> Result<Appended, StoreError> {
        let tenants: HashSet<String> = events.iter().map(|e| e.tenant().to_string()).collect();
        let crm = &self.stages.crm;
        let applied = |e: &Event| match e {
            Event::Inbound(m) if m.completes_history_media() => {
                Ok(crm.message(&m.tenant, &m.wamid)?.is_some_and(|kept| kept.content.get("id").is_some()))
            }
            Event::Inbound(m) => crm.message_exists(&m.tenant, &m.wamid),
            _ => Ok(false),
        };
        let appended = self.journal.append(events, self.stages.clock.now_ms(), extra, applied)?;
        if appended.new > 0 {
            for t in &tenants {
                self.mark_dirty(t);
            }
        }
        Ok(appended)
    }

    fn mark_dirty(&self, tenant: &str) {
        if let Ok(mut dirty) = self.dirty.lock() {
            if !dirty.contains(tenant) {
                dirty.insert(tenant.to_string());
            }
            self.wake.notify_one();
        }
    }

    fn notify_all(&self) {
        self.wake.notify_all();
    }

    fn take_dirty(&self) -> HashSet<String> {
        self.dirty.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }

    fn wait_for_work(&self, timeout: Duration) {
        let Ok(dirty) = self.dirty.lock() else { return };
        if dirty.is_empty() {
            let _ = self.wake.wait_timeout(dirty, timeout);
        }
    }
}
