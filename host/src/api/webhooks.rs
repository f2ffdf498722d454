//! `GET|POST /webhooks/whatsapp`.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, AppState};
use crate::ingest::{IngestError, payload, signature};
use crate::metrics::labels;
use crate::pipeline::{Owners, Received};

#[derive(Deserialize, IntoParams)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's subscription handshake: echo the challenge when the token matches.
#[utoipa::path(get, path = "/webhooks/whatsapp", tag = "webhook", params(Handshake),
    responses((status = 200, description = "the challenge, as plain text", body = String),
              (status = 403, description = "wrong mode or token", body = super::error::ErrorBody)))]
pub async fn verify(State(state): State<AppState>, Query(q): Query<Handshake>) -> Result<String, ApiError> {
    let token = q.verify_token.unwrap_or_default();
    let token_ok = !token.is_empty()
        && (token == state.stages().config.webhook.verify_token
            || state.stages().tenants.accepts_verify_token(&token)?);
    match (q.mode.as_deref(), token_ok, q.challenge) {
        (Some("subscribe"), true, Some(challenge)) => Ok(challenge),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "verification_failed",
            "hub.mode must be subscribe and hub.verify_token must match",
        )),
    }
}

/// Every POST must be signed. A body is verified with the app secret of
/// every tenant that owns one of its phone-number ids; a body that names
/// no known number (a number no tenant owns yet, fields without one) with
/// one of the operator's configured app secrets (`webhook.app_secrets`).
/// Refusals of bodies that name no known number are counted, and past a
/// rate they get `429` and no log line, so a flood costs little.
fn authenticate(state: &AppState, owners: &Owners, body: &[u8], header: Option<&str>) -> Result<(), ApiError> {
    let refused = |e: IngestError| {
        let code = if e == IngestError::MissingSignature { "missing_signature" } else { "bad_signature" };
        ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
    };
    let mut verified = std::collections::BTreeSet::new();
    for tenant in owners.tenants() {
        if verified.insert(tenant.id.clone()) {
            signature::verify(tenant.app_secret.as_bytes(), body, header).map_err(refused)?;
        }
    }
    if !verified.is_empty() {
        return Ok(());
    }
    let s = state.stages();
    let secrets = &s.config.webhook.app_secrets;
    let mut outcome = Err(if header.is_none() { IngestError::MissingSignature } else { IngestError::BadSignature });
    for secret in secrets {
        outcome = signature::verify(secret.as_bytes(), body, header);
        if outcome.is_ok() {
            return Ok(());
        }
    }
    s.metrics.unverified_webhooks.inc();
    if state.unverified_limit.check().is_err() {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_unverified",
            "too many unsigned webhooks for unknown phone-number ids; slow down",
        ));
    }
    tracing::warn!(
        phone_number_ids = ?owners.phones.keys().collect::<Vec<_>>(),
        business_accounts = ?owners.wabas.keys().collect::<Vec<_>>(),
        "refused a webhook that names no known phone-number id and is not signed with an operator app secret"
    );
    Err(refused(outcome.err().unwrap_or(IngestError::BadSignature)))
}

/// Event notifications. Answered 200 only once the events are on disk.
#[utoipa::path(post, path = "/webhooks/whatsapp", tag = "webhook",
    params(("X-Hub-Signature-256" = String, Header, description = "sha256=<hex HMAC of the raw body with the app secret>")),
    request_body(content = Object, description = "Meta's webhook notification"),
    responses((status = 200, body = Received),
              (status = 400, description = "not JSON / not a WhatsApp notification", body = super::error::ErrorBody),
              (status = 401, description = "missing or wrong signature", body = super::error::ErrorBody),
              (status = 413, description = "body over webhook.max_body_bytes", body = super::error::ErrorBody),
              (status = 429, description = "too many refused bodies naming no known phone-number id", body = super::error::ErrorBody),
              (status = 503, description = "could not store durably; Meta will retry", body = super::error::ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Received>, ApiError> {
    let started = Instant::now();
    let result = accept(&state, &headers, body).await;
    let outcome = match &result {
        Ok(_) => "accepted",
        Err(e) => e.code,
    };
    let s = state.stages();
    s.metrics.webhooks.get_or_create(&labels::Result { result: outcome }).inc();
    if result.is_ok() {
        s.metrics.webhook_ack_seconds.observe(started.elapsed().as_secs_f64());
    }
    result.map(Json)
}

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Received, ApiError> {
    let s = state.stages();
    let limit = s.config.webhook.max_body_bytes;
    let body = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body exceeds {limit} bytes"))
        }
        status => ApiError::new(status, "invalid_body", r.body_text()),
    })?;
    let now = s.clock.now_ms();
    let parsed = payload::parse(&body, now).map_err(|e| match e {
        IngestError::MalformedJson(_) => ApiError::bad_request("malformed_json", e.to_string()),
        _ => ApiError::bad_request("not_a_notification", e.to_string()),
    })?;

    // Each change belongs to the tenant owning its phone-number id.
    let pipeline = state.pipeline.clone();
    let (parsed, owners) = super::blocking(move || pipeline.owners(&parsed).map(|owners| (parsed, owners))).await?;
    let signature_header = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    authenticate(state, &owners, &body, signature_header)?;

    let pipeline = state.pipeline.clone();
    let received = super::blocking(move || pipeline.intake(parsed, &owners, now)).await?;
    // Duplicates too: the first delivery may have been committed and not
    // yet flushed when its answer failed.
    if received.accepted + received.duplicates + received.quarantined > 0 {
        s.store.sync().await?;
    }
    Ok(received)
}
