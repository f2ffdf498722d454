//! Contact import and duplicate management.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::control::Staff;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::clock::SharedClock;
use crate::crm::Crm;
use crate::identity::duplicates::{Candidate, Duplicates as DuplicateFinder, Merge};
use crate::identity::import::{ImportJob, Importer, parse};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .routes(routes!(import_status))
        .routes(routes!(duplicates))
        .routes(routes!(merge))
        .routes(routes!(dismiss))
        .routes(routes!(merge_record))
        .routes(routes!(undo))
}

/// Imports contacts in the background: a CSV (`text/csv`; columns `phone`,
/// `name`, `email`, `company`, `tags` separated by `;`) or a JSON list of
/// objects with the same fields. Phones in any format; those without a
/// country code use the tenant's default region. A phone already on file
/// updates that contact. Poll `GET /v1/imports/{id}` for progress and the
/// per-row error report.
#[utoipa::path(post, path = "/v1/contacts/import", tag = "contacts", request_body(content = String, content_type = "text/csv"),
    security(("tenant_key" = [])),
    responses((status = 202, body = ImportJob), (status = 400, body = super::error::ErrorBody)))]
pub async fn import(
    TenantAuth(tenant, _): TenantAuth,
    State(importer): State<Importer>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportJob>), ApiError> {
    let csv = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv") || v.starts_with("application/csv"));
    let (rows, format) = parse(&body, csv).map_err(|e| ApiError::bad_request("invalid_import", e.to_string()))?;
    let job = importer.start(&tenant.id, rows.len(), format)?;
    let started = job.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = importer.run(&tenant, job, rows) {
            tracing::error!(error = %e, "contact import failed");
        }
    });
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// An import's progress and error report.
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "contacts", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = ImportJob), (status = 404, body = super::error::ErrorBody)))]
pub async fn import_status(
    TenantAuth(tenant, _): TenantAuth,
    State(importer): State<Importer>,
    Path(id): Path<String>,
) -> Result<Json<ImportJob>, ApiError> {
    let job = importer.job(&tenant.id, &id)?;
    job.map(Json).ok_or_else(|| ApiError::not_found(format!("no import {id} in this tenant")))
}

#[derive(Serialize, ToSchema)]
pub struct Duplicates {
    /// Most likely first, each with its evidence.
    pub candidates: Vec<Candidate>,
}

/// Suggested duplicate contacts with their evidence.
#[utoipa::path(get, path = "/v1/duplicates", tag = "contacts", security(("tenant_key" = [])), responses((status = 200, body = Duplicates)))]
pub async fn duplicates(
    TenantAuth(tenant, _): TenantAuth,
    State(d): State<DuplicateFinder>,
) -> Result<Json<Duplicates>, ApiError> {
    let candidates = super::blocking(move || d.candidates(&tenant.id)).await?;
    Ok(Json(Duplicates { candidates }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The contact that stays.
    pub survivor: String,
    /// The contact merged into it.
    pub merged: String,
}

/// Merges two contacts: conversations, messages, deals and signals move to
/// the survivor. Recorded, and undoable with `POST /v1/merges/{id}/undo`.
#[utoipa::path(post, path = "/v1/duplicates/merge", tag = "contacts", params(("X-Staff-Id" = String, Header)), request_body = MergeRequest,
    security(("tenant_key" = [])), responses((status = 200, body = Merge), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn merge(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(d): State<DuplicateFinder>,
    State(clock): State<SharedClock>,
    ApiJson(body): ApiJson<MergeRequest>,
) -> Result<Json<Merge>, ApiError> {
    let now = clock.now_ms();
    let record = super::blocking(move || d.merge(&tenant.id, &body.survivor, &body.merged, &who, now)).await?;
    Ok(Json(record))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dismiss {
    pub a: String,
    pub b: String,
}

/// Marks two contacts as different people: the pair is not suggested again.
#[utoipa::path(post, path = "/v1/duplicates/dismiss", tag = "contacts", request_body = Dismiss, security(("tenant_key" = [])),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn dismiss(
    TenantAuth(tenant, _): TenantAuth,
    State(crm): State<Crm>,
    State(duplicates): State<DuplicateFinder>,
    ApiJson(body): ApiJson<Dismiss>,
) -> Result<StatusCode, ApiError> {
    for id in [&body.a, &body.b] {
        crm.contact(&tenant.id, id)?.ok_or_else(|| ApiError::not_found(format!("no contact {id} in this tenant")))?;
    }
    duplicates.dismiss(&tenant.id, &body.a, &body.b)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A merge record.
#[utoipa::path(get, path = "/v1/merges/{id}", tag = "contacts", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Merge), (status = 404, body = super::error::ErrorBody)))]
pub async fn merge_record(
    TenantAuth(tenant, _): TenantAuth,
    State(duplicates): State<DuplicateFinder>,
    Path(id): Path<String>,
) -> Result<Json<Merge>, ApiError> {
    let m = duplicates.merge_record(&tenant.id, &id)?;
    m.map(Json).ok_or_else(|| ApiError::not_found(format!("no merge {id} in this tenant")))
}

/// Undoes a merge.
#[utoipa::path(post, path = "/v1/merges/{id}/undo", tag = "contacts", params(("id" = String, Path), ("X-Staff-Id" = String, Header)),
    security(("tenant_key" = [])), responses((status = 200, body = Merge), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn undo(
    TenantAuth(tenant, _): TenantAuth,
    Staff(who): Staff,
    State(d): State<DuplicateFinder>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
) -> Result<Json<Merge>, ApiError> {
    let now = clock.now_ms();
    let record = super::blocking(move || d.undo(&tenant.id, &id, &who, now)).await?;
    Ok(Json(record))
}
