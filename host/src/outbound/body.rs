//! What the Cloud API's `POST /{phone-number-id}/messages` takes, built
//! from a [`Reply`]: the one place that writes Meta's send format.

use serde_json::{Map, Value, json};

use crate::model::{ButtonParameter, HeaderParameter, Parameter, Reply, Template, TypedParameter};

/// The request body; `biz_opaque_callback_data` carries our message id so
/// status webhooks can be matched even before the send response is. A
/// person known only by BSUID is addressed with `recipient` instead of
/// `to` (Meta's business-scoped user id send). `quoting` makes it a reply
/// to that message (`context.message_id`).
pub fn body(to: &str, reply: &Reply, idempotency_key: &str, quoting: Option<&str>) -> Value {
    let (kind, content) = content(reply);
    let address = if crate::bsuid::is_bsuid(to) { "recipient" } else { "to" };
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        address: to,
        "type": kind,
        kind: content,
        "biz_opaque_callback_data": idempotency_key,
    });
    if let Some(wamid) = quoting {
        body["context"] = json!({ "message_id": wamid });
    }
    body
}

/// The message's `type` and its object.
fn content(reply: &Reply) -> (&'static str, Value) {
    match reply {
        Reply::Text { body } => ("text", json!({ "preview_url": false, "body": body })),
        Reply::Template(t) => ("template", template(t)),
        Reply::Media { kind, id, link, caption, filename } => {
            let mut m = media(id, link);
            if let Some(c) = caption.as_ref().filter(|_| kind.takes_caption()) {
                m.insert("caption".into(), json!(c));
            }
            if let Some(f) = filename.as_ref().filter(|_| *kind == crate::model::MediaKind::Document) {
                m.insert("filename".into(), json!(f));
            }
            (kind.as_str(), Value::Object(m))
        }
        Reply::Buttons { body, header, footer, buttons } => {
            let buttons: Vec<Value> =
                buttons.iter().map(|b| json!({ "type": "reply", "reply": { "id": b.id, "title": b.title } })).collect();
            ("interactive", interactive("button", body, header, footer, json!({ "buttons": buttons })))
        }
        Reply::List { body, header, footer, button, sections } => {
            let action = json!({ "button": button, "sections": sections });
            ("interactive", interactive("list", body, header, footer, action))
        }
        Reply::CtaUrl { body, header, footer, display_text, url } => {
            let action = json!({ "name": "cta_url", "parameters": { "display_text": display_text, "url": url } });
            ("interactive", interactive("cta_url", body, header, footer, action))
        }
        Reply::LocationRequest { body } => {
            let action = json!({ "name": "send_location" });
            ("interactive", interactive("location_request_message", body, &None, &None, action))
        }
        Reply::Reaction { message_id, emoji } => ("reaction", json!({ "message_id": message_id, "emoji": emoji })),
    }
}

fn interactive(kind: &str, body: &str, header: &Option<String>, footer: &Option<String>, action: Value) -> Value {
    let mut i = json!({ "type": kind, "body": { "text": body }, "action": action });
    if let Some(h) = header {
        i["header"] = json!({ "type": "text", "text": h });
    }
    if let Some(f) = footer {
        i["footer"] = json!({ "text": f });
    }
    i
}

fn template(t: &Template) -> Value {
    let mut components = Vec::new();
    if let Some(header) = &t.header {
        components.push(json!({ "type": "header", "parameters": [header_parameter(header)] }));
    }
    if !t.parameters.is_empty() {
        let parameters: Vec<Value> = t.parameters.iter().map(body_parameter).collect();
        components.push(json!({ "type": "body", "parameters": parameters }));
    }
    components.extend(t.buttons.iter().map(button));
    let mut template = json!({ "name": t.name, "language": { "code": t.language } });
    if !components.is_empty() {
        template["components"] = Value::Array(components);
    }
    template
}

fn named(mut value: Value, name: &Option<String>) -> Value {
    if let (Some(name), Some(fields)) = (name, value.as_object_mut()) {
        fields.insert("parameter_name".into(), json!(name));
    }
    value
}

fn body_parameter(p: &Parameter) -> Value {
    match p {
        Parameter::Text(text) => json!({ "type": "text", "text": text }),
        Parameter::Typed(TypedParameter::Text { text, parameter_name }) => {
            named(json!({ "type": "text", "text": text }), parameter_name)
        }
        Parameter::Typed(TypedParameter::Currency { fallback_value, code, amount_1000, parameter_name }) => named(
            json!({ "type": "currency",
                "currency": { "fallback_value": fallback_value, "code": code, "amount_1000": amount_1000 } }),
            parameter_name,
        ),
        Parameter::Typed(TypedParameter::DateTime { fallback_value, parameter_name }) => {
            named(json!({ "type": "date_time", "date_time": { "fallback_value": fallback_value } }), parameter_name)
        }
    }
}

fn media(id: &Option<String>, link: &Option<String>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("id".into(), json!(id));
    }
    if let Some(link) = link {
        m.insert("link".into(), json!(link));
    }
    m
}

fn header_parameter(h: &HeaderParameter) -> Value {
    match h {
        HeaderParameter::Text { text, parameter_name } => {
            named(json!({ "type": "text", "text": text }), parameter_name)
        }
        HeaderParameter::Image { id, link } => json!({ "type": "image", "image": media(id, link) }),
        HeaderParameter::Video { id, link } => json!({ "type": "video", "video": media(id, link) }),
        HeaderParameter::Document { id, link, filename } => {
            let mut document = media(id, link);
            if let Some(f) = filename {
                document.insert("filename".into(), json!(f));
            }
            json!({ "type": "document", "document": document })
        }
        HeaderParameter::Location { latitude, longitude, name, address } => {
            let mut location = json!({ "latitude": latitude, "longitude": longitude });
            for (key, value) in [("name", name), ("address", address)] {
                if let Some(v) = value {
                    location[key] = json!(v);
                }
            }
            json!({ "type": "location", "location": location })
        }
    }
}

fn button(b: &ButtonParameter) -> Value {
    let (sub_type, parameter) = match b {
        ButtonParameter::QuickReply { payload, .. } => {
            ("quick_reply", json!({ "type": "payload", "payload": payload }))
        }
        ButtonParameter::Url { text, .. } => ("url", json!({ "type": "text", "text": text })),
        ButtonParameter::CopyCode { coupon_code, .. } => {
            ("copy_code", json!({ "type": "coupon_code", "coupon_code": coupon_code }))
        }
    };
    json!({ "type": "button", "sub_type": sub_type, "index": b.index().to_string(), "parameters": [parameter] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_known_only_by_bsuid_is_addressed_as_recipient() {
        let text = body("US.13491208655302741918", &Reply::Text { body: "Hi".into() }, "msg_1", None);
        assert_eq!(text["recipient"], "US.13491208655302741918");
        assert!(text.get("to").is_none(), "{text}");
        let text = body("15551234567", &Reply::Text { body: "Hi".into() }, "msg_1", None);
        assert_eq!((text["to"].as_str(), text.get("recipient")), (Some("15551234567"), None));
    }

    /// The shapes of Meta's "Send template messages" reference.
    #[test]
    fn template_components_follow_the_cloud_api() {
        let text = body("5511987654321", &Reply::Text { body: "Olá".into() }, "msg_1", None);
        assert_eq!((text["type"].as_str(), text["text"]["body"].as_str()), (Some("text"), Some("Olá")));
        let t: Template = serde_json::from_value(json!({
            "name": "order_ready", "language": "pt_BR",
            "header": { "type": "document", "link": "https://example.com/nf.pdf", "filename": "NF-123.pdf" },
            "parameters": ["Ana",
                { "type": "currency", "fallback_value": "R$ 120,00", "code": "BRL", "amount_1000": 120000 },
                { "type": "date_time", "fallback_value": "5 de março" }],
            "buttons": [{ "type": "url", "index": 0, "text": "A1B2" },
                { "type": "copy_code", "index": 1, "coupon_code": "OFF10" },
                { "type": "quick_reply", "index": 2, "payload": "stop-promos" }]
        }))
        .unwrap();
        let sent = body("5511987654321", &Reply::Template(t), "msg_2", None);
        let c = &sent["template"]["components"];
        assert_eq!(sent["template"]["language"]["code"], "pt_BR");
        assert_eq!(
            c[0],
            json!({ "type": "header", "parameters": [{ "type": "document",
            "document": { "link": "https://example.com/nf.pdf", "filename": "NF-123.pdf" } }] })
        );
        assert_eq!(c[1]["type"], "body");
        assert_eq!(c[1]["parameters"][0], json!({ "type": "text", "text": "Ana" }));
        assert_eq!(c[1]["parameters"][1]["currency"]["amount_1000"], 120000);
        assert_eq!(
            c[1]["parameters"][2],
            json!({ "type": "date_time", "date_time": { "fallback_value": "5 de março" } })
        );
        assert_eq!(
            c[2],
            json!({ "type": "button", "sub_type": "url", "index": "0",
            "parameters": [{ "type": "text", "text": "A1B2" }] })
        );
        assert_eq!(c[3]["parameters"][0], json!({ "type": "coupon_code", "coupon_code": "OFF10" }));
        assert_eq!(c[4]["parameters"][0], json!({ "type": "payload", "payload": "stop-promos" }));
    }

    #[test]
    fn a_location_header_and_named_parameters() {
        let t: Template = serde_json::from_value(json!({
            "name": "store_hours", "language": "es",
            "header": { "type": "location", "latitude": -23.5505, "longitude": -46.6333, "name": "Loja Centro" },
            "parameters": [{ "type": "text", "text": "Ana", "parameter_name": "first_name" }]
        }))
        .unwrap();
        let sent = body("5511987654321", &Reply::Template(t), "m", None);
        let c = &sent["template"]["components"];
        assert_eq!(c[0]["parameters"][0]["location"]["latitude"], json!(-23.5505));
        assert_eq!(c[0]["parameters"][0]["location"]["name"], "Loja Centro");
        assert!(c[0]["parameters"][0]["location"].get("address").is_none());
        assert_eq!(c[1]["parameters"][0], json!({ "type": "text", "text": "Ana", "parameter_name": "first_name" }));
    }
}
