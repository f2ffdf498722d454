//! CRM sync endpoints and dead letters.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, AppState, TenantAuth};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::model::new_id;
use crate::store::Batch;
use crate::sync::{DeadLetter, Endpoint, EventKind, Health, Outbox as SyncOutbox};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where events are POSTed.
    pub url: String,
    /// Event types to send; default: all.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    pub endpoint: Endpoint,
    /// Verifies `X-Switchboard-Signature` (HMAC-SHA256 of the body). Shown once.
    pub secret: String,
}

/// Adds a CRM endpoint. Every later CRM change is delivered to it.
#[utoipa::path(post, path = "/v1/sync/endpoints", tag = "crm sync", request_body = NewEndpoint, security(("tenant_key" = [])),
    responses((status = 201, body = CreatedEndpoint), (status = 400, body = super::error::ErrorBody)))]
pub async fn create(
    TenantAuth(tenant, _): TenantAuth,
    State(sync): State<SyncOutbox>,
    State(clock): State<SharedClock>,
    State(config): State<Arc<Config>>,
    ApiJson(new): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let url = reqwest::Url::parse(&new.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| ApiError::bad_request("invalid_endpoint", "url must be an http(s) URL"))?;
    if !config.sync.allow_internal_destinations {
        crate::sync::destination::check_url(&url)
            .map_err(|e| ApiError::bad_request("internal_destination", e.to_string()))?;
    }
    if let Some(bad) = new.events.iter().find(|e| EventKind::parse(e).is_none()) {
        return Err(ApiError::bad_request(
            "invalid_endpoint",
            format!("unknown event type {bad:?}; types: {}", EventKind::ALL.map(EventKind::as_str).join(", ")),
        ));
    }
    let secret = crate::tenants::generate_secret("whsec_");
    let endpoint = Endpoint {
        id: new_id("ep"),
        tenant: tenant.id.clone(),
        url: new.url,
        secret: secret.clone(),
        events: new.events,
        created_at: clock.now_ms(),
    };
    sync.endpoints.put(&endpoint)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint: Endpoint { secret: String::new(), ..endpoint }, secret }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct EndpointView {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub pending: usize,
    pub health: Health,
}

#[derive(Serialize, ToSchema)]
pub struct EndpointList {
    pub endpoints: Vec<EndpointView>,
}

/// The tenant's endpoints, with what is waiting and how delivery goes.
#[utoipa::path(get, path = "/v1/sync/endpoints", tag = "crm sync", security(("tenant_key" = [])), responses((status = 200, body = EndpointList)))]
pub async fn list(
    TenantAuth(tenant, _): TenantAuth,
    State(sync): State<SyncOutbox>,
) -> Result<Json<EndpointList>, ApiError> {
    let mut endpoints = Vec::new();
    for e in sync.endpoints.list(&tenant.id)? {
        endpoints.push(EndpointView {
            pending: sync.pending(&e.id)?,
            health: sync.endpoints.health(&e),
            endpoint: Endpoint { secret: String::new(), ..e },
        });
    }
    Ok(Json(EndpointList { endpoints }))
}

/// Removes an endpoint and drops what was waiting for it.
#[utoipa::path(delete, path = "/v1/sync/endpoints/{id}", tag = "crm sync", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn remove(
    TenantAuth(tenant, _): TenantAuth,
    State(sync): State<SyncOutbox>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let e = sync
        .endpoints
        .get(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no endpoint {id} in this tenant")))?;
    sync.endpoints.delete(&e)?;
    sync.drop_queue(&e.id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetters {
    pub dead_letters: Vec<DeadLetter>,
}

/// Events that could not be delivered after every attempt.
#[utoipa::path(get, path = "/v1/sync/dead-letters", tag = "crm sync", security(("tenant_key" = [])), responses((status = 200, body = DeadLetters)))]
pub async fn dead_letters(
    TenantAuth(tenant, _): TenantAuth,
    State(sync): State<SyncOutbox>,
) -> Result<Json<DeadLetters>, ApiError> {
    Ok(Json(DeadLetters { dead_letters: sync.endpoints.dead_letters(&tenant.id)? }))
}

/// Sends a dead-lettered event again (queued after the contact's newer events).
#[utoipa::path(post, path = "/v1/sync/dead-letters/{id}/replay", tag = "crm sync", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 202), (status = 404, body = super::error::ErrorBody)))]
pub async fn replay(
    TenantAuth(tenant, _): TenantAuth,
    State(sync): State<SyncOutbox>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let d = sync
        .endpoints
        .dead_letter(&tenant.id, &id)?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter {id} in this tenant")))?;
    sync.endpoints.get(&tenant.id, &d.endpoint)?.ok_or_else(|| ApiError::not_found("its endpoint was removed"))?;
    let mut batch = Batch::new();
    let key = crate::store::keys::join(&[tenant.id.as_bytes(), d.event.id.as_bytes()]);
    sync.requeue(&mut batch, &d.endpoint, &d.event.contact_id, &key)?;
    sync.endpoints.remove_dead(&mut batch, &tenant.id, &id);
    sync.commit(batch)?;
    Ok(StatusCode::ACCEPTED)
}
