//! The Graph API client: every call the host makes to Meta — sends,
//! template management, media — goes through [`GraphClient::call`], which
//! reads Meta's error shape once and says whether trying again can help.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::config::OutboundConfig;
use crate::ingest::WhatsAppError;
use crate::model::Reply;

/// Error codes that mean "slow down", retried like HTTP 429.
const THROTTLED: &[i64] = &[4, 80007, 130429, 131056];
/// Transient failures on Meta's side.
const TRANSIENT: &[i64] = &[1, 2, 131000, 131016];

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {}", .error.code, .error.title)]
pub struct SendError {
    pub error: WhatsAppError,
    pub retryable: bool,
    /// How long Meta asked us to wait (`Retry-After`), if it said.
    pub retry_after: Option<Duration>,
}

impl SendError {
    fn local(title: &str, details: String, retryable: bool) -> SendError {
        SendError {
            error: WhatsAppError { code: 0, title: title.into(), details: Some(details) },
            retryable,
            retry_after: None,
        }
    }
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    version: String,
}

impl GraphClient {
    pub fn new(config: &OutboundConfig) -> Result<GraphClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(config.concurrency)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(GraphClient {
            http,
            base: config.graph_base.trim_end_matches('/').to_string(),
            version: config.api_version.clone(),
        })
    }

    /// Sends once. Returns the `wamid` Meta assigned.
    pub async fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        to: &str,
        reply: &Reply,
        idempotency_key: &str,
        quoting: Option<&str>,
    ) -> Result<String, SendError> {
        let body = super::body::body(to, reply, idempotency_key, quoting);
        let path = format!("{phone_number_id}/messages");
        let answer = self.call(Method::POST, &path, token, &[], Some(&body)).await?;
        match answer.pointer("/messages/0/id").and_then(Value::as_str) {
            Some(wamid) => Ok(wamid.to_string()),
            None => Err(SendError::local("response without a message id", answer.to_string(), false)),
        }
    }

    /// One Graph API call to `{base}/{version}/{path}`, answered with
    /// Meta's JSON or its error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        let url = format!("{}/{}/{}", self.base, self.version, path.trim_start_matches('/'));
        let mut request = self.http.request(method, &url).bearer_auth(token).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.answer(request).await
    }

    /// Sends `request`; Meta's JSON answer, or its error read once.
    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Value, SendError> {
        let response = request.send().await.map_err(|e| SendError::local("network error", e.to_string(), true))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::retry::retry_after(v, std::time::SystemTime::now()));
        let text = response.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let code = json.pointer("/error/code").and_then(Value::as_i64).unwrap_or(i64::from(status.as_u16()));
        let error = WhatsAppError {
            code,
            title: json
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("HTTP {status}")),
            details: json.pointer("/error/error_data/details").and_then(Value::as_str).map(String::from),
        };
        let retryable = status.as_u16() == 429
            || status.is_server_error()
            || THROTTLED.contains(&code)
            || TRANSIENT.contains(&code);
        Err(SendError { error, retryable, retry_after })
    }

    /// Downloads a media URL Meta gave (it wants the same bearer token),
    /// refusing more than `max` bytes. A failure is worth retrying — the
    /// next attempt asks Meta for a fresh URL — unless the file is too
    /// large.
    pub async fn download(&self, url: &str, token: &str, max: u64) -> Result<Vec<u8>, SendError> {
        let network = |e: reqwest::Error| SendError::local("network error", e.to_string(), true);
        let mut response = self.http.get(url).bearer_auth(token).send().await.map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            return Err(SendError::local("media download refused", format!("HTTP {status}"), true));
        }
        let too_large = |n: u64| SendError::local("media too large", format!("{n} bytes; the limit is {max}"), false);
        if let Some(n) = response.content_length().filter(|n| *n > max) {
            return Err(too_large(n));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(too_large(bytes.len() as u64));
            }
        }
        Ok(bytes)
    }

    /// Uploads a file to the number (`POST /{phone-number-id}/media`, a
    /// multipart form as Meta takes it); returns Meta's media id.
    pub async fn upload(
        &self,
        phone_number_id: &str,
        token: &str,
        bytes: Vec<u8>,
        mime: &str,
        filename: &str,
    ) -> Result<String, SendError> {
        let url = format!("{}/{}/{phone_number_id}/media", self.base, self.version);
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_string())
            .mime_str(mime)
            .map_err(|e| SendError::local("not a MIME type", e.to_string(), false))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime.to_string())
            .part("file", part);
        let request = self.http.post(&url).bearer_auth(token).multipart(form);
        let answer = self.answer(request).await?;
        match answer.get("id").and_then(Value::as_str) {
            Some(id) => Ok(id.to_string()),
            None => Err(SendError::local("response without a media id", answer.to_string(), false)),
        }
    }
}
