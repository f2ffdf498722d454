//! Inbound media files, served to the tenant's API clients.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, TenantAuth, blocking};
use crate::clock::SharedClock;
use crate::media::{Media, MediaRecord, MediaState};
use crate::model::MediaKind;
use crate::outbound::GraphClient;

pub fn routes() -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload))
        // Meta's largest file (a document) and a little room.
        .layer(DefaultBodyLimit::max(101 * 1024 * 1024));
    OpenApiRouter::new().routes(routes!(file)).routes(routes!(info)).routes(routes!(retry)).merge(uploads)
}

#[derive(Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The name a document is shown with (default `file`).
    pub filename: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    /// Meta's media id: send it as `{"type": "media", "kind": …, "id": …}`
    /// for 30 days.
    pub id: String,
    pub kind: MediaKind,
    pub mime_type: String,
    pub size: usize,
}

/// Uploads a file to the tenant's number for sending: the body is the
/// file, its `Content-Type` one WhatsApp takes (JPEG, PNG, WebP stickers,
/// AAC/AMR/MP3/MP4/OGG audio, MP4/3GPP video, PDF, Office and text
/// documents), within Meta's size for its kind.
#[utoipa::path(post, path = "/v1/media", tag = "media", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf", description = "the file, with its own Content-Type"),
    security(("tenant_key" = [])),
    responses((status = 201, body = Uploaded), (status = 413, body = super::error::ErrorBody),
        (status = 415, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody),
        (status = 502, body = super::error::ErrorBody)))]
pub async fn upload(
    TenantAuth(tenant, _): TenantAuth,
    State(graph): State<GraphClient>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let filename = q.filename.unwrap_or_else(|| "file".into());
    let size = body.len();
    let (id, kind) = crate::media::upload::upload(&graph, &tenant, body.to_vec(), &mime, &filename).await?;
    Ok((StatusCode::CREATED, Json(Uploaded { id, kind, mime_type: mime, size })))
}

/// Types a browser may show in place; anything else is served as a
/// download, so a file a contact sent cannot run as a page of ours.
const SHOWN_INLINE: [&str; 9] = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "video/mp4",
    "video/3gpp",
];

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("no media {id} in this tenant"))
}

/// The file a contact sent, as stored (`409 media_not_stored` while it is
/// still being fetched, or if fetching failed: see `…/info`).
#[utoipa::path(get, path = "/v1/media/{id}", tag = "media", params(("id" = String, Path, description = "Meta's media id")),
    security(("tenant_key" = [])),
    responses((status = 200, description = "the file, with its type", content_type = "*/*"),
        (status = 409, body = super::error::ErrorBody)))]
pub async fn file(
    TenantAuth(tenant, _): TenantAuth,
    State(media): State<Media>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = id.clone();
    let (record, bytes) = blocking(move || media.read(&tenant.id, &key)).await?.ok_or_else(|| missing(&id))?;
    let Some(bytes) = bytes else {
        let why = match (&record.state, &record.last_error) {
            (MediaState::Pending, Some(e)) => format!("pending, after {} failed attempt(s): {e}", record.attempts),
            (MediaState::Pending, None) => "pending: not downloaded yet".into(),
            (MediaState::Failed, e) => format!("failed: {}", e.as_deref().unwrap_or("unknown")),
            _ => "expired: kept past media.retention".into(),
        };
        return Err(ApiError::new(StatusCode::CONFLICT, "media_not_stored", format!("media {id} is {why}")));
    };
    let mime = record.mime_type.clone().unwrap_or_else(|| "application/octet-stream".into());
    let inline = SHOWN_INLINE.contains(&mime.as_str());
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(
        header::CONTENT_TYPE,
        if inline { content_type } else { HeaderValue::from_static("application/octet-stream") },
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    let disposition = if inline { "inline".to_string() } else { attachment(&record) };
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `attachment`, with the file's name: quoted when it is plain ASCII,
/// else percent-encoded as RFC 6266 says (`filename*=UTF-8''…`).
fn attachment(record: &MediaRecord) -> String {
    let Some(name) = record.filename.as_deref().filter(|n| !n.is_empty() && n.len() <= 200) else {
        return "attachment".into();
    };
    if name.chars().all(|c| c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\')) {
        return format!("attachment; filename=\"{name}\"");
    }
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("attachment; filename*=UTF-8''{encoded}")
}

/// The file's record: type, size, state, attempts and the last error.
#[utoipa::path(get, path = "/v1/media/{id}/info", tag = "media", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = MediaRecord)))]
pub async fn info(
    TenantAuth(tenant, _): TenantAuth,
    State(media): State<Media>,
    Path(id): Path<String>,
) -> Result<Json<MediaRecord>, ApiError> {
    let key = id.clone();
    Ok(Json(blocking(move || media.get(&tenant.id, &key)).await?.ok_or_else(|| missing(&id))?))
}

/// Plans a failed download again, now (a pending or stored one is left
/// as it is).
#[utoipa::path(post, path = "/v1/media/{id}/retry", tag = "media", params(("id" = String, Path)), security(("tenant_key" = [])),
    responses((status = 200, body = MediaRecord)))]
pub async fn retry(
    TenantAuth(tenant, _): TenantAuth,
    State(media): State<Media>,
    State(clock): State<SharedClock>,
    Path(id): Path<String>,
) -> Result<Json<MediaRecord>, ApiError> {
    let key = id.clone();
    let record = blocking(move || media.retry(&tenant.id, &key, clock.now_ms())).await?;
    Ok(Json(record.ok_or_else(|| missing(&id))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(filename: Option<&str>) -> String {
        let record = MediaRecord {
            media_id: "1".into(),
            message_id: "wamid.1".into(),
            conversation_id: "cv".into(),
            kind: "document".into(),
            mime_type: None,
            sha256: None,
            filename: filename.map(String::from),
            state: MediaState::Stored,
            attempts: 1,
            last_error: None,
            next_attempt_at: None,
            size: None,
            blob: None,
            received_at: 0,
            stored_at: None,
        };
        attachment(&record)
    }

    /// RFC 6266: a plain name quoted; any other as RFC 5987's
    /// `filename*=UTF-8''` with percent-encoded UTF-8.
    #[test]
    fn a_documents_name_goes_safely_into_the_header() {
        assert_eq!(named(Some("proposta final.pdf")), "attachment; filename=\"proposta final.pdf\"");
        assert_eq!(named(Some("relatório.pdf")), "attachment; filename*=UTF-8''relat%C3%B3rio.pdf");
        assert_eq!(named(Some("a\"b.pdf")), "attachment; filename*=UTF-8''a%22b.pdf");
        assert_eq!(named(Some("x\r\nSet-Cookie: y")), "attachment; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20y");
        assert_eq!(named(None), "attachment");
    }
}
