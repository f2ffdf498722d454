//! Message templates: the tenant's list, a sync from Meta, creating and
//! deleting them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth, blocking};
use crate::clock::{Millis, SharedClock};
use crate::templates::{NewTemplate, SyncReport, TemplateDef, Templates};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(sync)).routes(routes!(delete))
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only templates with this status (`APPROVED`, `PAUSED`…).
    pub status: Option<String>,
    /// Only templates with this name.
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateDef>,
    /// When the list was last read from Meta; `null`: never (template
    /// sends are then not checked before Meta sees them).
    pub synced_at: Option<Millis>,
}

/// The tenant's templates, as last synced and as webhooks changed them.
#[utoipa::path(get, path = "/v1/templates", tag = "templates", params(ListQuery), security(("tenant_key" = [])),
    responses((status = 200, body = TemplateList)))]
pub async fn list(
    TenantAuth(tenant, _): TenantAuth,
    State(templates): State<Templates>,
    Query(q): Query<ListQuery>,
) -> Result<Json<TemplateList>, ApiError> {
    let (mut defs, synced_at) = blocking(move || {
        let defs = templates.list(&tenant.id)?;
        Ok::<_, crate::store::StoreError>((defs, templates.synced_at(&tenant.id)?))
    })
    .await?;
    defs.retain(|d| {
        q.status.as_ref().is_none_or(|s| d.status.eq_ignore_ascii_case(s))
            && q.name.as_ref().is_none_or(|n| &d.name == n)
    });
    Ok(Json(TemplateList { templates: defs, synced_at }))
}

/// Reads every template of the tenant's WhatsApp Business Account from
/// Meta (all pages) and keeps exactly those.
#[utoipa::path(post, path = "/v1/templates/sync", tag = "templates", security(("tenant_key" = [])),
    responses((status = 200, body = SyncReport), (status = 422, body = super::error::ErrorBody),
        (status = 502, body = super::error::ErrorBody)))]
pub async fn sync(
    TenantAuth(tenant, _): TenantAuth,
    State(templates): State<Templates>,
    State(clock): State<SharedClock>,
) -> Result<Json<SyncReport>, ApiError> {
    Ok(Json(templates.sync(&tenant, clock.now_ms()).await?))
}

/// Submits a template for Meta's review; it is kept with the status Meta
/// gave (usually `PENDING`) and changes as Meta's webhooks say.
#[utoipa::path(post, path = "/v1/templates", tag = "templates", request_body = NewTemplate, security(("tenant_key" = [])),
    responses((status = 201, body = TemplateDef), (status = 422, body = super::error::ErrorBody),
        (status = 502, body = super::error::ErrorBody)))]
pub async fn create(
    TenantAuth(tenant, _): TenantAuth,
    State(templates): State<Templates>,
    State(clock): State<SharedClock>,
    ApiJson(new): ApiJson<NewTemplate>,
) -> Result<(StatusCode, Json<TemplateDef>), ApiError> {
    Ok((StatusCode::CREATED, Json(templates.create(&tenant, new, clock.now_ms()).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct DeleteQuery {
    /// Only this language; default: every language of the name.
    pub language: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: usize,
}

/// Deletes a template at Meta (in every language, or one) and here.
#[utoipa::path(delete, path = "/v1/templates/{name}", tag = "templates", params(("name" = String, Path), DeleteQuery),
    security(("tenant_key" = [])),
    responses((status = 200, body = Deleted), (status = 422, body = super::error::ErrorBody),
        (status = 502, body = super::error::ErrorBody)))]
pub async fn delete(
    TenantAuth(tenant, _): TenantAuth,
    State(templates): State<Templates>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<Json<Deleted>, ApiError> {
    Ok(Json(Deleted { deleted: templates.delete(&tenant, &name, q.language.as_deref()).await? }))
}
