//! `/healthz`, `/metrics`, `/openapi.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::{ApiDoc, ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).route("/openapi.json", get(openapi))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// Events acknowledged but not yet applied.
    pub journal_pending: usize,
    /// Messages waiting to be sent.
    pub outbound_queue: usize,
    /// Events set aside as unprocessable (see the logs).
    pub quarantined: usize,
}

/// Liveness and backlog. 200 while the store answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = super::error::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let p = &state.pipeline;
    Ok(Json(Health {
        status: "ok",
        journal_pending: p.journal.pending(),
        outbound_queue: p.stages.outbox.len()?,
        quarantined: p.journal.quarantined()?,
    }))
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let p = &state.pipeline;
    let m = &p.stages.metrics;
    m.journal_pending.set(p.journal.pending() as i64);
    m.outbound_queue.set(p.stages.outbox.len()? as i64);
    m.quarantined.set(p.journal.quarantined()? as i64);
    let sync = &p.stages.sync;
    for e in sync.endpoints.all()? {
        let l = crate::metrics::labels(&[("tenant", &e.tenant), ("endpoint", &e.id)]);
        let h = sync.endpoints.health(&e.id);
        m.sync_pending.get_or_create(&l).set(sync.pending(&e.id)? as i64);
        m.sync_failing.get_or_create(&l).set(i64::from(h.consecutive_failures > 0));
        m.sync_dead_letters.get_or_create(&l).set(h.dead_lettered as i64);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render()))
}

pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
