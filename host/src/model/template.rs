//! A template send as every sender states it — staff, plugins, follow-ups,
//! campaigns: which template, in which language, and the values for its
//! variables, component by component (Meta's "components" of a send). The
//! template's definition, which says what it expects, is the `templates`
//! stage's.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    pub name: String,
    /// Meta's language-and-locale code (`pt_BR`, `en_US`, `es`).
    pub language: String,
    /// The body's variables in order (`{{1}}`, `{{2}}`…), or by name for a
    /// template with named parameters. A plain string is a text value.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// The header's value: its text variable, its media or its location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderParameter>,
    /// Values for the buttons that take one, by the button's position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ButtonParameter>,
    /// Meta's category of the template. The host fills it in from the
    /// tenant's synced definition; a sender may state it for a template
    /// the host has not seen. With it the host holds back what Meta would
    /// refuse (a marketing template to a contact who stopped marketing
    /// messages, an authentication template to a contact known only by
    /// BSUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<TemplateCategory>,
}

impl Template {
    /// A template with text body values only (what `0.1.0` plugins send).
    pub fn text(name: impl Into<String>, language: impl Into<String>, parameters: Vec<String>) -> Template {
        Template {
            name: name.into(),
            language: language.into(),
            parameters: parameters.into_iter().map(Parameter::Text).collect(),
            header: None,
            buttons: Vec::new(),
            category: None,
        }
    }

    /// The body values as a person would read them.
    pub fn parameter_texts(&self) -> Vec<String> {
        self.parameters.iter().map(|p| p.shown().to_string()).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateCategory {
    /// Meta's spelling (`MARKETING`) is read too.
    #[serde(alias = "MARKETING")]
    Marketing,
    #[serde(alias = "UTILITY")]
    Utility,
    #[serde(alias = "AUTHENTICATION")]
    Authentication,
}

/// One body variable's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Parameter {
    /// `"Ana"`: a text value, positional.
    Text(String),
    Typed(TypedParameter),
}

/// A value with its type, as Meta's send takes it; `parameter_name` for a
/// template with named parameters (`{{first_name}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TypedParameter {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// Shown as `fallback_value` (Meta no longer localises the amount).
    Currency {
        fallback_value: String,
        /// ISO 4217 code.
        code: String,
        /// The amount times 1000.
        amount_1000: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// Shown as `fallback_value`.
    DateTime {
        fallback_value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
}

impl Parameter {
    /// What the contact reads in the variable's place.
    pub fn shown(&self) -> &str {
        match self {
            Parameter::Text(text) | Parameter::Typed(TypedParameter::Text { text, .. }) => text,
            Parameter::Typed(TypedParameter::Currency { fallback_value, .. })
            | Parameter::Typed(TypedParameter::DateTime { fallback_value, .. }) => fallback_value,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Parameter::Text(_) => None,
            Parameter::Typed(
                TypedParameter::Text { parameter_name, .. }
                | TypedParameter::Currency { parameter_name, .. }
                | TypedParameter::DateTime { parameter_name, .. },
            ) => parameter_name.as_deref(),
        }
    }
}

impl From<String> for Parameter {
    fn from(text: String) -> Parameter {
        Parameter::Text(text)
    }
}

/// The header's value; its kind must be the header's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HeaderParameter {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// By Meta's media id (uploaded to the number) or a public HTTPS link.
    Image {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
    Video {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
    Document {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
        /// The name the contact sees.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    Location {
        #[schema(value_type = f64)]
        latitude: serde_json::Number,
        #[schema(value_type = f64)]
        longitude: serde_json::Number,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
}

impl HeaderParameter {
    /// Its kind as the template's header format names it.
    pub fn format(&self) -> &'static str {
        match self {
            HeaderParameter::Text { .. } => "TEXT",
            HeaderParameter::Image { .. } => "IMAGE",
            HeaderParameter::Video { .. } => "VIDEO",
            HeaderParameter::Document { .. } => "DOCUMENT",
            HeaderParameter::Location { .. } => "LOCATION",
        }
    }

    /// A media header's id and link.
    pub fn media(&self) -> Option<(Option<&str>, Option<&str>)> {
        match self {
            HeaderParameter::Image { id, link }
            | HeaderParameter::Video { id, link }
            | HeaderParameter::Document { id, link, .. } => Some((id.as_deref(), link.as_deref())),
            _ => None,
        }
    }
}

/// A button's value, for the button at `index` (0-based, as the template
/// lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ButtonParameter {
    /// Comes back in the contact's tap (`button.payload`).
    QuickReply { index: u8, payload: String },
    /// Appended to the button's URL in place of its `{{1}}`.
    Url { index: u8, text: String },
    /// The code the button copies.
    CopyCode { index: u8, coupon_code: String },
}

impl ButtonParameter {
    pub fn index(&self) -> u8 {
        match self {
            ButtonParameter::QuickReply { index, .. }
            | ButtonParameter::Url { index, .. }
            | ButtonParameter::CopyCode { index, .. } => *index,
        }
    }

    /// Its kind as the template's button type names it.
    pub fn kind(&self) -> &'static str {
        match self {
            ButtonParameter::QuickReply { .. } => "QUICK_REPLY",
            ButtonParameter::Url { .. } => "URL",
            ButtonParameter::CopyCode { .. } => "COPY_CODE",
        }
    }
}
