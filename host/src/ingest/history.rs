//! The `history` field: the chats a number had in the WhatsApp Business
//! app, sent once, in chunks, after it joined the Cloud API (coexistence).
//!
//! `value.history[]` holds chunks (`metadata.phase`, `chunk_order`,
//! `progress`), each with `threads[]` — one per person, `id` their number —
//! of `messages[]` in the usual shapes plus `history_context.status`. A
//! message whose `from` is not the thread's person was the business's own.
//! A chunk may instead carry `errors[]` (the business declined to share).

use serde_json::{Value, json};

use super::Synced;
use super::payload::{ChangeBatch, ReadChange, Unreadable, message, str_at};
use crate::clock::Millis;
use crate::model::DeliveryStatus;

/// Reads every message of a `history` change into `batch`; each that
/// cannot be read is kept as a change of its own, reduced to that message.
pub(super) fn read(value: &Value, mut batch: ChangeBatch, path: &str, received_at: Millis) -> ReadChange {
    let mut out = ReadChange::default();
    let chunks = value.get("history").and_then(Value::as_array).into_iter().flatten();
    for (h, chunk) in chunks.enumerate() {
        let threads = chunk.get("threads").and_then(Value::as_array).into_iter().flatten();
        for (t, thread) in threads.enumerate() {
            let person = str_at(thread, &["id"]);
            let messages = thread.get("messages").and_then(Value::as_array).into_iter().flatten();
            for (i, item) in messages.enumerate() {
                match past_message(item, person, &batch.phone_number_id, received_at) {
                    Ok(m) => batch.messages.push(m),
                    Err(reason) => out.unreadable.push(Unreadable {
                        field: "history".into(),
                        phone_number_id: Some(batch.phone_number_id.clone()),
                        path: format!("{path}.history[{h}].threads[{t}].messages[{i}]"),
                        reason,
                        value: reduced(value, chunk, thread, item),
                    }),
                }
            }
        }
    }
    out.batch = Some(batch);
    out
}

/// One past message, read as a message from (or, when the business wrote
/// it, to) the thread's person.
fn past_message(
    item: &Value,
    person: Option<&str>,
    phone_number_id: &str,
    received_at: Millis,
) -> Result<super::InboundMessage, String> {
    let person = person.ok_or("the history thread has no id: nothing says whose chat it is")?;
    let mut as_message = item.as_object().cloned().ok_or("a history message is an object")?;
    let by_business = str_at(item, &["from"]).is_some_and(|from| from != person);
    as_message.remove("from");
    as_message.remove("to");
    let key = if crate::bsuid::is_bsuid(person) { "from_user_id" } else { "from" };
    as_message.insert(key.into(), Value::String(person.to_string()));
    let mut m = message(&Value::Object(as_message), phone_number_id, &[], received_at)?;
    let status = str_at(item, &["history_context", "status"]).and_then(|s| DeliveryStatus::parse(&s.to_lowercase()));
    m.raw = super::raw::RawJson::of(item);
    m.echo = by_business;
    m.history = Some(Synced { status });
    Ok(m)
}

/// The change reduced to one message, in its chunk and thread, so reading
/// it again is reading a `history` change.
fn reduced(value: &Value, chunk: &Value, thread: &Value, item: &Value) -> Value {
    let mut out = value.as_object().cloned().unwrap_or_default();
    let thread = json!({ "id": thread.get("id").cloned().unwrap_or(Value::Null), "messages": [item] });
    let chunk = json!({ "metadata": chunk.get("metadata").cloned().unwrap_or(Value::Null), "threads": [thread] });
    out.insert("history".into(), json!([chunk]));
    Value::Object(out)
}

/// The change as a webhook event: each chunk's metadata and errors, with
/// its threads and messages counted rather than copied (the messages are
/// kept in their conversations).
pub(super) fn summary(value: &Value) -> Value {
    let mut out = value.clone();
    let chunks = out.get_mut("history").and_then(Value::as_array_mut).into_iter().flatten();
    for chunk in chunks.filter_map(Value::as_object_mut) {
        if let Some(Value::Array(threads)) = chunk.remove("threads") {
            let messages: usize = threads.iter().filter_map(|t| t.get("messages")?.as_array().map(Vec::len)).sum();
            chunk.insert("threads".into(), json!(threads.len()));
            chunk.insert("messages".into(), json!(messages));
        }
    }
    out
}
