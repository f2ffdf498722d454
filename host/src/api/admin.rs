//! The operator API: tenants and their API keys. Authenticated by the
//! admin token from the configuration (`server.admin_token`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, blocking};
use crate::clock::SharedClock;
use crate::config::{Config, PluginLimits};
use crate::control::storm::StormLimits;
use crate::tenants::{ApiKey, NewTenant, Tenant, TenantPatch, Tenants};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// A request carrying the operator's admin token.
pub struct AdminAuth;

impl<S: Send + Sync> FromRequestParts<S> for AdminAuth
where
    Arc<Config>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let config = Arc::<Config>::from_ref(state);
        let Some(expected) = config.server.admin_token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "the operator API is disabled: set server.admin_token (SWITCHBOARD_SERVER__ADMIN_TOKEN)",
            ));
        };
        let given = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(AdminAuth)
        } else {
            Err(ApiError::unauthorized("send the admin token as `Authorization: Bearer <token>`"))
        }
    }
}

/// A tenant as the API shows it: secrets are write-only.
#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub phone_number_ids: Vec<String>,
    /// The WhatsApp Business Account (message templates live there).
    pub waba_id: Option<String>,
    /// Contacts' messages are marked read when answered.
    pub read_receipts: bool,
    /// Per number; `null`: the operator's.
    pub messages_per_second: Option<u32>,
    /// Meta's messaging limit per number; `null`: unlimited.
    pub unique_users_per_day: Option<u32>,
    pub timezone: String,
    pub default_region: String,
    pub disabled: bool,
    /// Per-tenant limits; `null` means the operator's defaults apply.
    pub limits: Option<PluginLimits>,
    /// Per-tenant caps on automated messages; `null`: the operator's.
    pub automation: Option<StormLimits>,
    pub has_app_secret: bool,
    pub has_access_token: bool,
    pub has_verify_token: bool,
    pub opt_out_keywords: Vec<String>,
    pub opt_in_keywords: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        TenantView {
            has_app_secret: !t.app_secret.is_empty(),
            has_access_token: t.access_token.is_some(),
            has_verify_token: t.verify_token.is_some(),
            id: t.id,
            name: t.name,
            phone_number_ids: t.phone_number_ids,
            waba_id: t.waba_id,
            read_receipts: t.read_receipts,
            messages_per_second: t.messages_per_second,
            unique_users_per_day: t.unique_users_per_day,
            timezone: t.timezone,
            default_region: t.default_region,
            disabled: t.disabled,
            limits: t.limits,
            automation: t.automation,
            opt_out_keywords: t.opt_out_keywords,
            opt_in_keywords: t.opt_in_keywords,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantView>,
}

/// All tenants.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "operator", security(("admin_token" = [])),
    responses((status = 200, body = TenantList), (status = 401, body = super::error::ErrorBody)))]
pub async fn list_tenants(_: AdminAuth, State(tenants): State<Tenants>) -> Result<Json<TenantList>, ApiError> {
    let tenants = tenants.list()?.into_iter().map(TenantView::from).collect();
    Ok(Json(TenantList { tenants }))
}

/// Creates a tenant.
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "operator", request_body = NewTenant, security(("admin_token" = [])),
    responses((status = 201, body = TenantView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_tenant(
    _: AdminAuth,
    State(tenants): State<Tenants>,
    State(config): State<Arc<Config>>,
    State(clock): State<SharedClock>,
    ApiJson(new): ApiJson<NewTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    let now = clock.now_ms();
    let tenant = blocking(move || tenants.create_from(new, &config.plugins, now)).await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

fn load(tenants: &Tenants, id: &str) -> Result<Tenant, ApiError> {
    tenants.get(id)?.ok_or_else(|| ApiError::not_found(format!("no tenant {id}")))
}

/// One tenant.
#[utoipa::path(get, path = "/admin/v1/tenants/{id}", tag = "operator", params(("id" = String, Path)), security(("admin_token" = [])),
    responses((status = 200, body = TenantView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_tenant(
    _: AdminAuth,
    State(tenants): State<Tenants>,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    Ok(Json(load(&tenants, &id)?.into()))
}

/// Updates (or disables, with `"disabled": true`) a tenant. A disabled
/// tenant's webhooks are acknowledged and ignored and its keys stop working.
#[utoipa::path(patch, path = "/admin/v1/tenants/{id}", tag = "operator", params(("id" = String, Path)), request_body = TenantPatch,
    security(("admin_token" = [])),
    responses((status = 200, body = TenantView), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn update_tenant(
    _: AdminAuth,
    State(tenants): State<Tenants>,
    State(config): State<Arc<Config>>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TenantPatch>,
) -> Result<Json<TenantView>, ApiError> {
    let now = clock.now_ms();
    Ok(Json(blocking(move || tenants.update(&id, patch, &config.plugins, now)).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What the key is for, e.g. `ci-deploy`; shown as the uploader of plugins.
    pub label: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key itself. Shown once: only its hash is kept.
    pub key: String,
    #[serde(flatten)]
    pub record: ApiKey,
}

/// Creates an API key for the tenant; the response is the only time the key is shown.
#[utoipa::path(post, path = "/admin/v1/tenants/{id}/api-keys", tag = "operator", params(("id" = String, Path)), request_body = NewKey,
    security(("admin_token" = [])),
    responses((status = 201, body = CreatedKey), (status = 404, body = super::error::ErrorBody)))]
pub async fn create_key(
    _: AdminAuth,
    State(tenants): State<Tenants>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let t = load(&tenants, &id)?;
    if new.label.trim().is_empty() || new.label.len() > 64 {
        return Err(ApiError::bad_request("invalid_label", "label: 1–64 characters"));
    }
    let (key, record) = tenants.create_api_key(&t.id, new.label.trim(), clock.now_ms())?;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, record })))
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

/// The tenant's API keys (ids and labels; the keys are never stored).
#[utoipa::path(get, path = "/admin/v1/tenants/{id}/api-keys", tag = "operator", params(("id" = String, Path)),
    security(("admin_token" = [])), responses((status = 200, body = KeyList), (status = 404, body = super::error::ErrorBody)))]
pub async fn list_keys(
    _: AdminAuth,
    State(tenants): State<Tenants>,
    Path(id): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    let t = load(&tenants, &id)?;
    Ok(Json(KeyList { keys: tenants.api_keys(&t.id)? }))
}

/// Revokes an API key; it stops working at once.
#[utoipa::path(delete, path = "/admin/v1/tenants/{id}/api-keys/{key_id}", tag = "operator",
    params(("id" = String, Path), ("key_id" = String, Path)), security(("admin_token" = [])),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn revoke_key(
    _: AdminAuth,
    State(tenants): State<Tenants>,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let t = load(&tenants, &id)?;
    if tenants.revoke_api_key(&t.id, &key_id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("tenant {id} has no key {key_id}")))
    }
}
