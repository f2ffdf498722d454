//! What webhooks delivered, as delivered: the quarantine of items that
//! could not be read (a tenant lists and replays its own; the operator
//! those no business number could be read from), and each message's and
//! status's raw JSON while `webhook.raw_retention` keeps it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin::AdminAuth;
use super::{ApiError, AppState, TenantAuth, blocking};
use crate::ingest::fields::{FieldEvent, FieldEvents};
use crate::ingest::quarantine::{OPERATOR, Quarantine, Quarantined};
use crate::ingest::raw::{RawItem, RawItems};
use crate::numbers::{NumberHealth, Numbers};
use crate::pipeline::{Pipeline, Replayed};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_item))
        .routes(routes!(replay_item))
        .routes(routes!(replay_all))
        .routes(routes!(operator_list))
        .routes(routes!(operator_replay_all))
        .routes(routes!(raw_of_message))
        .routes(routes!(webhook_events))
        .routes(routes!(operator_webhook_events))
        .routes(routes!(numbers))
}

#[derive(Deserialize, IntoParams)]
pub struct FieldQuery {
    /// Only this field (`account_update`, `message_template_status_update`…).
    field: Option<String>,
    /// Most recent events, 1–500 (default 100).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldEventList {
    /// Newest first.
    pub events: Vec<FieldEvent>,
}

async fn field_events(fields: FieldEvents, tenant: String, q: FieldQuery) -> Result<Json<FieldEventList>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let events = blocking(move || fields.list(&tenant, q.field.as_deref(), limit)).await?;
    Ok(Json(FieldEventList { events }))
}

/// Changes of webhook fields other than `messages` — account and number
/// updates, template reviews, calls, Business-app echoes, history, user
/// preferences — as Meta sent them.
#[utoipa::path(get, path = "/v1/webhook-events", tag = "webhook", params(FieldQuery), security(("tenant_key" = [])),
    responses((status = 200, body = FieldEventList)))]
pub async fn webhook_events(
    TenantAuth(tenant, _): TenantAuth,
    State(fields): State<FieldEvents>,
    Query(q): Query<FieldQuery>,
) -> Result<Json<FieldEventList>, ApiError> {
    field_events(fields, tenant.id, q).await
}

/// Field changes no tenant's number or business account was named in.
#[utoipa::path(get, path = "/admin/v1/webhook-events", tag = "operator", params(FieldQuery), security(("admin_token" = [])),
    responses((status = 200, body = FieldEventList)))]
pub async fn operator_webhook_events(
    _: AdminAuth,
    State(fields): State<FieldEvents>,
    Query(q): Query<FieldQuery>,
) -> Result<Json<FieldEventList>, ApiError> {
    field_events(fields, OPERATOR.to_string(), q).await
}

#[derive(Serialize, ToSchema)]
pub struct NumberList {
    pub numbers: Vec<NumberHealth>,
}

/// The tenant's business numbers with their health as Meta reports it
/// (quality events, messaging limit, name review, account standing) and
/// its history. Business-initiated templates are paused while a number
/// is `FLAGGED` or `RESTRICTED`.
#[utoipa::path(get, path = "/v1/numbers", tag = "webhook", security(("tenant_key" = [])),
    responses((status = 200, body = NumberList)))]
pub async fn numbers(
    TenantAuth(tenant, _): TenantAuth,
    State(numbers): State<Numbers>,
) -> Result<Json<NumberList>, ApiError> {
    Ok(Json(NumberList { numbers: blocking(move || numbers.of_tenant(&tenant)).await? }))
}

#[derive(Serialize, ToSchema)]
pub struct RawItemList {
    /// The message, then its statuses, as Meta sent them.
    pub items: Vec<RawItem>,
}

/// A message (by `wamid`) and the statuses about it exactly as Meta sent
/// them, while `webhook.raw_retention` keeps them.
#[utoipa::path(get, path = "/v1/messages/{id}/raw", tag = "webhook", params(("id" = String, Path, description = "the wamid")),
    security(("tenant_key" = [])), responses((status = 200, body = RawItemList)))]
pub async fn raw_of_message(
    TenantAuth(tenant, _): TenantAuth,
    State(raw): State<RawItems>,
    Path(id): Path<String>,
) -> Result<Json<RawItemList>, ApiError> {
    let (items, id) = blocking(move || raw.of_message(&tenant.id, &id).map(|items| (items, id))).await?;
    if items.is_empty() {
        return Err(ApiError::not_found(format!(
            "nothing kept for message {id} (unknown, or past webhook.raw_retention)"
        )));
    }
    Ok(Json(RawItemList { items }))
}

const MAX_PAGE: usize = 500;

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    /// Page size, 1–500 (default 50).
    limit: Option<usize>,
    /// The last id of the previous page.
    after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct QuarantinePage {
    /// In id order.
    pub items: Vec<Quarantined>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

async fn page(quarantine: Quarantine, tenant: String, query: PageQuery) -> Result<Json<QuarantinePage>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let items = blocking(move || quarantine.list(&tenant, query.after.as_deref(), limit)).await?;
    let next = (items.len() == limit).then(|| items.last().map(|i| i.id.clone())).flatten();
    Ok(Json(QuarantinePage { items, next }))
}

/// Webhook items of this tenant that could not be read, kept as Meta sent
/// them with the reason.
#[utoipa::path(get, path = "/v1/quarantine", tag = "webhook", params(PageQuery), security(("tenant_key" = [])),
    responses((status = 200, body = QuarantinePage)))]
pub async fn list(
    TenantAuth(tenant, _): TenantAuth,
    State(quarantine): State<Quarantine>,
    Query(query): Query<PageQuery>,
) -> Result<Json<QuarantinePage>, ApiError> {
    page(quarantine, tenant.id, query).await
}

/// One quarantined item.
#[utoipa::path(get, path = "/v1/quarantine/{id}", tag = "webhook", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Quarantined)))]
pub async fn get_item(
    TenantAuth(tenant, _): TenantAuth,
    State(quarantine): State<Quarantine>,
    Path(id): Path<String>,
) -> Result<Json<Quarantined>, ApiError> {
    let item = blocking(move || quarantine.get(&tenant.id, &id).map(|i| (i, id))).await?;
    match item {
        (Some(item), _) => Ok(Json(item)),
        (None, id) => Err(ApiError::not_found(format!("no quarantined item {id} in this tenant"))),
    }
}

/// Reads one item again, as after an upgrade: if this release can read
/// it, its events are processed and it leaves the quarantine; if not, it
/// stays with the latest reason.
#[utoipa::path(post, path = "/v1/quarantine/{id}/replay", tag = "webhook", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = Replayed)))]
pub async fn replay_item(
    TenantAuth(tenant, _): TenantAuth,
    State(pipeline): State<Arc<Pipeline>>,
    Path(id): Path<String>,
) -> Result<Json<Replayed>, ApiError> {
    let done = blocking(move || pipeline.replay_item(&tenant.id, &id).map(|r| (r, id))).await?;
    match done {
        (Some(replayed), _) => Ok(Json(replayed)),
        (None, id) => Err(ApiError::not_found(format!("no quarantined item {id} in this tenant"))),
    }
}

/// Reads every item of this tenant again.
#[utoipa::path(post, path = "/v1/quarantine/replay", tag = "webhook", security(("tenant_key" = [])),
    responses((status = 200, body = Replayed)))]
pub async fn replay_all(
    TenantAuth(tenant, _): TenantAuth,
    State(pipeline): State<Arc<Pipeline>>,
) -> Result<Json<Replayed>, ApiError> {
    Ok(Json(blocking(move || pipeline.replay_all(&tenant.id)).await?))
}

/// Items no business number could be read from (so no tenant's).
#[utoipa::path(get, path = "/admin/v1/quarantine", tag = "operator", params(PageQuery), security(("admin_token" = [])),
    responses((status = 200, body = QuarantinePage)))]
pub async fn operator_list(
    _: AdminAuth,
    State(quarantine): State<Quarantine>,
    Query(query): Query<PageQuery>,
) -> Result<Json<QuarantinePage>, ApiError> {
    page(quarantine, OPERATOR.to_string(), query).await
}

/// Reads the operator's items again; each one now readable goes to the
/// tenant owning the number it names.
#[utoipa::path(post, path = "/admin/v1/quarantine/replay", tag = "operator", security(("admin_token" = [])),
    responses((status = 200, body = Replayed)))]
pub async fn operator_replay_all(
    _: AdminAuth,
    State(pipeline): State<Arc<Pipeline>>,
) -> Result<Json<Replayed>, ApiError> {
    Ok(Json(blocking(move || pipeline.replay_all(OPERATOR)).await?))
}
