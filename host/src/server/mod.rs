//! Wiring: open the store, build the stages, start the workers and the
//! HTTP server; and the reverse, in order, on shutdown.
//!
//! [`supervise`] keeps a server running across storage failures: the
//! binary runs that; tests start servers directly.

pub mod supervise;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{AppState, app};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::context::ContextBuilder;
use crate::crm::Crm;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::outbound::{GraphClient, Outbox, ResultSink, Worker};
use crate::pipeline::{Event, Pipeline, PipelineHandle, Stages};
use crate::plugins::{Registry, Runtime};
use crate::store::Store;
use crate::tenants::{DemoCredentials, Tenants, ensure_demo};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the store in {dir}: {source}")]
    Store { dir: String, source: crate::store::StoreError },
    #[error("setting up tenants: {0}")]
    Tenants(#[from] crate::tenants::TenantError),
    #[error(transparent)]
    Plugins(#[from] crate::plugins::PluginError),
    #[error("{0}")]
    Io(String),
}

/// A running Switchboard.
pub struct Server {
    pub addr: SocketAddr,
    /// The operator-only `/metrics` listener, if configured.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    pub demo: Option<DemoCredentials>,
    /// Events acknowledged by an earlier run and not yet applied: they are
    /// applied now, before anything new.
    pub resumed_events: usize,
    shutdown: CancellationToken,
    http: Http,
    pipeline: Option<PipelineHandle>,
    /// Every background task (sender, CRM delivery, timers, maintenance):
    /// `stop` waits for all of them, so that once it returns nothing holds
    /// the store and the same directory can be opened again at once.
    tasks: TaskTracker,
    grace: Duration,
}

/// Starts everything `config` describes and returns once it is serving.
pub async fn start(config: Config, clock: SharedClock) -> Result<Server, ServerError> {
    let listener = bind(&config.server.listen)?;
    start_on(config, clock, listener).await
}

/// Binds `addr` for [`start_on`].
pub fn bind(addr: &str) -> Result<std::net::TcpListener, ServerError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| ServerError::Io(format!("cannot listen on {addr}: {e}")))?;
    listener.set_nonblocking(true).map_err(|e| ServerError::Io(e.to_string()))?;
    Ok(listener)
}

/// [`start`] on a socket already bound (the supervisor keeps one across
/// restarts, so clients never see the port closed).
pub async fn start_on(
    config: Config,
    clock: SharedClock,
    listener: std::net::TcpListener,
) -> Result<Server, ServerError> {
    let data_dir = config.server.data_dir.clone();
    let store_error = |source| ServerError::Store { dir: data_dir.display().to_string(), source };
    let store = Store::open(&data_dir).map_err(store_error)?;
    let tenants = Tenants::new(store.clone());
    let demo =
        if config.demo.enabled { Some(ensure_demo(&tenants, &config.demo, &data_dir, clock.now_ms())?) } else { None };
    let registry = load_plugins(&config, store.clone()).await?;
    let graph = GraphClient::new(&config.outbound).map_err(|e| ServerError::Io(format!("HTTP client: {e}")))?;
    let stages = stages(&config, clock, store, tenants, registry, graph);
    let pipeline = Pipeline::new(stages).map_err(store_error)?;
    let resumed_events = pipeline.journal.pending();
    let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
    spawn_background(&pipeline, &tasks, &shutdown)?;
    let pipeline_handle = if config.pipeline.enabled {
        Some(pipeline.start(shutdown.clone()).map_err(|e| ServerError::Io(format!("pipeline threads: {e}")))?)
    } else {
        tracing::warn!("pipeline.enabled = false: webhooks are journaled and acknowledged, nothing is applied");
        None
    };
    let p = &config.plugins;
    let uploads = crate::plugins::uploads::Uploads::start(
        pipeline.stages.plugins.clone(),
        p.compile_threads,
        p.compile_queue,
        p.uploads_per_tenant,
        Arc::new(crate::api::plugins::judge),
    );
    let state = AppState::new(pipeline, uploads);
    let (addr, metrics_addr, http) = serve(&config, listener, state.clone(), shutdown.clone())?;
    tracing::info!(%addr, metrics = ?metrics_addr, "switchboard is serving");
    let grace = config.server.shutdown_grace;
    Ok(Server {
        addr,
        metrics_addr,
        state,
        demo,
        resumed_events,
        shutdown,
        http,
        pipeline: pipeline_handle,
        tasks,
        grace,
    })
}

/// The runtime (engine, on-disk cache) and the registry of every tenant's
/// plugins, loaded off the async threads: compiling or reading the cache
/// blocks.
async fn load_plugins(config: &Config, store: Store) -> Result<Registry, ServerError> {
    let (plugins, cache) = (config.plugins.clone(), config.cache_dir());
    let join = |e: tokio::task::JoinError| ServerError::Io(e.to_string());
    let runtime = tokio::task::spawn_blocking(move || Runtime::new(&plugins, &cache)).await.map_err(join)??;
    let plugins = config.plugins.clone();
    let registry = tokio::task::spawn_blocking(move || Registry::new(Arc::new(runtime), store, &plugins))
        .await
        .map_err(join)??;
    Ok(registry)
}

/// Every stage, over one store.
fn stages(
    config: &Config,
    clock: SharedClock,
    store: Store,
    tenants: Tenants,
    registry: Registry,
    graph: GraphClient,
) -> Stages {
    let sync = crate::sync::Outbox::new(store.clone());
    let crm = Crm::new(store.clone(), sync.clone());
    let conversations = &config.conversations;
    let control = crate::control::Control::new(store.clone(), sync.clone());
    let (outbox, timers) = (Outbox::new(store.clone()), crate::followup::Timers::new(store.clone()));
    let fields = crate::ingest::fields::FieldEvents::new(store.clone());
    let templates = crate::templates::Templates::new(store.clone(), graph.clone());
    let blobs = Arc::new(crate::media::blobs::DirBlobs::new(&config.media_dir()));
    Stages {
        tenants,
        identity: Identity::new(crm.clone()),
        context: ContextBuilder::new(
            crm.clone(),
            conversations.inactivity_timeout.as_millis() as i64,
            conversations.history,
        ),
        crm: crm.clone(),
        plugins: Arc::new(registry),
        outbox: outbox.clone(),
        timers: timers.clone(),
        signals: crate::feedback::Signals::new(store.clone()),
        importer: crate::identity::import::Importer::new(store.clone(), crm.clone(), clock.clone()),
        duplicates: crate::identity::duplicates::Duplicates::new(store.clone(), crm.clone()),
        quarantine: crate::ingest::quarantine::Quarantine::new(store.clone()),
        raw: crate::ingest::raw::RawItems::new(store.clone()),
        fields: fields.clone(),
        numbers: crate::numbers::Numbers::new(store.clone(), fields),
        control: control.clone(),
        staff: crate::control::staff::StaffActions::new(
            crm.clone(),
            timers.clone(),
            control,
            outbox.clone(),
            templates.clone(),
            clock.clone(),
        ),
        templates,
        media: crate::media::Media::new(store.clone(), blobs),
        graph,
        sync,
        clock,
        metrics: Arc::new(Metrics::new()),
        config: config.clone(),
        store,
    }
}

/// The sender (outbound messages to Meta), CRM delivery, the timer scanner
/// and maintenance, each a task `stop` waits for.
fn spawn_background(
    pipeline: &Arc<Pipeline>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    let s = &pipeline.stages;
    let client_error = |e: reqwest::Error| ServerError::Io(format!("HTTP client: {e}"));
    let sink: ResultSink = {
        let p = pipeline.clone();
        Arc::new(move |result, batch| p.submit(vec![Event::SendResult(result)], batch).map(|_| ()))
    };
    let worker = Arc::new(Worker {
        outbox: s.outbox.clone(),
        client: s.graph.clone(),
        tenants: s.tenants.clone(),
        store: s.store.clone(),
        clock: s.clock.clone(),
        config: s.config.outbound.clone(),
        sink,
        wake: s.outbox.waker(),
        metrics: s.metrics.clone(),
        pacers: Default::default(),
        tier: crate::outbound::tier::Tier::new(s.store.clone()),
    });
    tasks.spawn(worker.run(shutdown.clone()));
    let sync = &s.config.sync;
    let delivery = Arc::new(crate::sync::delivery::Delivery {
        outbox: s.sync.clone(),
        http: crate::sync::destination::client(sync.request_timeout, sync.allow_internal_destinations)
            .map_err(client_error)?,
        clock: s.clock.clone(),
        config: sync.clone(),
        metrics: s.metrics.clone(),
        wake: Arc::new(Notify::new()),
    });
    tasks.spawn(delivery.run(shutdown.clone()));
    let downloads = Arc::new(crate::media::download::Downloader {
        media: s.media.clone(),
        tenants: s.tenants.clone(),
        graph: s.graph.clone(),
        clock: s.clock.clone(),
        config: s.config.media.clone(),
        metrics: s.metrics.clone(),
    });
    tasks.spawn(downloads.run(shutdown.clone()));
    tasks.spawn(maintenance(pipeline.clone(), s.config.webhook.dedup_window, shutdown.clone()));
    tasks.spawn(timer_scanner(pipeline.clone(), shutdown.clone()));
    tasks.close();
    Ok(())
}

type Http = JoinHandle<std::io::Result<()>>;

/// The API on `listener`, and `/metrics` alone on the operator listener
/// when one is configured; both stop when `stop` is cancelled.
fn serve(
    config: &Config,
    listener: std::net::TcpListener,
    state: AppState,
    stop: CancellationToken,
) -> Result<(SocketAddr, Option<SocketAddr>, Http), ServerError> {
    let io = |e: std::io::Error| ServerError::Io(e.to_string());
    let listener = tokio::net::TcpListener::from_std(listener).map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let operator = match &config.server.metrics_listen {
        Some(listen) => Some(tokio::net::TcpListener::from_std(bind(listen)?).map_err(io)?),
        None => None,
    };
    let metrics_addr = operator.as_ref().map(|l| l.local_addr()).transpose().map_err(io)?;
    let (router, operator_app) = (app(state.clone()), crate::api::operator_app(state));
    let http = tokio::spawn(async move {
        let main = axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
        match operator {
            Some(listener) => {
                let ops = axum::serve(listener, operator_app).with_graceful_shutdown(stop.cancelled_owned());
                let (main, ops) = tokio::join!(main, ops);
                main.and(ops)
            }
            None => main.await,
        }
    });
    Ok((addr, metrics_addr, http))
}

impl Server {
    /// Fires every follow-up due now, at once, instead of at the scanner's
    /// next pass: what a test calls after moving the clock, so that "it did
    /// not fire" is a fact about the scan, not about how long it waited.
    pub async fn fire_due_timers(&self) -> Result<usize, crate::store::StoreError> {
        fire_due_timers(&self.state.pipeline).await
    }

    /// The token that stops this server; cancel it from a signal handler.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting requests, lets in-flight requests and the events
    /// being applied finish (within the grace period), and flushes the
    /// store. Whatever did not finish is still in the journal or the send
    /// queue, durably, for the next start. Unless something overran the
    /// grace period, the store is closed when this returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        if tokio::time::timeout(self.grace, self.http).await.is_err() {
            tracing::warn!("HTTP requests still running after the grace period; leaving them");
        }
        let pipeline = self.pipeline;
        let joined = tokio::task::spawn_blocking(move || pipeline.map(PipelineHandle::join));
        if tokio::time::timeout(self.grace, joined).await.is_err() {
            tracing::warn!("pipeline workers still busy after the grace period; their events stay journaled");
        }
        if tokio::time::timeout(self.grace, self.tasks.wait()).await.is_err() {
            tracing::warn!("background tasks still busy after the grace period; their work stays queued");
        }
        let uploads = self.state.uploads.clone();
        let closed = tokio::task::spawn_blocking(move || uploads.close());
        if tokio::time::timeout(self.grace, closed).await.is_err() {
            tracing::warn!("an upload is still compiling after the grace period; it is abandoned");
        }
        let store = self.state.stages().store.clone();
        if let Err(e) = store.sync().await {
            tracing::error!(error = %e, "final flush failed");
        }
        drop(self.state);
        // A connection task can still be dropping its copy of the app (and
        // so of the store) after the server stopped accepting: wait until
        // this handle is the last, so the directory is free once we return.
        let released = async {
            while store.handles() > 1 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout(self.grace, released).await.is_err() {
            tracing::warn!("the store is still in use after the grace period; it closes when its last user ends");
        }
        tracing::info!("switchboard stopped");
    }
}

/// At start, then hourly: forget de-duplication keys older than the window
/// (they already stop counting once older, when read; this frees the space).
async fn maintenance(pipeline: Arc<Pipeline>, window: Duration, shutdown: CancellationToken) {
    let mut first = true;
    loop {
        let pause = if std::mem::take(&mut first) { Duration::ZERO } else { Duration::from_secs(3600) };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let p = pipeline.clone();
        let before = p.stages.clock.now_ms() - window.as_millis() as i64;
        match tokio::task::spawn_blocking(move || p.journal.expire_seen(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(expired = n, "forgot old de-duplication keys"),
            Ok(Err(e)) => tracing::warn!(error = %e, "expiring de-duplication keys failed"),
            _ => {}
        }
        let p = pipeline.clone();
        let before = p.stages.clock.now_ms() - p.stages.config.webhook.raw_retention.as_millis() as i64;
        match tokio::task::spawn_blocking(move || p.stages.raw.expire(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(expired = n, "forgot webhook items past webhook.raw_retention"),
            Ok(Err(e)) => tracing::warn!(error = %e, "expiring raw webhook items failed"),
            _ => {}
        }
        let p = pipeline.clone();
        let before = p.stages.clock.now_ms() - p.stages.config.media.retention.as_millis() as i64;
        match tokio::task::spawn_blocking(move || p.stages.media.expire(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(expired = n, "deleted media files past media.retention"),
            Ok(Err(e)) => tracing::warn!(error = %e, "expiring media files failed"),
            _ => {}
        }
    }
}

/// Hands due follow-up timers to the journal. Each timer leaves the timer
/// store in the same atomic write that journals its firing, so it fires
/// once in effect, after a crash or restart too. Scans by due time only.
async fn timer_scanner(pipeline: Arc<Pipeline>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        match fire_due_timers(&pipeline).await {
            Ok(n) if n > 0 => tracing::debug!(fired = n, "follow-up timers fired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "scanning follow-up timers failed"),
        }
    }
}

/// Moves every follow-up due by the clock's now into the journal; returns
/// how many. The scanner calls it every 200 ms.
async fn fire_due_timers(pipeline: &Arc<Pipeline>) -> Result<usize, crate::store::StoreError> {
    let p = pipeline.clone();
    let fired = tokio::task::spawn_blocking(move || -> Result<usize, crate::store::StoreError> {
        let s = &p.stages;
        let mut fired = 0;
        for due in s.timers.due(s.clock.now_ms(), 256)? {
            let mut batch = crate::store::Batch::new();
            s.timers.fired(&mut batch, &due);
            match p.submit(vec![Event::TimerFired(due.timer)], batch) {
                Ok(_) => fired += 1,
                Err(crate::store::StoreError::Conflict) => {} // re-planned meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(fired)
    })
    .await;
    fired.map_err(|_| crate::store::StoreError::Closed)?
}
