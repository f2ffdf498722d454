//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the app secret.
//!
//! Always over the bytes as received: re-serialising the JSON would change
//! escaped unicode (emoji, accents) and break the check.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::IngestError;

type HmacSha256 = Hmac<Sha256>;

/// Checks `header` (`sha256=<hex>`) against `body`, in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), IngestError> {
    let header = header.ok_or(IngestError::MissingSignature)?;
    let hex_sig = header.trim().strip_prefix("sha256=").ok_or(IngestError::BadSignature)?;
    let expected = hex::decode(hex_sig).map_err(|_| IngestError::BadSignature)?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| IngestError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| IngestError::BadSignature)
}

/// The header value Meta would send for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_emoji_and_accents() {
        let body = "{\"text\":{\"body\":\"Olá! Qual o preço? 🙏 ñ\"}}".as_bytes();
        let header = sign(b"s3cret", body);
        assert_eq!(verify(b"s3cret", body, Some(&header)), Ok(()));
        assert_eq!(verify(b"other", body, Some(&header)), Err(IngestError::BadSignature));
        // The same JSON with escaped unicode is a different body.
        let escaped = br#"{"text":{"body":"Ol\u00e1! Qual o pre\u00e7o? \ud83d\ude4f \u00f1"}}"#;
        assert_eq!(verify(b"s3cret", escaped, Some(&header)), Err(IngestError::BadSignature));
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(verify(b"k", b"{}", None), Err(IngestError::MissingSignature));
        assert_eq!(verify(b"k", b"{}", Some("md5=abc")), Err(IngestError::BadSignature));
        assert_eq!(verify(b"k", b"{}", Some("sha256=zz")), Err(IngestError::BadSignature));
    }
}
