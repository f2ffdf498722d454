//! Uploads are checked and compiled off to the side, so no tenant's upload
//! slows down anyone's decisions.
//!
//! Compiling a JavaScript or Python component takes seconds of CPU. Done on
//! the request's thread, or on every core at once, it competed with the
//! pipeline's threads and other tenants' decisions slowed to seconds. Here
//! it runs on a small pool of its own (`plugins.compile_threads`) at low
//! CPU priority (nice 10: a tenth of the weight of a decision's thread,
//! while a busy machine still lets it finish), one compile on one thread (the engine does not
//! spread a compile over all cores), behind a bounded queue with a cap per
//! tenant. The API waits a moment (`plugins.upload_wait`) for the result,
//! and otherwise answers `202` with the upload's place in the queue; the
//! tenant follows it at `GET /v1/plugins/uploads/{id}`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::World;
use super::registry::{Registry, UploadError};
use super::versions::{ActiveRecord, VersionRecord};
use crate::clock::Millis;
use crate::config::PluginLimits;
use crate::model::new_id;

/// How long a finished upload's outcome stays readable.
const KEEP_FINISHED: Duration = Duration::from_secs(3600);

/// What to upload.
pub struct Submission {
    pub tenant: String,
    pub world: World,
    pub wasm: bytes::Bytes,
    pub limits: PluginLimits,
    pub uploaded_by: String,
    pub activate: bool,
    pub now: Millis,
}

/// An accepted upload.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Uploaded {
    pub version: VersionRecord,
    /// False when these exact bytes were uploaded before.
    pub new: bool,
    /// Set when `?activate=true`.
    pub active: Option<ActiveRecord>,
}

/// Where an upload is.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Progress {
    /// Waiting for a compile thread; `ahead` uploads are before it.
    Queued {
        ahead: usize,
    },
    Compiling,
    Accepted(Box<Uploaded>),
    /// Refused, with the API's error: `http_status`, `code`, `message`.
    Rejected {
        http_status: u16,
        code: &'static str,
        message: String,
    },
}

impl Progress {
    pub fn is_finished(&self) -> bool {
        matches!(self, Progress::Accepted(_) | Progress::Rejected { .. })
    }
}

/// An upload as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadView {
    pub id: String,
    pub world: World,
    pub submitted_at: Millis,
    #[serde(flatten)]
    pub progress: Progress,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("this tenant already has {0} uploads waiting to compile; wait for one to finish")]
    TenantBusy(usize),
    #[error("{0} uploads are waiting to compile; try again in a minute")]
    Full(usize),
}

struct Job {
    id: String,
    submission: Submission,
}

struct Tracked {
    tenant: String,
    world: World,
    submitted_at: Millis,
    progress: watch::Sender<Progress>,
    finished: Option<std::time::Instant>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    uploads: HashMap<String, Tracked>,
    closed: bool,
}

/// The compile pool and the uploads it is working on.
pub struct Uploads {
    state: Mutex<State>,
    work: Condvar,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    queue_limit: usize,
    per_tenant: usize,
}

/// How a finished upload is judged: turns the registry's outcome into a
/// [`Progress`] (so the API maps errors in one place).
pub type Judge = Arc<dyn Fn(Result<Uploaded, UploadError>) -> Progress + Send + Sync>;

impl Uploads {
    /// Starts `threads` compile threads for `registry`.
    pub fn start(
        registry: Arc<Registry>,
        threads: usize,
        queue_limit: usize,
        per_tenant: usize,
        judge: Judge,
    ) -> Arc<Self> {
        let uploads = Arc::new(Uploads {
            state: Mutex::default(),
            work: Condvar::new(),
            threads: Mutex::default(),
            queue_limit: queue_limit.max(1),
            per_tenant: per_tenant.max(1),
        });
        for i in 0..threads.max(1) {
            let (me, registry, judge) = (uploads.clone(), registry.clone(), judge.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("plugin-compile-{i}"))
                .spawn(move || me.work(&registry, &judge));
            match spawned {
                Ok(handle) => uploads.threads.lock().unwrap_or_else(|p| p.into_inner()).push(handle),
                Err(e) => tracing::error!("cannot start a compile thread: {e}"),
            }
        }
        uploads
    }

    /// Queues an upload; its id and a receiver of its progress.
    pub fn submit(&self, submission: Submission) -> Result<(String, watch::Receiver<Progress>), QueueError> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.uploads.retain(|_, t| t.finished.is_none_or(|f| f.elapsed() < KEEP_FINISHED));
        let waiting = s.uploads.values().filter(|t| !t.progress.borrow().is_finished());
        let mine = waiting.filter(|t| t.tenant == submission.tenant).count();
        if mine >= self.per_tenant {
            return Err(QueueError::TenantBusy(mine));
        }
        if s.queue.len() >= self.queue_limit {
            return Err(QueueError::Full(s.queue.len()));
        }
        let id = new_id("up");
        let (progress, rx) = watch::channel(Progress::Queued { ahead: s.queue.len() });
        s.uploads.insert(
            id.clone(),
            Tracked {
                tenant: submission.tenant.clone(),
                world: submission.world,
                submitted_at: submission.now,
                progress,
                finished: None,
            },
        );
        s.queue.push_back(Job { id: id.clone(), submission });
        drop(s);
        self.work.notify_one();
        Ok((id, rx))
    }

    /// The tenant's upload `id`, if it is theirs and still known.
    pub fn view(&self, tenant: &str, id: &str) -> Option<UploadView> {
        let s = self.state.lock().ok()?;
        let t = s.uploads.get(id).filter(|t| t.tenant == tenant)?;
        let progress = match &*t.progress.borrow() {
            Progress::Queued { .. } => Progress::Queued { ahead: s.queue.iter().take_while(|j| j.id != id).count() },
            other => other.clone(),
        };
        Some(UploadView { id: id.to_string(), world: t.world, submitted_at: t.submitted_at, progress })
    }

    /// Stops the compile threads and waits for them, each after the upload
    /// it is compiling. Blocking. Once it returns they hold nothing (the
    /// store among it), so the data directory can be opened again.
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.work.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    fn work(&self, registry: &Registry, judge: &Judge) {
        crate::threads::set_nice(10);
        loop {
            let job = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if s.closed {
                        return;
                    }
                    if let Some(job) = s.queue.pop_front() {
                        break job;
                    }
                    s = self.work.wait(s).unwrap_or_else(|p| p.into_inner());
                }
            };
            self.set(&job.id, Progress::Compiling);
            let outcome = run(registry, &job.submission);
            self.set(&job.id, judge(outcome));
        }
    }

    fn set(&self, id: &str, progress: Progress) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = s.uploads.get_mut(id) {
            if progress.is_finished() {
                t.finished = Some(std::time::Instant::now());
            }
            t.progress.send_replace(progress);
        }
    }
}

/// Checks, stores and (if asked) activates one upload.
fn run(registry: &Registry, s: &Submission) -> Result<Uploaded, UploadError> {
    let started = std::time::Instant::now();
    let (version, new) = registry.upload(&s.tenant, s.world, &s.wasm, &s.limits, &s.uploaded_by, s.now)?;
    tracing::info!(
        tenant = %s.tenant, world = %s.world, version = %version.version, new,
        elapsed_ms = started.elapsed().as_millis() as u64, "plugin uploaded"
    );
    let active = if s.activate {
        Some(registry.activate_version(&s.tenant, s.world, Some(&version.version), &s.uploaded_by, s.now)?)
    } else {
        None
    };
    Ok(Uploaded { version, new, active })
}
