//! A template as the tenant's WhatsApp Business Account defines it — read
//! from Meta's template list and kept current by the template webhooks —
//! and the shape a send must fill, read from its components.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::model::TemplateCategory;

/// Meta's status that lets a template be sent.
pub const APPROVED: &str = "APPROVED";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TemplateDef {
    /// Meta's template id.
    pub id: String,
    pub name: String,
    /// As Meta lists it (`pt_BR`).
    pub language: String,
    /// Meta's status, as it says it: `APPROVED`, `PENDING`, `REJECTED`,
    /// `PAUSED`, `DISABLED`, `IN_APPEAL`, `PENDING_DELETION`, `ARCHIVED`…
    /// Only `APPROVED` templates are sent.
    pub status: String,
    pub category: Option<TemplateCategory>,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN` (quality pending).
    pub quality: Option<String>,
    /// `POSITIONAL` (`{{1}}`) or `NAMED` (`{{first_name}}`).
    #[serde(default)]
    pub parameter_format: Option<String>,
    /// Meta's components (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`) as listed;
    /// `null` for a template only a webhook has named so far (sync to
    /// learn it).
    #[schema(value_type = Option<Vec<Object>>)]
    pub components: Value,
    /// Why Meta rejected, paused or disabled it, from its last webhook.
    pub reason: Option<String>,
    /// The last template webhook's event (`FLAGGED`, `PAUSED`, …).
    pub last_event: Option<String>,
    pub updated_at: Millis,
}

impl TemplateDef {
    /// From one entry of `GET /{waba-id}/message_templates`; `None` if it
    /// lacks what every template has (id, name, language, status).
    pub fn from_graph(v: &Value, now: Millis) -> Option<TemplateDef> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return None,
        };
        Some(TemplateDef {
            id,
            name: text("name")?,
            language: text("language")?,
            status: text("status")?.to_ascii_uppercase(),
            category: text("category").as_deref().and_then(category),
            quality: v.pointer("/quality_score/score").and_then(Value::as_str).map(String::from),
            parameter_format: text("parameter_format"),
            components: v.get("components").cloned().unwrap_or(Value::Array(Vec::new())),
            reason: text("rejected_reason").filter(|r| r != "NONE"),
            last_event: None,
            updated_at: now,
        })
    }

    pub fn sendable(&self) -> bool {
        self.status == APPROVED
    }

    /// What a send must fill in, if the components are known.
    pub fn shape(&self) -> Option<Shape> {
        let components = self.components.as_array()?;
        let named = self.parameter_format.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("NAMED"));
        let mut shape = Shape::default();
        for c in components {
            let text = c.get("text").and_then(Value::as_str).unwrap_or_default();
            match c.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase).as_deref() {
                Some("HEADER") => {
                    let format = c.get("format").and_then(Value::as_str).unwrap_or("TEXT").to_ascii_uppercase();
                    shape.header = Some(match format.as_str() {
                        "TEXT" => HeaderShape::Text(Variables::of(text, named)),
                        _ => HeaderShape::Other(format),
                    });
                }
                Some("BODY") => {
                    shape.body = Variables::of(text, named);
                    shape.body_text = text.to_string();
                }
                Some("BUTTONS") => {
                    let buttons = c.get("buttons").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                    shape.buttons = buttons.iter().map(ButtonShape::of).collect();
                }
                _ => {}
            }
        }
        Some(shape)
    }
}

/// Meta's category name (any case) as ours.
pub fn category(name: &str) -> Option<TemplateCategory> {
    match name.to_ascii_uppercase().as_str() {
        "MARKETING" => Some(TemplateCategory::Marketing),
        "UTILITY" => Some(TemplateCategory::Utility),
        "AUTHENTICATION" => Some(TemplateCategory::Authentication),
        _ => None,
    }
}

/// A language code as a key: Meta writes `en_US` in its template list and
/// `en-US` in some webhooks.
pub fn language_key(language: &str) -> String {
    language.trim().replace('-', "_").to_ascii_lowercase()
}

/// What a send must fill in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    pub header: Option<HeaderShape>,
    /// The body's variables.
    pub body: Variables,
    /// The body as written, variables and all.
    pub body_text: String,
    pub buttons: Vec<ButtonShape>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderShape {
    Text(Variables),
    /// `IMAGE`, `VIDEO`, `DOCUMENT`, `LOCATION` (or a format Meta adds).
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Variables {
    /// `{{1}}`…`{{n}}`: n values in order.
    Positional(usize),
    /// `{{first_name}}`…: one value per name.
    Named(Vec<String>),
}

impl Default for Variables {
    fn default() -> Self {
        Variables::Positional(0)
    }
}

impl Variables {
    /// The variables `{{…}}` in `text`.
    pub fn of(text: &str, named: bool) -> Variables {
        let mut names: Vec<String> = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            let name = after[..end].trim();
            if !name.is_empty() && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
            rest = &after[end + 2..];
        }
        if named || names.iter().any(|n| n.parse::<usize>().is_err()) {
            Variables::Named(names)
        } else {
            // Meta numbers them 1…n; the highest is how many values go.
            Variables::Positional(names.iter().filter_map(|n| n.parse::<usize>().ok()).max().unwrap_or(0))
        }
    }

    pub fn count(&self) -> usize {
        match self {
            Variables::Positional(n) => *n,
            Variables::Named(names) => names.len(),
        }
    }
}

/// One of the template's buttons.
#[derive(Debug, Clone, PartialEq)]
pub struct ButtonShape {
    /// `QUICK_REPLY`, `URL`, `COPY_CODE`, `PHONE_NUMBER`, `OTP`, `FLOW`…
    pub kind: String,
    /// A URL button whose URL ends in a variable takes a value.
    pub takes_value: bool,
}

impl ButtonShape {
    fn of(b: &Value) -> ButtonShape {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default().to_ascii_uppercase();
        let takes_value = match kind.as_str() {
            "URL" => b.get("url").and_then(Value::as_str).is_some_and(|u| u.contains("{{")),
            "COPY_CODE" => true,
            _ => false,
        };
        ButtonShape { kind, takes_value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A definition as Meta's "Get templates" reference lists one.
    #[test]
    fn a_listed_template_and_the_shape_its_components_ask_for() {
        let listed = json!({
            "name": "order_ready", "parameter_format": "POSITIONAL", "language": "pt_BR",
            "status": "APPROVED", "category": "UTILITY", "id": "1689556908129832",
            "quality_score": { "score": "GREEN", "date": 1764000000 },
            "components": [
                { "type": "HEADER", "format": "IMAGE", "example": { "header_handle": ["4::aW1h"] } },
                { "type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} está pronto. Total: {{3}}. Obrigado, {{1}}!" },
                { "type": "FOOTER", "text": "Loja Exemplo" },
                { "type": "BUTTONS", "buttons": [
                    { "type": "URL", "text": "Acompanhar", "url": "https://loja.example/p/{{1}}" },
                    { "type": "PHONE_NUMBER", "text": "Ligar", "phone_number": "+5511987654321" },
                    { "type": "QUICK_REPLY", "text": "Parar promoções" } ] }
            ]
        });
        let def = TemplateDef::from_graph(&listed, 1).unwrap();
        assert_eq!(
            (def.status.as_str(), def.category, def.quality.as_deref()),
            ("APPROVED", Some(TemplateCategory::Utility), Some("GREEN"))
        );
        let shape = def.shape().unwrap();
        assert_eq!(shape.header, Some(HeaderShape::Other("IMAGE".into())));
        assert_eq!(shape.body, Variables::Positional(3), "{{1}} used twice is one value");
        let kinds: Vec<(&str, bool)> = shape.buttons.iter().map(|b| (b.kind.as_str(), b.takes_value)).collect();
        assert_eq!(kinds, [("URL", true), ("PHONE_NUMBER", false), ("QUICK_REPLY", false)]);
    }

    #[test]
    fn named_variables_and_languages_as_webhooks_write_them() {
        assert_eq!(
            Variables::of("Hi {{first_name}}, code {{ code }}", true),
            Variables::Named(vec!["first_name".into(), "code".into()])
        );
        assert_eq!(Variables::of("No variables", false), Variables::Positional(0));
        assert_eq!(language_key("en-US"), language_key("en_US"));
        assert!(TemplateDef::from_graph(&json!({ "name": "x", "language": "en" }), 1).is_none());
    }
}
