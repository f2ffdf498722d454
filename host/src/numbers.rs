//! Business numbers: each tenant number's health as Meta reports it —
//! quality events and messaging limit (`phone_number_quality_update`),
//! display-name review (`phone_number_name_update`), account restrictions
//! (`account_update`) — folded, with its history, from the field events
//! ingest keeps. While a number is flagged or restricted the host sends no
//! business-initiated template from it (see `pipeline::timer`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::clock::Millis;
use crate::ingest::fields::{FieldEvent, FieldEvents};
use crate::store::{Batch, Result, Store, Tree, keys};
use crate::tenants::Tenant;

/// `tenant ␟ phone_number_id` → the display number Meta shows for it.
const DISPLAY: Tree = Tree("numbers.display");

/// The fields that say something about a number's health.
pub const FIELDS: [&str; 3] = ["phone_number_quality_update", "phone_number_name_update", "account_update"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NumberHealth {
    pub phone_number_id: String,
    /// As Meta shows it (learned from the webhooks' metadata).
    pub display_phone_number: Option<String>,
    /// The latest quality event: `FLAGGED`, `UNFLAGGED`, `UPGRADE`, `DOWNGRADE`…
    pub quality_event: Option<String>,
    /// The messaging limit (`max_daily_conversations_per_business`, or the
    /// older `current_limit` tier).
    pub messaging_limit: Option<String>,
    /// `CONNECTED`, `FLAGGED` or `RESTRICTED`, as the latest events say.
    pub status: String,
    /// The display name's review: `APPROVED`, `DEFERRED`, `REJECTED`.
    pub name_status: Option<String>,
    pub verified_name: Option<String>,
    /// Every event about the number (or its account), oldest first.
    pub history: Vec<NumberEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NumberEvent {
    pub at: Millis,
    pub field: String,
    /// The event or decision it carried.
    pub event: Option<String>,
    #[schema(value_type = Object)]
    pub value: Value,
}

impl NumberHealth {
    /// Why business-initiated messages from this number are paused, if
    /// they are: it is flagged or restricted.
    pub fn pause_reason(&self) -> Option<String> {
        matches!(self.status.as_str(), "FLAGGED" | "RESTRICTED")
            .then(|| format!("the business number {} is {}", self.phone_number_id, self.status.to_lowercase()))
    }

    fn apply(&mut self, e: &FieldEvent) {
        let s = |k: &str| e.value.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        let event = s("event").or_else(|| s("decision"));
        match e.field.as_str() {
            "phone_number_quality_update" => {
                self.quality_event.clone_from(&event);
                self.messaging_limit = s("max_daily_conversations_per_business").or(s("current_limit"));
                match event.as_deref() {
                    Some("FLAGGED") => self.status = "FLAGGED".into(),
                    Some("UNFLAGGED") if self.status == "FLAGGED" => self.status = "CONNECTED".into(),
                    _ => {}
                }
            }
            "phone_number_name_update" => {
                self.name_status.clone_from(&event);
                if event.as_deref() == Some("APPROVED") {
                    self.verified_name = s("requested_verified_name");
                }
            }
            _ => match event.as_deref() {
                Some("ACCOUNT_RESTRICTION" | "ACCOUNT_VIOLATION" | "DISABLED_UPDATE") => {
                    self.status = "RESTRICTED".into()
                }
                Some("ACCOUNT_RECONNECTED" | "VERIFIED_ACCOUNT") if self.status == "RESTRICTED" => {
                    self.status = "CONNECTED".into()
                }
                _ => {}
            },
        }
        self.history.push(NumberEvent { at: e.received_at, field: e.field.clone(), event, value: e.value.clone() });
    }

    /// Whether `e` is about this number: it names it (by display number),
    /// or names none (an account-wide update).
    fn concerns(&self, e: &FieldEvent) -> bool {
        let digits = |v: &str| v.chars().filter(char::is_ascii_digit).collect::<String>();
        let named = ["display_phone_number", "phone_number"].iter().find_map(|k| e.value.get(*k)?.as_str());
        match (named, &self.display_phone_number) {
            (None, _) => true,
            (Some(n), Some(mine)) => digits(n) == digits(mine),
            (Some(_), None) => false,
        }
    }
}

#[derive(Clone)]
pub struct Numbers {
    store: Store,
    fields: FieldEvents,
}

impl Numbers {
    pub fn new(store: Store, fields: FieldEvents) -> Numbers {
        Numbers { store, fields }
    }

    fn key(tenant: &str, phone_number_id: &str) -> Vec<u8> {
        keys::join(&[tenant.as_bytes(), phone_number_id.as_bytes()])
    }

    /// Learns the display number of one of `tenant`'s numbers, from a
    /// webhook's metadata.
    pub fn learn_display(&self, batch: &mut Batch, tenant: &str, phone_number_id: &str, display: &str) -> Result<()> {
        let key = Self::key(tenant, phone_number_id);
        if self.store.get(DISPLAY, &key)?.as_deref() != Some(display.as_bytes()) {
            batch.put(DISPLAY, key, display.as_bytes());
        }
        Ok(())
    }

    /// Every number of `tenant`, with its health.
    pub fn of_tenant(&self, tenant: &Tenant) -> Result<Vec<NumberHealth>> {
        let mut events: Vec<FieldEvent> = Vec::new();
        for field in FIELDS {
            events.extend(self.fields.list(&tenant.id, Some(field), 1000)?);
        }
        events.sort_by_key(|e| e.received_at);
        let mut out = Vec::new();
        for id in &tenant.phone_number_ids {
            let display = self.store.get(DISPLAY, &Self::key(&tenant.id, id))?;
            let mut health = NumberHealth {
                phone_number_id: id.clone(),
                display_phone_number: display.map(|d| String::from_utf8_lossy(&d).into_owned()),
                status: "CONNECTED".into(),
                ..Default::default()
            };
            for e in &events {
                if health.concerns(e) {
                    health.apply(e);
                }
            }
            out.push(health);
        }
        Ok(out)
    }

    /// Why business-initiated messages from `phone_number_id` are paused.
    pub fn pause_reason(&self, tenant: &Tenant, phone_number_id: &str) -> Result<Option<String>> {
        let numbers = self.of_tenant(tenant)?;
        Ok(numbers.iter().find(|n| n.phone_number_id == phone_number_id).and_then(NumberHealth::pause_reason))
    }
}
