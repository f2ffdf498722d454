//! The template webhooks: a status change (approved, paused, disabled…),
//! a quality change, a category change — each applied to the kept
//! definition in the commit that keeps the webhook.

use std::collections::HashMap;

use serde_json::Value;

use super::definition::{self, TemplateDef};
use super::{DEFS, Templates, key};
use crate::clock::Millis;
use crate::store::{Batch, Result};

/// The webhook fields this module applies.
pub const FIELDS: [&str; 3] =
    ["message_template_status_update", "message_template_quality_update", "template_category_update"];

/// Events that say something about a template without changing whether
/// it can be sent (`FLAGGED`: at risk of being disabled; `LOCKED`: no
/// longer editable).
const STATUS_KEPT: [&str; 3] = ["FLAGGED", "LOCKED", "UNLOCKED"];

/// The definitions a webhook body's changes touched, as changed so far:
/// one body can carry several changes of one template (a pause and a
/// quality drop), each applied to the one before, then written once.
#[derive(Default)]
pub struct Edits {
    defs: HashMap<Vec<u8>, TemplateDef>,
}

impl Edits {
    /// The changed definitions, into the body's commit.
    pub fn write(self, batch: &mut Batch) -> Result<()> {
        for (key, def) in self.defs {
            batch.put_json(DEFS, key, &def)?;
        }
        Ok(())
    }
}

impl Templates {
    /// Applies a template webhook's `value` to the definition it names
    /// (one only a webhook has named so far is kept with what it says);
    /// `None` if it is not a template webhook or names no template.
    pub fn apply_webhook(
        &self,
        edits: &mut Edits,
        tenant: &str,
        field: &str,
        value: &Value,
        now: Millis,
    ) -> Result<Option<TemplateDef>> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(String::from);
        let (Some(name), Some(language)) = (text("message_template_name"), text("message_template_language")) else {
            return Ok(None);
        };
        if !FIELDS.contains(&field) {
            return Ok(None);
        }
        let k = key(tenant, &name, &language);
        let known = match edits.defs.remove(&k) {
            Some(def) => Some(def),
            None => self.get(tenant, &name, &language)?,
        };
        let mut def = known.unwrap_or_else(|| TemplateDef {
            id: value.get("message_template_id").map(id_text).unwrap_or_default(),
            name: name.clone(),
            language: language.replace('-', "_"),
            status: "PENDING".into(),
            category: None,
            quality: None,
            parameter_format: None,
            components: Value::Null,
            reason: None,
            last_event: None,
            updated_at: now,
        });
        match field {
            "message_template_status_update" => status(&mut def, value),
            "message_template_quality_update" => {
                def.quality = text("new_quality_score");
                def.last_event = Some(format!("QUALITY_{}", def.quality.as_deref().unwrap_or("UNKNOWN")));
            }
            _ => {
                if let Some(c) = text("new_category").as_deref().and_then(definition::category) {
                    def.category = Some(c);
                }
                def.last_event = Some("CATEGORY_UPDATE".into());
            }
        }
        def.updated_at = now;
        edits.defs.insert(k, def.clone());
        Ok(Some(def))
    }
}

fn status(def: &mut TemplateDef, value: &Value) {
    let text = |p: &str| value.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty() && *s != "NONE");
    let event = text("/event").unwrap_or("UNKNOWN").to_ascii_uppercase();
    if !STATUS_KEPT.contains(&event.as_str()) {
        def.status = if event == "REINSTATED" { definition::APPROVED.into() } else { event.clone() };
    }
    if let Some(c) = text("/message_template_category").and_then(definition::category) {
        def.category = Some(c);
    }
    def.reason =
        text("/rejection_info/reason").or(text("/other_info/description")).or(text("/reason")).map(String::from);
    def.last_event = Some(event);
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
