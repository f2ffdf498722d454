//! The HTTP edge: the webhook, the tenant API, and operations endpoints.
//!
//! Handlers are thin: they authenticate, take the stages they use as narrow
//! states, call a stage, and map its typed error once, here, into the one
//! JSON error shape:
//!
//! ```json
//! {"error": {"status": 404, "code": "not_found", "message": "no contact ct_… in this tenant"}}
//! ```

pub(crate) mod admin;
mod companies;
mod control;
mod delivered;
mod doc;
mod error;
mod identity;
mod media;
mod ops;
pub(crate) mod plugins;
mod records;
mod sync;
mod templates;
mod webhooks;

pub use doc::ApiDoc;
pub use error::ApiError;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::control::Control;
use crate::control::staff::StaffActions;
use crate::crm::Crm;
use crate::feedback::Signals;
use crate::followup::Timers;
use crate::identity::Identity;
use crate::identity::duplicates::Duplicates;
use crate::identity::import::Importer;
use crate::pipeline::{Pipeline, Stages};
use crate::plugins::Registry;
use crate::plugins::uploads::Uploads;
use crate::sync::Outbox as SyncOutbox;
use crate::tenants::{Tenant, Tenants};

/// Everything the HTTP edge holds. A handler does not take it whole: it
/// takes the stages it uses as narrow states (axum's `FromRef`, below), so
/// its signature says what it can reach.
#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    /// Refused webhooks that name no known phone-number id, host-wide.
    pub unverified_limit: Arc<governor::DefaultDirectRateLimiter>,
    /// Plugin uploads being checked and compiled.
    pub uploads: Arc<Uploads>,
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(pipeline: Arc<Pipeline>, uploads: Arc<Uploads>) -> AppState {
        use std::num::NonZeroU32;
        let per_second = NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN);
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        let config = Arc::new(pipeline.stages.config.clone());
        AppState { pipeline, unverified_limit: Arc::new(governor::RateLimiter::direct(quota)), uploads, config }
    }

    pub fn stages(&self) -> &Stages {
        &self.pipeline.stages
    }
}

/// A stage handle as a narrow state: cloning one is a few reference counts.
macro_rules! narrow_state {
    ($($ty:ty => |$s:ident| $e:expr),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref($s: &AppState) -> $ty {
                $e
            }
        }
    )*};
}

narrow_state! {
    Arc<Pipeline> => |s| s.pipeline.clone(),
    Arc<Config> => |s| s.config.clone(),
    Arc<Uploads> => |s| s.uploads.clone(),
    Crm => |s| s.stages().crm.clone(),
    Identity => |s| s.stages().identity.clone(),
    Importer => |s| s.stages().importer.clone(),
    Duplicates => |s| s.stages().duplicates.clone(),
    Tenants => |s| s.stages().tenants.clone(),
    Arc<Registry> => |s| s.stages().plugins.clone(),
    SyncOutbox => |s| s.stages().sync.clone(),
    StaffActions => |s| s.stages().staff.clone(),
    Control => |s| s.stages().control.clone(),
    Timers => |s| s.stages().timers.clone(),
    crate::ingest::quarantine::Quarantine => |s| s.stages().quarantine.clone(),
    crate::ingest::raw::RawItems => |s| s.stages().raw.clone(),
    crate::ingest::fields::FieldEvents => |s| s.stages().fields.clone(),
    crate::numbers::Numbers => |s| s.stages().numbers.clone(),
    Signals => |s| s.stages().signals.clone(),
    crate::templates::Templates => |s| s.stages().templates.clone(),
    crate::media::Media => |s| s.stages().media.clone(),
    crate::outbound::GraphClient => |s| s.stages().graph.clone(),
    SharedClock => |s| s.stages().clock.clone(),
}

/// Runs a stage's call on the blocking pool: stages read and write the
/// store, which blocks (sled on the disk; a networked engine on the
/// network), and an async worker must not.
pub(crate) async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    let done = tokio::task::spawn_blocking(f).await;
    Ok(done.map_err(|e| ApiError::unavailable("the server is stopping").because(e))??)
}

/// The routes the app serves and the OpenAPI document describing exactly
/// them: every operation is registered with its annotation (utoipa-axum),
/// so neither can drift from the other.
fn routes(config: &Config) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let webhook_limit = config.webhook.max_body_bytes;
    let (router, mut doc) = OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(webhooks::verify, webhooks::receive))
        .layer(DefaultBodyLimit::max(webhook_limit))
        .merge(records::routes())
        .merge(companies::routes())
        .merge(identity::routes())
        .merge(sync::routes())
        .merge(plugins::routes())
        .merge(admin::routes())
        .merge(delivered::routes())
        .merge(control::routes())
        .merge(templates::routes())
        .merge(media::routes())
        .merge(ops::routes(config.server.metrics_listen.is_none()))
        .split_for_parts();
    doc::complete(&mut doc);
    (router, doc)
}

/// The whole HTTP application. Tests call this with their own state.
pub fn app(state: AppState) -> Router {
    let (router, doc) = routes(&state.config);
    router
        .merge(ops::openapi_route(&doc))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn(error::log_server_errors))
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

impl<S: Send + Sync> FromRequestParts<S> for TenantAuth
where
    Tenants: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let key = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::unauthorized("send the tenant API key as `Authorization: Bearer <key>`"))?;
        match Tenants::from_ref(state).by_api_key(key)? {
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
