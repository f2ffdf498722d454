//! Meta's webhook payload: `object` → `entry[]` → `changes[]` → `value`
//! with `messages[]` and/or `statuses[]`. Several of each per POST.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{InboundMessage, IngestError, StatusUpdate, WhatsAppError};
use crate::clock::Millis;
use crate::model::{DeliveryStatus, MessageKind};

#[derive(Deserialize)]
struct Notification {
    object: String,
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    value: Value,
}

#[derive(Deserialize)]
struct MessagesValue {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Profile>,
    #[serde(default)]
    messages: Vec<RawMessage>,
    #[serde(default)]
    statuses: Vec<RawStatus>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Profile {
    wa_id: String,
    #[serde(default)]
    profile: Option<ProfileName>,
}

#[derive(Deserialize)]
struct ProfileName {
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    from: String,
    id: String,
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    context: Option<RawContext>,
    #[serde(default)]
    referral: Option<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct RawContext {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    timestamp: String,
    recipient_id: String,
    #[serde(default)]
    errors: Vec<RawError>,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    code: i64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// The messages and statuses of one `changes[]` item; they all belong to
/// the business phone number in its metadata.
#[derive(Debug, Default)]
pub struct ChangeBatch {
    pub phone_number_id: String,
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
}

/// A parsed notification. `tenant` fields are empty until the caller has
/// resolved the phone number to a tenant.
#[derive(Debug, Default)]
pub struct Parsed {
    pub changes: Vec<ChangeBatch>,
    /// Change fields we do not process (template and account updates…).
    pub ignored_fields: Vec<String>,
}

impl Parsed {
    pub fn phone_number_ids(&self) -> impl Iterator<Item = &str> {
        self.changes.iter().map(|c| c.phone_number_id.as_str())
    }
}

/// Parses a webhook body. All or nothing: one malformed message rejects
/// the whole body, so a 400 never leaves part of a batch stored.
pub fn parse(body: &[u8], received_at: Millis) -> Result<Parsed, IngestError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| IngestError::MalformedJson(e.to_string()))?;
    let notification: Notification =
        serde_json::from_value(value).map_err(|e| IngestError::NotANotification(e.to_string()))?;
    if notification.object != "whatsapp_business_account" {
        return Err(IngestError::NotANotification(format!(
            "object is {:?}, expected \"whatsapp_business_account\"",
            notification.object
        )));
    }
    let mut parsed = Parsed::default();
    for (e, entry) in notification.entry.into_iter().enumerate() {
        for (c, change) in entry.changes.into_iter().enumerate() {
            if change.field != "messages" {
                parsed.ignored_fields.push(change.field);
                continue;
            }
            let at = |what: String| IngestError::NotANotification(format!("entry[{e}].changes[{c}]: {what}"));
            let value: MessagesValue = serde_json::from_value(change.value).map_err(|err| at(err.to_string()))?;
            parsed.changes.push(batch(value, received_at).map_err(at)?);
        }
    }
    Ok(parsed)
}

fn batch(value: MessagesValue, received_at: Millis) -> Result<ChangeBatch, String> {
    let phone_number_id = value.metadata.phone_number_id;
    let profile_name = |wa_id: &str| {
        value
            .contacts
            .iter()
            .find(|p| p.wa_id == wa_id)
            .and_then(|p| p.profile.as_ref()?.name.clone())
            .filter(|n| !n.trim().is_empty())
    };
    let mut messages = Vec::with_capacity(value.messages.len());
    for (i, m) in value.messages.into_iter().enumerate() {
        let at = seconds(&m.timestamp, received_at).map_err(|why| format!("messages[{i}].timestamp: {why}"))?;
        if m.id.is_empty() || m.from.is_empty() {
            return Err(format!("messages[{i}] lacks an id or a sender"));
        }
        let kind = MessageKind::parse(&m.kind);
        let content = m.rest.get(&m.kind).cloned().unwrap_or(Value::Null);
        let text = text_of(kind, &content, &m.rest);
        let reply_to = match kind {
            MessageKind::Reaction => content.get("message_id").and_then(Value::as_str).map(String::from),
            _ => m.context.and_then(|c| c.id),
        };
        messages.push(InboundMessage {
            tenant: String::new(),
            phone_number_id: phone_number_id.clone(),
            profile_name: profile_name(&m.from),
            wamid: m.id,
            from: m.from,
            at,
            received_at,
            receipt_us: crate::clock::wall_micros(),
            kind,
            text,
            content,
            reply_to,
            referral: m.referral,
        });
    }
    let statuses = statuses(value.statuses, &phone_number_id, received_at)?;
    Ok(ChangeBatch { phone_number_id, messages, statuses })
}

/// A change's delivery statuses, for messages the business sent.
fn statuses(raw: Vec<RawStatus>, phone_number_id: &str, received_at: Millis) -> Result<Vec<StatusUpdate>, String> {
    let mut statuses = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let at = seconds(&s.timestamp, received_at).map_err(|why| format!("statuses[{i}].timestamp: {why}"))?;
        let status = DeliveryStatus::parse(&s.status).ok_or_else(|| {
            format!(
                "statuses[{i}].status {:?} is not sent, delivered, read, played, failed, deleted or warning",
                s.status
            )
        })?;
        statuses.push(StatusUpdate {
            tenant: String::new(),
            phone_number_id: phone_number_id.to_string(),
            wamid: s.id,
            status,
            at,
            received_at,
            recipient: s.recipient_id,
            errors: s.errors.into_iter().map(WhatsAppError::from).collect(),
            callback_data: s.biz_opaque_callback_data,
        });
    }
    Ok(statuses)
}

impl From<RawError> for WhatsAppError {
    fn from(e: RawError) -> Self {
        WhatsAppError {
            code: e.code,
            title: if e.title.is_empty() { e.message.clone().unwrap_or_default() } else { e.title },
            details: e.error_data.and_then(|d| d.details).or(e.message),
        }
    }
}

/// 2009-01-01: no WhatsApp message is older.
const EARLIEST: Millis = 1_230_768_000_000;
/// How far ahead of our clock a sender's clock may run.
const MAX_AHEAD: Millis = crate::clock::DAY;

/// WhatsApp timestamps are Unix seconds as strings. Anything outside
/// 2009 … a day after receipt is refused here, so no later arithmetic on
/// message times (windows, gaps, due times) can overflow.
fn seconds(s: &str, received_at: Millis) -> Result<Millis, String> {
    let ms = s.trim().parse::<i64>().ok().and_then(|secs| secs.checked_mul(1000));
    match ms {
        Some(ms) if (EARLIEST..=received_at.saturating_add(MAX_AHEAD)).contains(&ms) => Ok(ms),
        Some(_) => {
            Err(format!("{:?} is not a plausible time (2009 to a day after receipt, in Unix seconds)", shown(s)))
        }
        None => Err(format!("{:?} is not a time in Unix seconds", shown(s))),
    }
}

/// At most 40 characters of an input echoed in an error.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str().filter(|s| !s.is_empty())
}

/// The text a person would read for each message type.
fn text_of(kind: MessageKind, content: &Value, rest: &Map<String, Value>) -> Option<String> {
    let s = |path: &[&str]| str_at(content, path).map(String::from);
    match kind {
        MessageKind::Text => s(&["body"]),
        MessageKind::Image | MessageKind::Video | MessageKind::Document => s(&["caption"]).or_else(|| s(&["filename"])),
        MessageKind::Audio | MessageKind::Sticker => None,
        MessageKind::Location => {
            let named = [s(&["name"]), s(&["address"])].into_iter().flatten().collect::<Vec<_>>().join(", ");
            if !named.is_empty() {
                return Some(named);
            }
            let lat = content.get("latitude").and_then(Value::as_f64)?;
            let lon = content.get("longitude").and_then(Value::as_f64)?;
            Some(format!("{lat},{lon}"))
        }
        MessageKind::Contacts => {
            let names: Vec<&str> =
                content.as_array()?.iter().filter_map(|c| str_at(c, &["name", "formatted_name"])).collect();
            (!names.is_empty()).then(|| names.join(", "))
        }
        MessageKind::Interactive => match str_at(content, &["type"]) {
            Some("button_reply") => s(&["button_reply", "title"]),
            Some("list_reply") => s(&["list_reply", "title"]),
            Some("nfm_reply") => s(&["nfm_reply", "body"]),
            _ => None,
        },
        MessageKind::Button => s(&["text"]).or_else(|| s(&["payload"])),
        MessageKind::Reaction => s(&["emoji"]),
        MessageKind::Order => s(&["text"]).or_else(|| {
            let items = content.get("product_items")?.as_array()?.len();
            Some(format!("order of {items} item(s)"))
        }),
        MessageKind::System => s(&["body"]),
        MessageKind::Unsupported | MessageKind::Template | MessageKind::Other => rest
            .get("errors")
            .and_then(|e| e.get(0))
            .and_then(|e| str_at(e, &["title"]))
            .map(|t| format!("[unsupported: {t}]")),
    }
}

/// Rewrites a payload as if Meta delivered it now: every message and status
/// `timestamp` set to `now_secs` (when given) and, with `new_ids`, every
/// message given a fresh `wamid`. For tools and tests that replay samples.
pub fn restamp(json: &mut Value, now_secs: Option<i64>, new_ids: bool) {
    let Some(entries) = json.get_mut("entry").and_then(Value::as_array_mut) else { return };
    for change in entries.iter_mut().filter_map(|e| e.get_mut("changes")?.as_array_mut()).flatten() {
        let Some(value) = change.get_mut("value") else { continue };
        for list in ["messages", "statuses"] {
            let items = value.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten();
            // Only objects: a malformed sample is sent as it is, not a panic.
            for item in items.filter_map(Value::as_object_mut) {
                if let Some(now) = now_secs {
                    item.insert("timestamp".into(), Value::String(now.to_string()));
                }
                if new_ids && list == "messages" {
                    item.insert("id".into(), Value::String(format!("wamid.{}", uuid::Uuid::now_v7().simple())));
                }
            }
        }
    }
}
