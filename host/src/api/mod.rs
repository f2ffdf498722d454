//! The HTTP edge: the webhook, the tenant API, and operations endpoints.
//!
//! Handlers are thin: they authenticate, call a stage, and map its typed
//! error once, here, into the one JSON error shape:
//!
//! ```json
//! {"error": {"status": 404, "code": "not_found", "message": "no contact ct_… in this tenant"}}
//! ```

pub(crate) mod admin;
mod companies;
mod control;
mod doc;
mod error;
mod identity;
mod ops;
pub(crate) mod plugins;
mod records;
mod sync;
mod webhooks;

pub use doc::ApiDoc;
pub use error::ApiError;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::get;
use serde::de::DeserializeOwned;

use crate::pipeline::{Pipeline, Stages};
use crate::tenants::Tenant;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    /// Refused webhooks that name no known phone-number id, host-wide.
    pub unverified_limit: Arc<governor::DefaultDirectRateLimiter>,
    /// Plugin uploads being checked and compiled.
    pub uploads: Arc<crate::plugins::uploads::Uploads>,
}

impl AppState {
    pub fn new(pipeline: Arc<Pipeline>, uploads: Arc<crate::plugins::uploads::Uploads>) -> AppState {
        use std::num::NonZeroU32;
        let per_second = NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        AppState { pipeline, unverified_limit: Arc::new(governor::RateLimiter::direct(quota)), uploads }
    }

    pub fn stages(&self) -> &Stages {
        &self.pipeline.stages
    }
}

/// The whole HTTP application. Tests call this with their own state.
pub fn app(state: AppState) -> Router {
    let webhook_limit = state.stages().config.webhook.max_body_bytes;
    Router::new()
        .route(
            "/webhooks/whatsapp",
            get(webhooks::verify).post(webhooks::receive).layer(DefaultBodyLimit::max(webhook_limit)),
        )
        .merge(records::routes())
        .merge(companies::routes())
        .merge(identity::routes())
        .merge(sync::routes())
        .merge(plugins::routes())
        .merge(admin::routes())
        .merge(control::routes())
        .merge(ops::routes(state.stages().config.server.metrics_listen.is_none()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(state)
}

/// The operator-only listener's application (`server.metrics_listen`).
pub fn operator_app(state: AppState) -> Router {
    ops::operator_routes()
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}

/// The tenant a request's API key belongs to (and the key's record).
pub struct TenantAuth(pub Tenant, pub crate::tenants::ApiKey);

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let key = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::unauthorized("send the tenant API key as `Authorization: Bearer <key>`"))?;
        match state.stages().tenants.by_api_key(key)? {
            Some((t, k)) => Ok(TenantAuth(t, k)),
            None => Err(ApiError::unauthorized("the API key is not valid (or was revoked)")),
        }
    }
}

/// `Json<T>` whose rejections use the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::new(rejection.status(), "invalid_body", rejection.body_text())),
        }
    }
}
