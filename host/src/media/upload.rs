//! Media out: a file staff (or an integration) will send, uploaded to the
//! tenant's number (`POST /{phone-number-id}/media`) so a message can name
//! it by id. Meta keeps uploads 30 days.

use crate::model::MediaKind;
use crate::outbound::{GraphClient, SendError};
use crate::tenants::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the tenant has no access token, so nothing can be uploaded to Meta")]
    NoToken,
    #[error("WhatsApp does not take {0} files (see its supported media types)")]
    Unsupported(String),
    #[error("{size} bytes: over WhatsApp's {limit} for {kind}")]
    TooLarge { size: usize, limit: u64, kind: &'static str },
    #[error("Meta answered with error {}: {}", .0.error.code, .0.error.title)]
    Meta(SendError),
}

/// What Meta's "Supported media types" lists, by MIME type.
pub fn kind_of(mime: &str) -> Option<MediaKind> {
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    Some(match mime.as_str() {
        "image/jpeg" | "image/png" => MediaKind::Image,
        "image/webp" => MediaKind::Sticker,
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => MediaKind::Audio,
        "video/mp4" | "video/3gpp" => MediaKind::Video,
        "text/plain"
        | "application/pdf"
        | "application/msword"
        | "application/vnd.ms-excel"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => MediaKind::Document,
        _ => return None,
    })
}

/// Uploads `bytes` to the tenant's first number; Meta's media id.
pub async fn upload(
    graph: &GraphClient,
    tenant: &Tenant,
    bytes: Vec<u8>,
    mime: &str,
    filename: &str,
) -> Result<(String, MediaKind), UploadError> {
    let kind = kind_of(mime).ok_or_else(|| UploadError::Unsupported(mime.to_string()))?;
    let limit = super::max_bytes(kind.as_str());
    if bytes.len() as u64 > limit {
        return Err(UploadError::TooLarge { size: bytes.len(), limit, kind: kind.as_str() });
    }
    let token = tenant.access_token.as_deref().ok_or(UploadError::NoToken)?;
    let number = tenant.phone_number_ids.first().map(String::as_str).unwrap_or_default();
    let id = graph.upload(number, token, bytes, mime, filename).await.map_err(UploadError::Meta)?;
    Ok((id, kind))
}
