//! The one JSON error shape, and every conversion of a stage's error into
//! it: the one place where errors meet HTTP status codes.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::control::Refusal;
use crate::control::staff::StaffError;
use crate::crm::EditError;
use crate::identity::duplicates::MergeError;
use crate::media::upload::UploadError as UploadMediaError;
use crate::plugins::{PluginError, UploadError};
use crate::store::StoreError;
use crate::templates::{TemplateError, Unsendable};
use crate::tenants::TenantError;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub status: u16,
    /// Stable, machine-readable: `not_found`, `unauthorized`, `bad_signature`…
    pub code: String,
    /// For people: what went wrong and what to do about it.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// What went wrong inside, for the log, never the client (it can name
    /// paths and internals): see [`log_server_errors`].
    cause: Option<String>,
}

/// A server error's cause, handed from the response to [`log_server_errors`].
#[derive(Clone)]
struct Cause(String);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), cause: None }
    }

    /// Records what went wrong inside, for the log.
    pub fn because(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A write lost a race: read again and retry.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// A unique value is held by another record: retrying cannot help.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "already_exists", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Only a server error's cause is logged (by `log_server_errors`).
        let cause = self.status.is_server_error().then(|| self.cause.unwrap_or_else(|| self.message.clone()));
        let body = ErrorBody {
            error: ErrorDetail { status: self.status.as_u16(), code: self.code.to_string(), message: self.message },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(cause) = cause {
            response.extensions_mut().insert(Cause(cause));
        }
        response
    }
}

/// Logs every server error once, here, with its request and cause: the
/// code that fails only says why (`ApiError::because`), so nothing is
/// logged twice or not at all. A 503 is the server protecting itself
/// (storage refusing writes, shutting down) and is a warning; anything
/// else is an error.
pub async fn log_server_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // Cheap to keep for every request: a method is a small value, a URI
    // shares the request's bytes.
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    let status = response.status();
    if status.is_server_error() {
        let cause = response.extensions().get::<Cause>().map_or("", |c| c.0.as_str());
        let path = uri.path();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%method, %path, status = status.as_u16(), %cause, "request refused");
        } else {
            tracing::error!(%method, %path, status = status.as_u16(), %cause, "request failed");
        }
    }
    response
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::conflict("the record changed while being written; retry"),
            StoreError::Taken { .. } => ApiError::already_exists("another record already holds this unique value"),
            other => ApiError::unavailable("storage is unavailable; retry later").because(other),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let unprocessable = |code, msg: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg);
        match e {
            UploadError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "component_too_large", e.to_string())
            }
            UploadError::Invalid(inner) => match inner {
                PluginError::NotAComponent(_) => unprocessable("not_a_component", inner.to_string()),
                PluginError::WrongWorld(_) => unprocessable("wrong_world", inner.to_string()),
                PluginError::UnsupportedVersion(_) => unprocessable("unsupported_wit_version", inner.to_string()),
                PluginError::ForbiddenImport(_) => unprocessable("forbidden_import", inner.to_string()),
                PluginError::Compile(_) | PluginError::TooLarge { .. } => {
                    unprocessable("compile_failed", inner.to_string())
                }
                PluginError::Engine(_) => ApiError::unavailable(inner.to_string()),
            },
            UploadError::WorldMismatch { .. } => unprocessable("wrong_world", e.to_string()),
            UploadError::SampleRun(_) => unprocessable("sample_run_failed", e.to_string()),
            UploadError::UnknownVersion(_) => ApiError::not_found(e.to_string()),
            UploadError::Retired(_) | UploadError::NothingToRollBack => ApiError::conflict(e.to_string()),
            UploadError::Store(s) => s.into(),
        }
    }
}

impl From<StaffError> for ApiError {
    fn from(e: StaffError) -> Self {
        match e {
            StaffError::NoConversation(_) | StaffError::NoContact(_) | StaffError::NoMessage(_) => {
                ApiError::not_found(e.to_string())
            }
            StaffError::WindowClosed => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "window_closed", e.to_string()),
            StaffError::Refused(r) => {
                let code = match r {
                    Refusal::NeedsPhone => "needs_phone",
                    Refusal::MarketingStopped => "marketing_stopped",
                    Refusal::Template(Unsendable::Unknown { .. }) => "unknown_template",
                    Refusal::Template(Unsendable::Paused { .. }) => "template_paused",
                    Refusal::Template(Unsendable::NotApproved { .. }) => "template_not_approved",
                    Refusal::Template(Unsendable::Invalid { .. }) => "invalid_template_parameters",
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, r.to_string())
            }
            StaffError::OptedOut => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "opted_out", e.to_string()),
            StaffError::PauseInThePast => ApiError::bad_request("invalid_pause", e.to_string()),
            StaffError::KeptChanging(_) => ApiError::conflict(e.to_string()),
            StaffError::Store(s) => s.into(),
        }
    }
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::NotFound(_) => ApiError::not_found(e.to_string()),
            EditError::Invalid { code, message } => ApiError::bad_request(code, message),
            EditError::Taken(_) => ApiError::already_exists(e.to_string()),
            EditError::InUse(_) | EditError::KeptChanging(_) => ApiError::conflict(e.to_string()),
            EditError::Store(s) => s.into(),
        }
    }
}

impl From<MergeError> for ApiError {
    fn from(e: MergeError) -> Self {
        match e {
            MergeError::NoContact(_) | MergeError::NoMerge(_) => ApiError::not_found(e.to_string()),
            MergeError::Same => ApiError::bad_request("invalid_merge", e.to_string()),
            MergeError::AlreadyMerged(_) | MergeError::AlreadyUndone => ApiError::conflict(e.to_string()),
            MergeError::Store(s) => s.into(),
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::PhoneNumberTaken(p) => {
                ApiError::already_exists(format!("phone-number id {p} already belongs to another tenant"))
            }
            TenantError::Exists(id) => ApiError::already_exists(format!("tenant {id} already exists")),
            TenantError::NotFound(id) => ApiError::not_found(format!("no tenant {id}")),
            TenantError::Invalid(why) => ApiError::bad_request("invalid_tenant", why),
            TenantError::Store(e) => e.into(),
        }
    }
}

/// Meta's answer to a call made for the client: failing or unreachable
/// (the client may retry) or refusing what was asked.
fn meta(e: &crate::outbound::SendError) -> (StatusCode, &'static str) {
    if e.retryable {
        (StatusCode::BAD_GATEWAY, "meta_unavailable")
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, "meta_refused")
    }
}

impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        if let TemplateError::Store(s) = e {
            return s.into();
        }
        let (status, code) = match &e {
            TemplateError::NoAccount => (StatusCode::UNPROCESSABLE_ENTITY, "no_business_account"),
            TemplateError::NoToken => (StatusCode::UNPROCESSABLE_ENTITY, "no_access_token"),
            // Meta could not be reached or failed: the client may retry.
            TemplateError::Meta(m) => meta(m),
            TemplateError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_template"),
            TemplateError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            TemplateError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<UploadMediaError> for ApiError {
    fn from(e: UploadMediaError) -> Self {
        let (status, code) = match &e {
            UploadMediaError::NoToken => (StatusCode::UNPROCESSABLE_ENTITY, "no_access_token"),
            UploadMediaError::Unsupported(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            UploadMediaError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"),
            UploadMediaError::Meta(m) => meta(m),
        };
        ApiError::new(status, code, e.to_string())
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not accept that method")
}

/// Rewrites any error response that is not already in the one JSON shape —
/// axum's own rejections (a malformed query string or path, a body over
/// the limit, a wrong content type) answer in plain text — so clients
/// parse one shape for every error, whatever produced it.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        s if s.is_server_error() => "internal",
        _ => "invalid_request",
    };
    let message = if text.trim().is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let mut rewritten = ApiError::new(status, code, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// Collects what the log writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn call(path: &str) -> (StatusCode, String) {
        let app = Router::new()
            .route(
                "/broken",
                get(|| async {
                    Err::<(), _>(
                        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "it broke")
                            .because("disk /srv/x on fire"),
                    )
                }),
            )
            .route(
                "/busy",
                get(|| async { Err::<(), _>(ApiError::unavailable("retry later").because("storage refuses writes")) }),
            )
            .route("/missing", get(|| async { Err::<(), _>(ApiError::not_found("no such thing")) }))
            .layer(axum::middleware::map_response(json_errors))
            .layer(axum::middleware::from_fn(log_server_errors));
        let response = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A server error is logged once, with its request and its cause; the
    /// client gets the JSON shape and the message, never the cause. A
    /// client error is not logged.
    #[test]
    fn a_server_error_is_logged_once_with_its_cause_and_the_cause_stays_inside() {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (broken, busy, missing) = tracing::subscriber::with_default(subscriber, || {
            rt.block_on(async { (call("/broken").await, call("/busy").await, call("/missing").await) })
        });

        assert_eq!(broken.0, StatusCode::INTERNAL_SERVER_ERROR);
        let body: serde_json::Value = serde_json::from_str(&broken.1).unwrap();
        assert_eq!(
            (body["error"]["code"].as_str(), body["error"]["message"].as_str()),
            (Some("internal"), Some("it broke"))
        );
        assert!(!broken.1.contains("on fire") && !busy.1.contains("refuses"), "a cause reached the client");
        assert_eq!(missing.0, StatusCode::NOT_FOUND);

        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per server error, none for the 404:\n{text}");
        assert!(
            lines[0].contains("ERROR") && lines[0].contains("/broken") && lines[0].contains("disk /srv/x on fire"),
            "{text}"
        );
        assert!(
            lines[1].contains("WARN") && lines[1].contains("/busy") && lines[1].contains("storage refuses writes"),
            "{text}"
        );
    }
}
