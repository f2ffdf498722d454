//! Meta's webhook payload: `object` → `entry[]` → `changes[]` → `value`
//! with `messages[]` and/or `statuses[]`. Several of each per POST.
//!
//! Every item is read on its own. Only a body that is not a WhatsApp
//! notification at all is refused; an item we cannot read (a shape newer
//! than this release, an implausible time, a field missing) is returned as
//! [`Unreadable`], verbatim, for the quarantine, and its neighbours are
//! processed: one odd item must never cost the good ones beside it, nor
//! make Meta retry the whole body until it gives up.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::raw::RawJson;
use super::{InboundMessage, IngestError, StatusUpdate, WhatsAppError};
use crate::clock::Millis;
use crate::model::{DeliveryStatus, Forwarded, MessageKind};

#[derive(Deserialize)]
struct Notification {
    object: String,
    entry: Vec<Value>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

/// One `contacts[]` entry: who wrote, by phone (`wa_id`), BSUID
/// (`user_id`) or both.
#[derive(Deserialize)]
pub(super) struct Profile {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    profile: Option<ProfileName>,
}

#[derive(Deserialize)]
struct ProfileName {
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

impl Profile {
    fn is(&self, wa_id: Option<&str>, user_id: Option<&str>) -> bool {
        let same = |a: &Option<String>, b: Option<&str>| b.is_some() && a.as_deref() == b;
        same(&self.wa_id, wa_id) || same(&self.user_id, user_id)
    }

    fn name(&self) -> Option<String> {
        self.profile.as_ref()?.name.clone().filter(|n| !n.trim().is_empty())
    }

    fn username(&self) -> Option<String> {
        let nested = self.profile.as_ref().and_then(|p| p.username.clone());
        self.username.clone().or(nested).filter(|n| !n.trim().is_empty())
    }
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
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
    /// Read leniently: a flag of an odd type is not worth losing the
    /// message over.
    #[serde(default)]
    forwarded: Option<Value>,
    #[serde(default)]
    frequently_forwarded: Option<Value>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    timestamp: String,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    recipient_user_id: Option<String>,
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
    /// The entry's id: the WhatsApp Business Account the number is in.
    pub waba_id: Option<String>,
    /// The number as people dial it (`metadata.display_phone_number`).
    pub display_phone_number: Option<String>,
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
}

/// Part of a body this release cannot read, kept as Meta sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    /// The change's `field` (`messages`…); empty when it had none.
    pub field: String,
    /// The business number it is for, when that much could be read.
    pub phone_number_id: Option<String>,
    /// Where it was in the body: `entry[0].changes[1].value.messages[2]`.
    pub path: String,
    pub reason: String,
    /// The change's value reduced to this one item (with the change's
    /// metadata and contacts), so reading it again is reading a change.
    pub value: Value,
}

/// A change of a field other than `messages` (account, number quality,
/// templates, calls, echoes…), kept as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    /// The entry's id: the WhatsApp Business Account.
    pub waba_id: Option<String>,
    /// `metadata.phone_number_id`, for the fields that carry one.
    pub phone_number_id: Option<String>,
    pub path: String,
    pub value: Value,
}

impl FieldChange {
    /// A change as it is kept, for the number its metadata names, if any.
    fn new(field: String, waba_id: Option<String>, path: String, value: Value) -> FieldChange {
        let phone_number_id = str_at(&value, &["metadata", "phone_number_id"]).map(String::from);
        FieldChange { field, waba_id, phone_number_id, path, value }
    }
}

/// A parsed notification. `tenant` fields are empty until the caller has
/// resolved the phone number to a tenant.
#[derive(Debug, Default)]
pub struct Parsed {
    pub changes: Vec<ChangeBatch>,
    pub unreadable: Vec<Unreadable>,
    pub fields: Vec<FieldChange>,
}

impl Parsed {
    /// Every phone-number id the body names, readable items or not: each
    /// is checked against its owner's signature.
    pub fn phone_number_ids(&self) -> impl Iterator<Item = &str> {
        let unreadable = self.unreadable.iter().filter_map(|u| u.phone_number_id.as_deref());
        let fields = self.fields.iter().filter_map(|f| f.phone_number_id.as_deref());
        self.changes.iter().map(|c| c.phone_number_id.as_str()).chain(unreadable).chain(fields)
    }

    /// The business accounts of the changes that name no phone-number id:
    /// their owner is the tenant the account is known to belong to.
    pub fn waba_ids(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().filter(|f| f.phone_number_id.is_none()).filter_map(|f| f.waba_id.as_deref())
    }
}

/// Parses a webhook body. Fails only when the body is not JSON or not a
/// WhatsApp Business notification; anything inside it that cannot be read
/// is returned in [`Parsed::unreadable`].
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
    for (e, mut entry) in notification.entry.into_iter().enumerate() {
        let changes = match entry.get("changes") {
            Some(Value::Array(_)) => entry["changes"].take(),
            None if entry.is_object() => continue,
            _ => {
                let why = "an entry is an object whose changes are a list";
                parsed.unreadable.push(whole("", None, format!("entry[{e}]"), why, entry));
                continue;
            }
        };
        let waba_id = entry.get("id").and_then(Value::as_str).filter(|w| !w.is_empty()).map(String::from);
        for (c, change) in changes.as_array().into_iter().flatten().enumerate() {
            let path = format!("entry[{e}].changes[{c}]");
            let field = change.get("field").and_then(Value::as_str).map(String::from);
            match (field, change.get("value")) {
                (Some(field), Some(value)) if ITEM_FIELDS.contains(&field.as_str()) => {
                    let mut read = read_change(&field, value, &format!("{path}.value"), received_at);
                    if let Some(batch) = &mut read.batch {
                        batch.waba_id.clone_from(&waba_id);
                    }
                    parsed.changes.extend(read.batch);
                    parsed.unreadable.extend(read.unreadable);
                    if field == "history" {
                        // Its progress (phase, chunk, a refusal to share) is
                        // an event of its own; the messages are counted.
                        let summary = super::history::summary(value);
                        parsed.fields.push(FieldChange::new(field, waba_id.clone(), path, summary));
                    }
                }
                (Some(field), Some(value)) => {
                    parsed.fields.push(FieldChange::new(field, waba_id.clone(), path, value.clone()));
                }
                (field, _) => {
                    let why = "a change needs a field and a value";
                    parsed.unreadable.push(whole(&field.unwrap_or_default(), None, path, why, change.clone()));
                }
            }
        }
    }
    Ok(parsed)
}

/// The fields whose changes carry messages: the user's (`messages`, with
/// statuses) and the business's own from the WhatsApp Business app
/// (`smb_message_echoes`, Cloud API coexistence) with the app's past chats
/// (`history`), voice calls and a user's messaging preferences, which are
/// the person's own events.
pub const ITEM_FIELDS: [&str; 5] = ["messages", "smb_message_echoes", "calls", "user_preferences", "history"];

/// The lists of items a change of an [`ITEM_FIELDS`] field can carry.
const LISTS: [&str; 5] = ["messages", "statuses", "message_echoes", "calls", "user_preferences"];

/// What one `messages` change yields: its readable items (when its
/// metadata could be read) and the ones that could not be.
#[derive(Debug, Default)]
pub struct ReadChange {
    pub batch: Option<ChangeBatch>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads the value of one change of an [`ITEM_FIELDS`] field, item by
/// item. The quarantine's replay reads a kept item through here again.
pub fn read_change(field: &str, value: &Value, path: &str, received_at: Millis) -> ReadChange {
    let mut out = ReadChange::default();
    let metadata = value.get("metadata").map(Metadata::deserialize);
    let phone_number_id = match metadata {
        Some(Ok(m)) if !m.phone_number_id.is_empty() => m.phone_number_id,
        _ => {
            let why = "metadata.phone_number_id is missing: nothing says which business number this is for";
            out.unreadable.push(whole(field, None, path.to_string(), why, value.clone()));
            return out;
        }
    };
    let contacts: Vec<Profile> = match value.get("contacts").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(|p| Profile::deserialize(p).ok()).collect(),
        None => Vec::new(),
    };
    let display_phone_number = str_at(value, &["metadata", "display_phone_number"]).map(String::from);
    let mut batch =
        ChangeBatch { phone_number_id: phone_number_id.clone(), display_phone_number, ..Default::default() };
    if field == "history" {
        return super::history::read(value, batch, path, received_at);
    }
    let unreadable = |list: &str, i: Option<usize>, why: String, item: &Value| {
        let at = match i {
            Some(i) => format!("{path}.{list}[{i}]"),
            None => format!("{path}.{list}"),
        };
        let mut reduced = value.as_object().cloned().unwrap_or_default();
        for list in LISTS {
            reduced.remove(list);
        }
        reduced.insert(list.to_string(), if i.is_some() { json!([item]) } else { item.clone() });
        Unreadable {
            field: field.to_string(),
            phone_number_id: Some(phone_number_id.clone()),
            path: at,
            reason: why,
            value: Value::Object(reduced),
        }
    };
    for (list, items) in LISTS.map(|l| (l, value.get(l))) {
        let items = match items {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(other) => {
                out.unreadable.push(unreadable(list, None, format!("{list} is not a list"), other));
                continue;
            }
        };
        for (i, item) in items.iter().enumerate() {
            if let Err(why) = read_item(list, item, &contacts, received_at, &mut batch) {
                out.unreadable.push(unreadable(list, Some(i), why, item));
            }
        }
    }
    out.batch = Some(batch);
    out
}

/// One item of `list` into `batch`, or why it cannot be read.
fn read_item(
    list: &str,
    item: &Value,
    contacts: &[Profile],
    received_at: Millis,
    batch: &mut ChangeBatch,
) -> Result<(), String> {
    let pid = batch.phone_number_id.as_str();
    if list == "statuses" {
        let read = status(item, pid, received_at)?;
        batch.statuses.push(read);
        return Ok(());
    }
    let mut read = match list {
        "message_echoes" => echo(item, pid, received_at)?,
        "calls" => call(item, pid, contacts, received_at)?,
        "user_preferences" => preference(item, pid, contacts, received_at)?,
        _ => message(item, pid, contacts, received_at)?,
    };
    read.raw = RawJson::of(item);
    batch.messages.push(read);
    Ok(())
}

/// A change (or an entry) that could not be read at all.
fn whole(field: &str, phone_number_id: Option<String>, path: String, why: &str, value: Value) -> Unreadable {
    Unreadable { field: field.to_string(), phone_number_id, path, reason: why.to_string(), value }
}

pub(super) fn message(
    item: &Value,
    phone_number_id: &str,
    contacts: &[Profile],
    received_at: Millis,
) -> Result<InboundMessage, String> {
    let m = RawMessage::deserialize(item).map_err(|e| e.to_string())?;
    let at = seconds(&m.timestamp, received_at).map_err(|why| format!("timestamp: {why}"))?;
    let kind = MessageKind::parse(&m.kind);
    let content = m.rest.get(&m.kind).cloned().unwrap_or(Value::Null);
    let (from, user_id) = sender(&m, kind, &content)?;
    if m.id.is_empty() {
        return Err("the message lacks an id".into());
    }
    let profile = contacts.iter().find(|p| p.is(from.as_deref(), user_id.as_deref()));
    let text = text_of(kind, &content, &m.rest);
    let reply_to = match kind {
        MessageKind::Reaction => content.get("message_id").and_then(Value::as_str).map(String::from),
        MessageKind::Edit | MessageKind::Revoke => {
            let original = content.get("original_message_id").and_then(Value::as_str).filter(|id| !id.is_empty());
            Some(original.ok_or("an edit or revoke names no original_message_id")?.to_string())
        }
        _ => m.context.as_ref().and_then(|c| c.id.clone()),
    };
    let flag = |f: fn(&RawContext) -> &Option<Value>| {
        m.context.as_ref().and_then(|c| f(c).as_ref()).and_then(Value::as_bool) == Some(true)
    };
    let forwarded = match (flag(|c| &c.frequently_forwarded), flag(|c| &c.forwarded)) {
        (true, _) => Forwarded::FrequentlyForwarded,
        (false, true) => Forwarded::Forwarded,
        _ => Forwarded::No,
    };
    Ok(InboundMessage {
        tenant: String::new(),
        phone_number_id: phone_number_id.to_string(),
        profile_name: profile.and_then(Profile::name),
        username: profile.and_then(Profile::username),
        wamid: m.id,
        from,
        user_id,
        at,
        received_at,
        receipt_us: crate::clock::wall_micros(),
        kind,
        text,
        content,
        reply_to,
        referral: m.referral,
        forwarded,
        echo: false,
        history: None,
        raw: None,
    })
}

/// A message the business sent from the WhatsApp Business app: read as
/// a message whose person is its recipient (`to`, `to_user_id`), marked
/// [`InboundMessage::echo`].
fn echo(item: &Value, phone_number_id: &str, received_at: Millis) -> Result<InboundMessage, String> {
    let mut as_message = item.as_object().cloned().ok_or("an echo is an object")?;
    as_message.remove("from");
    let renames = [("to", "from"), ("to_user_id", "from_user_id")];
    let mut m = read_as_message(as_message, item, &renames, phone_number_id, &[], received_at)?;
    m.echo = true;
    Ok(m)
}

/// Reads `item` as a message after copying its fields named on the left
/// to the message fields on the right (its person, id, time). The raw
/// JSON kept is `item` itself, as `read_item` sets it.
fn read_as_message(
    mut as_message: Map<String, Value>,
    item: &Value,
    renames: &[(&str, &str)],
    phone_number_id: &str,
    contacts: &[Profile],
    received_at: Millis,
) -> Result<InboundMessage, String> {
    for (theirs, ours) in renames {
        if let Some(v) = item.get(*theirs) {
            as_message.insert((*ours).into(), v.clone());
        }
    }
    message(&Value::Object(as_message), phone_number_id, contacts, received_at)
}

/// A call's `connect` or `terminate`, read as a message of kind `call`
/// from the person on the other end (the caller, or whom the business
/// called); its id is the call's with the event, so each is logged once.
fn call(
    item: &Value,
    phone_number_id: &str,
    contacts: &[Profile],
    received_at: Millis,
) -> Result<InboundMessage, String> {
    let field = |k: &str| str_at(item, &[k]);
    let (id, event) = (field("id").ok_or("the call has no id")?, field("event").unwrap_or("update"));
    let by_business = field("direction") == Some("BUSINESS_INITIATED");
    let (person, person_id) = if by_business { ("to", "to_user_id") } else { ("from", "from_user_id") };
    let as_message = whole_item_as("call", format!("{id}:{event}"), item);
    let renames = [(person, "from"), (person_id, "from_user_id"), ("timestamp", "timestamp")];
    read_as_message(as_message, item, &renames, phone_number_id, contacts, received_at)
}

/// A message of type `kind` with id `id` whose `kind` object is all of
/// `item` (an item of a field that is not a message, read as one).
fn whole_item_as(kind: &str, id: String, item: &Value) -> Map<String, Value> {
    let mut as_message = Map::new();
    as_message.insert("id".into(), Value::String(id));
    as_message.insert("type".into(), kind.into());
    as_message.insert(kind.into(), item.clone());
    as_message
}

/// A `user_preferences` entry (`{wa_id, user_id, category, value, detail,
/// timestamp}`), read as a message of kind `preference` from the user; its
/// id names the user, the category and the time, so each is applied once.
fn preference(
    item: &Value,
    phone_number_id: &str,
    contacts: &[Profile],
    received_at: Millis,
) -> Result<InboundMessage, String> {
    let field = |k: &str| str_at(item, &[k]);
    let who = field("user_id").or(field("wa_id")).ok_or("the preference names no user")?;
    let timestamp = match item.get("timestamp") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err("the preference has no timestamp".into()),
    };
    let category = field("category").unwrap_or("preference");
    let mut as_message = whole_item_as("preference", format!("pref.{who}.{category}.{timestamp}"), item);
    as_message.insert("timestamp".into(), Value::String(timestamp));
    let renames = [("wa_id", "from"), ("user_id", "from_user_id")];
    read_as_message(as_message, item, &renames, phone_number_id, contacts, received_at)
}

/// Who wrote: the phone number (`from`), the BSUID (`from_user_id`), or
/// both; at least one. A `system` message about a changed id may carry
/// neither: the person is then the one its `previous_user_id` named.
fn sender(m: &RawMessage, kind: MessageKind, content: &Value) -> Result<(Option<String>, Option<String>), String> {
    let from = m.from.clone().filter(|f| !f.is_empty());
    let mut user_id = m.from_user_id.clone().filter(|u| !u.is_empty());
    if kind == MessageKind::System && from.is_none() && user_id.is_none() {
        user_id = str_at(content, &["previous_user_id"]).map(String::from);
    }
    if let Some(u) = user_id.as_deref().filter(|u| !crate::bsuid::is_bsuid(u)) {
        return Err(format!("from_user_id {:?} is not a business-scoped user id", shown(u)));
    }
    if from.is_none() && user_id.is_none() {
        return Err("the message names no sender (neither from nor from_user_id)".into());
    }
    Ok((from, user_id))
}

/// A delivery status, for a message the business sent.
fn status(item: &Value, phone_number_id: &str, received_at: Millis) -> Result<StatusUpdate, String> {
    let s = RawStatus::deserialize(item).map_err(|e| e.to_string())?;
    let at = seconds(&s.timestamp, received_at).map_err(|why| format!("timestamp: {why}"))?;
    let status = DeliveryStatus::parse(&s.status).ok_or_else(|| {
        format!("status {:?} is not sent, delivered, read, played, failed, deleted or warning", shown(&s.status))
    })?;
    Ok(StatusUpdate {
        tenant: String::new(),
        phone_number_id: phone_number_id.to_string(),
        wamid: s.id,
        status,
        at,
        received_at,
        recipient: s.recipient_id.filter(|r| !r.is_empty()),
        recipient_user_id: s.recipient_user_id.filter(|r| !r.is_empty()),
        errors: s.errors.into_iter().map(WhatsAppError::from).collect(),
        callback_data: s.biz_opaque_callback_data,
        raw: RawJson::of(item),
    })
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

/// The message an `edit` carries: its kind, its type-specific object and
/// the whole message.
fn edited(edit: &Value) -> Option<(MessageKind, &Value, &Map<String, Value>)> {
    let message = edit.get("message")?.as_object()?;
    let kind = message.get("type")?.as_str()?;
    Some((MessageKind::parse(kind), message.get(kind).unwrap_or(&Value::Null), message))
}

/// What an edited message says now, in the shape the original was kept
/// in (its type-specific object).
pub fn edited_content(edit: &Value) -> Value {
    edited(edit).map(|(_, content, _)| content.clone()).unwrap_or(Value::Null)
}

pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
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
        MessageKind::Edit => {
            let (kind, content, message) = edited(content)?;
            // An edit of an edit is not a shape WhatsApp sends.
            (kind != MessageKind::Edit).then(|| text_of(kind, content, message)).flatten()
        }
        MessageKind::Revoke | MessageKind::RequestWelcome => None,
        MessageKind::Preference => {
            let category = s(&["category"]).unwrap_or_default().replace('_', " ");
            Some(format!("[{category}: {}]", s(&["value"]).unwrap_or_default()))
        }
        MessageKind::Call => {
            let event = s(&["event"]).unwrap_or_else(|| "update".into());
            let direction = if s(&["direction"]).as_deref() == Some("BUSINESS_INITIATED") { "to" } else { "from" };
            let duration =
                content.get("duration").and_then(Value::as_i64).map(|d| format!(", {d} s")).unwrap_or_default();
            let status = s(&["status"]).map(|st| format!(", {}", st.to_lowercase())).unwrap_or_default();
            Some(format!("[call {direction} the contact: {event}{status}{duration}]"))
        }
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
