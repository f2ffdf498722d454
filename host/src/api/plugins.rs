//! A tenant's plugins: upload, versions, activation, rollback, logs, config.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::plugins::Registry;
use crate::plugins::logs::LogEntry;
use crate::plugins::registry::VersionView;
use crate::plugins::uploads::{Progress, QueueError, Submission, UploadView, Uploaded, Uploads};
use crate::plugins::versions::ActiveRecord;
use crate::plugins::{PluginMeta, UploadError, World};
use crate::tenants::Tenant;

/// Hard ceiling on an upload body; each tenant's own cap is checked inside.
const UPLOAD_CEILING: usize = 256 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(world_view, upload))
        .layer(DefaultBodyLimit::max(UPLOAD_CEILING))
        .routes(routes!(overview))
        .routes(routes!(version_view))
        .routes(routes!(activate))
        .routes(routes!(rollback))
        .routes(routes!(logs))
        .routes(routes!(get_config, put_config))
        .routes(routes!(upload_progress))
}

fn world(name: &str) -> Result<World, ApiError> {
    World::parse(name)
        .ok_or_else(|| ApiError::not_found(format!("no world {name:?}: use router, follow-up or feedback")))
}

fn limits(config: &Config, tenant: &Tenant) -> crate::config::PluginLimits {
    tenant.limits.clone().unwrap_or_else(|| config.plugins.limits.clone())
}

#[derive(Serialize, ToSchema)]
pub struct WorldSummary {
    pub world: World,
    /// What decides now: the tenant's active version, or the built-in.
    pub running: Option<PluginMeta>,
    pub active: ActiveRecord,
    pub versions: usize,
    pub suspended: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Overview {
    pub worlds: Vec<WorldSummary>,
}

/// Every world: what runs, how many versions, how many suspended.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", security(("tenant_key" = [])),
    responses((status = 200, body = Overview), (status = 401, body = super::error::ErrorBody)))]
pub async fn overview(
    TenantAuth(tenant, _): TenantAuth,
    State(registry): State<Arc<Registry>>,
    State(clock): State<SharedClock>,
) -> Result<Json<Overview>, ApiError> {
    let mut worlds = Vec::new();
    for w in World::ALL {
        let (active, versions) = registry.version_views(&tenant.id, w, clock.now_ms())?;
        worlds.push(WorldSummary {
            world: w,
            running: registry.active(&tenant.id, w).map(|p| p.meta),
            suspended: versions.iter().filter(|v| v.record.suspended.is_some()).count(),
            versions: versions.len(),
            active,
        });
    }
    Ok(Json(Overview { worlds }))
}

#[derive(Serialize, ToSchema)]
pub struct WorldView {
    pub world: World,
    pub running: Option<PluginMeta>,
    pub active: ActiveRecord,
    /// Newest upload first, with health since the host started and any
    /// suspension (with its reason).
    pub versions: Vec<VersionView>,
}

/// One world: what runs, every version, and why any was suspended.
#[utoipa::path(get, path = "/v1/plugins/{world}", tag = "plugins", params(("world" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = WorldView), (status = 404, body = super::error::ErrorBody)))]
pub async fn world_view(
    TenantAuth(tenant, _): TenantAuth,
    State(registry): State<Arc<Registry>>,
    State(clock): State<SharedClock>,
    Path(name): Path<String>,
) -> Result<Json<WorldView>, ApiError> {
    let w = world(&name)?;
    let (active, versions) = registry.version_views(&tenant.id, w, clock.now_ms())?;
    Ok(Json(WorldView { world: w, running: registry.active(&tenant.id, w).map(|p| p.meta), active, versions }))
}

#[derive(Deserialize, IntoParams)]
pub struct UploadQuery {
    /// Make the new version active at once.
    #[serde(default)]
    activate: bool,
}

/// Uploads a component (`.wasm` body). It is validated before it is
/// accepted: a component, a served WIT version, this world, no forbidden
/// imports, under the size cap (all read before compiling), compiles, and
/// decides well on the built-in sample input within the tenant's limits.
/// Checking and compiling run on the host's low-priority upload pool; when
/// that takes longer than `plugins.upload_wait` (a JavaScript component
/// takes seconds) the answer is `202` with the upload's place in the queue,
/// to follow at `GET /v1/plugins/uploads/{id}`.
#[utoipa::path(put, path = "/v1/plugins/{world}", tag = "plugins", params(("world" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"), security(("tenant_key" = [])),
    responses((status = 201, body = Uploaded), (status = 200, description = "already uploaded", body = Uploaded),
              (status = 202, description = "checking and compiling; follow the Location", body = UploadView,
               headers(("Location" = String, description = "where to follow the upload"))),
              (status = 413, body = super::error::ErrorBody), (status = 422, description = "rejected: the message says what to fix", body = super::error::ErrorBody),
              (status = 429, description = "too many uploads waiting", body = super::error::ErrorBody)))]
pub async fn upload(
    TenantAuth(tenant, key): TenantAuth,
    State(uploads): State<Arc<Uploads>>,
    State(clock): State<SharedClock>,
    State(config): State<Arc<Config>>,
    Path(name): Path<String>,
    Query(query): Query<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let w = world(&name)?;
    let body = body.map_err(|r| ApiError::new(r.status(), "invalid_body", r.body_text()))?;
    let submission = Submission {
        limits: limits(&config, &tenant),
        tenant: tenant.id,
        world: w,
        wasm: body,
        uploaded_by: format!("{} ({})", key.label, key.id),
        activate: query.activate,
        now: clock.now_ms(),
    };
    let (id, mut progress) = uploads.submit(submission).map_err(|e| match e {
        QueueError::TenantBusy(_) | QueueError::Full(_) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "uploads_busy", e.to_string())
        }
    })?;
    let wait = config.plugins.upload_wait;
    let _ = tokio::time::timeout(wait, progress.wait_for(Progress::is_finished)).await;
    let current = progress.borrow().clone();
    match current {
        Progress::Accepted(u) => {
            let status = if u.new { StatusCode::CREATED } else { StatusCode::OK };
            Ok((status, Json(u)).into_response())
        }
        Progress::Rejected { http_status, code, message } => Err(rejected(http_status, code, message)),
        progress => {
            let location = format!("/v1/plugins/uploads/{id}");
            let view = UploadView { id, world: w, submitted_at: clock.now_ms(), progress };
            Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view)).into_response())
        }
    }
}

/// An upload's progress, and its outcome once finished (kept an hour).
#[utoipa::path(get, path = "/v1/plugins/uploads/{id}", tag = "plugins", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = UploadView), (status = 404, body = super::error::ErrorBody)))]
pub async fn upload_progress(
    TenantAuth(tenant, _): TenantAuth,
    State(uploads): State<Arc<Uploads>>,
    Path(id): Path<String>,
) -> Result<Json<UploadView>, ApiError> {
    uploads.view(&tenant.id, &id).map(Json).ok_or_else(|| {
        ApiError::not_found(format!("no upload {id} for this tenant (finished uploads are kept an hour)"))
    })
}

/// How the compile pool records an outcome: as the API would answer it.
pub fn judge(outcome: Result<Uploaded, UploadError>) -> Progress {
    match outcome.map_err(ApiError::from) {
        Ok(u) => Progress::Accepted(Box::new(u)),
        Err(e) => Progress::Rejected { http_status: e.status.as_u16(), code: e.code, message: e.message },
    }
}

fn rejected(status: u16, code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY), code, message)
}

/// One version.
#[utoipa::path(get, path = "/v1/plugins/{world}/versions/{version}", tag = "plugins",
    params(("world" = String, Path), ("version" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = VersionView), (status = 404, body = super::error::ErrorBody)))]
pub async fn version_view(
    TenantAuth(tenant, _): TenantAuth,
    State(registry): State<Arc<Registry>>,
    State(clock): State<SharedClock>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let w = world(&name)?;
    let (_, versions) = registry.version_views(&tenant.id, w, clock.now_ms())?;
    versions
        .into_iter()
        .find(|v| v.record.version == version)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no version {version} of {w} for this tenant")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// The version (sha256) to run; `null` runs the built-in default.
    pub version: Option<String>,
}

/// Makes a version the one that decides, from the next decision on.
/// Decisions already running finish on the version they started with.
#[utoipa::path(post, path = "/v1/plugins/{world}/activate", tag = "plugins", params(("world" = String, Path)), request_body = Activate,
    security(("tenant_key" = [])), responses((status = 200, body = ActiveRecord), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "the version was retired: upload it again", body = super::error::ErrorBody)))]
pub async fn activate(
    TenantAuth(tenant, key): TenantAuth,
    State(registry): State<Arc<Registry>>,
    State(clock): State<SharedClock>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Activate>,
) -> Result<Json<ActiveRecord>, ApiError> {
    let w = world(&name)?;
    let now = clock.now_ms();
    let record =
        super::blocking(move || registry.activate_version(&tenant.id, w, body.version.as_deref(), &key.label, now))
            .await?;
    Ok(Json(record))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version to go back to; default: the one active before.
    pub version: Option<String>,
}

/// Goes back to the previously active version (skipping suspended ones),
/// or to a named one. One call.
#[utoipa::path(post, path = "/v1/plugins/{world}/rollback", tag = "plugins", params(("world" = String, Path)), request_body = Rollback,
    security(("tenant_key" = [])), responses((status = 200, body = ActiveRecord), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "nothing to roll back to, or the version was retired", body = super::error::ErrorBody)))]
pub async fn rollback(
    TenantAuth(tenant, key): TenantAuth,
    State(registry): State<Arc<Registry>>,
    State(clock): State<SharedClock>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ActiveRecord>, ApiError> {
    let w = world(&name)?;
    let to = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<Rollback>(&body)
            .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?
            .version
    };
    let now = clock.now_ms();
    let record = super::blocking(move || registry.rollback(&tenant.id, w, to.as_deref(), &key.label, now)).await?;
    Ok(Json(record))
}

#[derive(Deserialize, IntoParams)]
pub struct LogQuery {
    /// Most recent lines, 1–500 (default 100).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct Logs {
    /// Oldest first; `log` calls, stdout/stderr, and host notices (suspensions).
    pub logs: Vec<LogEntry>,
}

/// What the tenant's plugins of this world logged or printed lately.
#[utoipa::path(get, path = "/v1/plugins/{world}/logs", tag = "plugins", params(("world" = String, Path), LogQuery),
    security(("tenant_key" = [])), responses((status = 200, body = Logs), (status = 404, body = super::error::ErrorBody)))]
pub async fn logs(
    TenantAuth(tenant, _): TenantAuth,
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Logs>, ApiError> {
    let w = world(&name)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    Ok(Json(Logs { logs: registry.logs.recent(&tenant.id, w, limit) }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PluginConfig {
    /// Settings the plugin reads through its `config` import.
    pub config: BTreeMap<String, String>,
}

/// The tenant's settings for this world's plugin.
#[utoipa::path(get, path = "/v1/plugins/{world}/config", tag = "plugins", params(("world" = String, Path)),
    security(("tenant_key" = [])), responses((status = 200, body = PluginConfig)))]
pub async fn get_config(
    TenantAuth(tenant, _): TenantAuth,
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
) -> Result<Json<PluginConfig>, ApiError> {
    let w = world(&name)?;
    Ok(Json(PluginConfig { config: (*registry.config(&tenant.id, w)?).clone() }))
}

/// Replaces the settings; the next decision uses them (no re-upload).
#[utoipa::path(put, path = "/v1/plugins/{world}/config", tag = "plugins", params(("world" = String, Path)), request_body = PluginConfig,
    security(("tenant_key" = [])), responses((status = 200, body = PluginConfig), (status = 400, body = super::error::ErrorBody)))]
pub async fn put_config(
    TenantAuth(tenant, _): TenantAuth,
    State(registry): State<Arc<Registry>>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PluginConfig>,
) -> Result<Json<PluginConfig>, ApiError> {
    let w = world(&name)?;
    if body.config.len() > 256 || body.config.iter().any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 16 * 1024)
    {
        return Err(ApiError::bad_request("invalid_config", "at most 256 settings; keys 1–128 bytes, values ≤ 16 KiB"));
    }
    registry.set_config(&tenant.id, w, &body.config)?;
    Ok(Json(body))
}
