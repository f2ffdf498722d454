//! `/healthz`, `/metrics`, `/openapi.json`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin::AdminAuth;
use super::{ApiError, AppState};
use crate::pipeline::StalledLane;

pub fn routes(metrics_on_main_port: bool) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new().routes(routes!(healthz));
    if metrics_on_main_port { router.routes(routes!(metrics)) } else { router }
}

/// `/metrics` alone, unauthenticated, for the operator-only listener
/// (`server.metrics_listen`).
pub fn operator_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(render)).route("/healthz", get(healthz))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`; `degraded` while a lane is stalled; `unhealthy` (with 503)
    /// while storage refuses writes.
    pub status: &'static str,
    /// Events acknowledged but not yet applied.
    pub journal_pending: usize,
    /// Age of the oldest of them, in ms.
    pub oldest_pending_ms: Option<u64>,
    /// Messages waiting to be sent.
    pub outbound_queue: usize,
    /// Events set aside as unprocessable (see the logs).
    pub quarantined: usize,
    /// Webhook items that could not be read, kept in the quarantine
    /// (`GET /v1/quarantine`, `GET /admin/v1/quarantine`).
    pub unreadable_webhook_items: usize,
    /// Nothing left to do: no message waiting to be sent and no event
    /// pending. Exact in one reading — an event counts as pending from
    /// before the commit that journals it until after the commit that
    /// applies it, and the journal is read both before and after the queue
    /// — so neither a send finishing (its result is journaled as it leaves
    /// the queue: the later reading sees it) nor an event queuing a reply
    /// as it is applied (the earlier reading sees it) can fall between.
    pub idle: bool,
    /// Contacts whose head event has run, or kept failing, longer than
    /// `pipeline.stall_after`.
    pub stalled_lanes: Vec<StalledLane>,
    pub storage: StorageHealth,
}

#[derive(Serialize, ToSchema)]
pub struct StorageHealth {
    pub writable: bool,
    /// Why not, while it is not.
    pub error: Option<String>,
}

/// Liveness and backlog: 200 while storage writes (`ok` or `degraded`),
/// 503 while it does not.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "storage refuses writes", body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Result<(StatusCode, Json<Health>), ApiError> {
    let p = &state.pipeline;
    let s = &p.stages;
    // Before the queue: see `Health::idle`.
    let pending_before = p.journal.pending();
    let storage_error = s.store.failure();
    let stalled_lanes = p.scheduler.stalled(s.config.pipeline.stall_after);
    let now = s.clock.now_ms();
    let (outbound_queue, quarantined, unreadable_webhook_items) = match storage_error {
        // Reads may fail too; the answer must still come.
        Some(_) => (
            s.outbox.len().unwrap_or_default(),
            p.journal.quarantined().unwrap_or_default(),
            s.quarantine.count().unwrap_or_default(),
        ),
        None => (s.outbox.len()?, p.journal.quarantined()?, s.quarantine.count()?),
    };
    let (code, status) = match (&storage_error, stalled_lanes.is_empty()) {
        (Some(_), _) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
        (None, false) => (StatusCode::OK, "degraded"),
        (None, true) => (StatusCode::OK, "ok"),
    };
    // After the queue: see `Health::idle`.
    let journal_pending = p.journal.pending();
    let health = Health {
        status,
        journal_pending,
        idle: pending_before == 0 && outbound_queue == 0 && journal_pending == 0,
        oldest_pending_ms: p.scheduler.oldest_since().map(|t| (now - t).max(0) as u64),
        outbound_queue,
        quarantined,
        unreadable_webhook_items,
        stalled_lanes,
        storage: StorageHealth { writable: storage_error.is_none(), error: storage_error },
    };
    Ok((code, Json(health)))
}

/// Prometheus text format. On the main port it takes the operator's admin
/// token (it names tenants and their endpoints); with
/// `server.metrics_listen` set it is served there instead, without one.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("admin_token" = [])),
    responses((status = 200, body = String, content_type = "text/plain"),
              (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)))]
pub async fn metrics(_: AdminAuth, state: State<AppState>) -> Result<impl IntoResponse, ApiError> {
    render(state).await
}

async fn render(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let p = &state.pipeline;
    let s = &p.stages;
    let m = &s.metrics;
    m.journal_pending.set(p.journal.pending() as i64);
    m.storage_unwritable.set(i64::from(s.store.failure().is_some()));
    m.stalled_lanes.set(p.scheduler.stalled(s.config.pipeline.stall_after).len() as i64);
    let oldest = p.scheduler.oldest_since().map_or(0, |t| (s.clock.now_ms() - t).max(0));
    m.oldest_pending_seconds.set(oldest as f64 / 1000.0);
    m.outbound_queue.set(s.outbox.len()? as i64);
    m.compiled_plugin_bytes.set(s.plugins.compiled_bytes() as i64);
    m.quarantined.set(p.journal.quarantined()? as i64);
    m.unreadable_kept.set(s.quarantine.count()? as i64);
    let sync = &s.sync;
    for e in sync.endpoints.all()? {
        let l = crate::metrics::labels::Endpoint { tenant: e.tenant.clone(), endpoint: e.id.clone() };
        let h = sync.endpoints.health(&e);
        m.sync_pending.get_or_create(&l).set(sync.pending(&e.id)? as i64);
        m.sync_failing.get_or_create(&l).set(i64::from(h.consecutive_failures > 0));
        m.sync_dead_letters.get_or_create(&l).set(h.dead_lettered as i64);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render()))
}

/// `/openapi.json`: the document collected from the routes the app serves,
/// serialised once here rather than on every request.
pub fn openapi_route(doc: &utoipa::openapi::OpenApi) -> Router<AppState> {
    let body = axum::body::Bytes::from(serde_json::to_vec(doc).unwrap_or_default());
    Router::new()
        .route("/openapi.json", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }))
}
