//! WhatsApp Cloud API client: `POST {graph_base}/{version}/{phone_number_id}/messages`.

use std::time::Duration;

use serde_json::{Value, json};

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
    ) -> Result<String, SendError> {
        let url = format!("{}/{}/{}/messages", self.base, self.version, phone_number_id);
        let body = body(to, reply, idempotency_key);
        let response = self.http.post(&url).bearer_auth(token).json(&body).send().await.map_err(|e| SendError {
            error: WhatsAppError { code: 0, title: "network error".into(), details: Some(e.to_string()) },
            retryable: true,
            retry_after: None,
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::retry::retry_after(v, std::time::SystemTime::now()));
        let text = response.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            if let Some(wamid) = json.pointer("/messages/0/id").and_then(Value::as_str) {
                return Ok(wamid.to_string());
            }
            return Err(SendError {
                error: WhatsAppError { code: 0, title: "response without a message id".into(), details: Some(text) },
                retryable: false,
                retry_after: None,
            });
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
}

/// The request body; `biz_opaque_callback_data` carries our message id so
/// status webhooks can be matched even before the send response is. A
/// person known only by BSUID is addressed with `recipient` instead of
/// `to` (Meta's business-scoped user id send).
fn body(to: &str, reply: &Reply, idempotency_key: &str) -> Value {
    let mut body = content(to, reply, idempotency_key);
    if crate::bsuid::is_bsuid(to)
        && let Some(fields) = body.as_object_mut()
        && let Some(bsuid) = fields.remove("to")
    {
        fields.insert("recipient".into(), bsuid);
    }
    body
}

fn content(to: &str, reply: &Reply, idempotency_key: &str) -> Value {
    match reply {
        Reply::Text { body } => json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": { "preview_url": false, "body": body },
            "biz_opaque_callback_data": idempotency_key,
        }),
        Reply::Template(t) => {
            let mut template = json!({ "name": t.name, "language": { "code": t.language } });
            if !t.parameters.is_empty() {
                let params: Vec<Value> = t.parameters.iter().map(|p| json!({ "type": "text", "text": p })).collect();
                template["components"] = json!([{ "type": "body", "parameters": params }]);
            }
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "template",
                "template": template,
                "biz_opaque_callback_data": idempotency_key,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Template;

    #[test]
    fn a_person_known_only_by_bsuid_is_addressed_as_recipient() {
        let text = body("US.13491208655302741918", &Reply::Text { body: "Hi".into() }, "msg_1");
        assert_eq!(text["recipient"], "US.13491208655302741918");
        assert!(text.get("to").is_none(), "{text}");
        let text = body("15551234567", &Reply::Text { body: "Hi".into() }, "msg_1");
        assert_eq!((text["to"].as_str(), text.get("recipient")), (Some("15551234567"), None));
    }

    #[test]
    fn bodies_follow_the_cloud_api() {
        let text = body("5511987654321", &Reply::Text { body: "Olá".into() }, "msg_1");
        assert_eq!(text["type"], "text");
        assert_eq!(text["text"]["body"], "Olá");
        assert_eq!(text["to"], "5511987654321");
        let t = Template {
            name: "follow_up_quote".into(),
            language: "pt_BR".into(),
            parameters: vec!["Ana".into()],
            category: None,
        };
        let tpl = body("5511987654321", &Reply::Template(t), "msg_2");
        assert_eq!(tpl["template"]["language"]["code"], "pt_BR");
        assert_eq!(tpl["template"]["components"][0]["parameters"][0]["text"], "Ana");
    }
}
