//! Webhook bodies in: each change goes to the tenant owning its
//! phone-number id; its events are journaled and its unreadable items
//! quarantined in one commit, so what is acknowledged is all on disk. The
//! quarantine's replay comes back through here.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::{Event, Pipeline};
use crate::control::{Actor, AuditAction, AuditEntry};
use crate::ingest::fields::FieldEvent;
use crate::ingest::payload::{self, ChangeBatch, FieldChange, Parsed, Unreadable};
use crate::ingest::quarantine::{OPERATOR, Quarantined};
use crate::ingest::raw::RawItem;
use crate::metrics::labels;
use crate::store::{Batch, StoreError};
use crate::tenants::Tenant;

/// The tenants a body's changes belong to: by phone-number id, and, for
/// changes that name none, by business account.
#[derive(Debug, Default)]
pub struct Owners {
    pub phones: BTreeMap<String, Option<Tenant>>,
    pub wabas: BTreeMap<String, Option<Tenant>>,
}

impl Owners {
    /// The enabled tenant owning a phone-number id.
    pub fn of_phone(&self, phone_number_id: &str) -> Option<&Tenant> {
        self.phones.get(phone_number_id)?.as_ref().filter(|t| !t.disabled)
    }

    /// The enabled tenant a change of another field belongs to.
    pub fn of_field(&self, change: &FieldChange) -> Option<&Tenant> {
        match (&change.phone_number_id, &change.waba_id) {
            (Some(phone), _) => self.of_phone(phone),
            (None, Some(waba)) => self.wabas.get(waba)?.as_ref().filter(|t| !t.disabled),
            (None, None) => None,
        }
    }

    /// Every tenant named, for the signature check.
    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.phones.values().chain(self.wabas.values()).flatten()
    }
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Received {
    /// Events journaled for processing.
    pub accepted: usize,
    /// Redeliveries dropped.
    pub duplicates: usize,
    /// Changes for phone-number ids no tenant owns (acknowledged, not processed).
    pub unknown_phone_numbers: usize,
    /// Changes of other fields (account, number, template updates…),
    /// kept (`GET /v1/webhook-events`).
    pub fields: usize,
    /// Items that could not be read, kept in the quarantine (`GET /v1/quarantine`).
    pub quarantined: usize,
}

/// What a replay of the quarantine did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Replayed {
    /// Items read this time: released, their events journaled.
    pub released: usize,
    /// Items still unreadable (kept, with the latest reason).
    pub kept: usize,
    /// Events journaled.
    pub accepted: usize,
    /// Events already recorded before.
    pub duplicates: usize,
}

impl Pipeline {
    /// The owner of every phone-number id in `parsed`, and of every
    /// business account its changes without one name.
    pub fn owners(&self, parsed: &Parsed) -> Result<Owners, StoreError> {
        let s = &self.stages;
        let mut owners = Owners::default();
        for id in parsed.phone_number_ids() {
            if !owners.phones.contains_key(id) {
                owners.phones.insert(id.to_string(), s.tenants.by_phone_number_id(id)?);
            }
        }
        for waba in parsed.waba_ids() {
            if !owners.wabas.contains_key(waba) {
                // The account the operator configured wins over the one
                // learned from the entries numbers came in.
                let tenant = match s.tenants.by_waba_id(waba)? {
                    Some(t) => Some(t),
                    None => match s.fields.waba_owner(waba)? {
                        Some(id) => s.tenants.get(&id)?,
                        None => None,
                    },
                };
                owners.wabas.insert(waba.to_string(), tenant);
            }
        }
        Ok(owners)
    }

    /// Journals the events of an authenticated body, keeps its other
    /// fields and quarantines what could not be read, in one commit.
    /// Durable after [`Store::sync`](crate::store::Store::sync).
    pub fn intake(&self, parsed: Parsed, owners: &Owners, now: crate::clock::Millis) -> Result<Received, StoreError> {
        let mut received = Received::default();
        let mut batch = Batch::new();
        self.quarantine_unreadable(parsed.unreadable, owners, now, &mut batch, &mut received)?;
        self.keep_fields(parsed.fields, owners, now, &mut batch, &mut received)?;
        let mut events = Vec::new();
        for change in parsed.changes {
            match owners.of_phone(&change.phone_number_id) {
                Some(tenant) => events.extend(self.events(tenant, change, &mut batch)?),
                None => {
                    received.unknown_phone_numbers += 1;
                    self.stages.metrics.unknown_phone_numbers.inc();
                    tracing::warn!(phone_number_id = %change.phone_number_id, "webhook for a phone-number id no tenant owns; acknowledged and ignored");
                }
            }
        }
        if events.is_empty() && batch.is_empty() {
            return Ok(received);
        }
        let appended = self.submit(events, batch)?;
        self.stages.metrics.duplicates.inc_by(appended.duplicates as u64);
        (received.accepted, received.duplicates) = (appended.new, appended.duplicates);
        Ok(received)
    }

    fn quarantine_unreadable(
        &self,
        items: Vec<Unreadable>,
        owners: &Owners,
        now: crate::clock::Millis,
        batch: &mut Batch,
        received: &mut Received,
    ) -> Result<(), StoreError> {
        let s = &self.stages;
        for item in items {
            let tenant = match &item.phone_number_id {
                None => OPERATOR.to_string(),
                Some(id) => match owners.of_phone(id) {
                    Some(t) => t.id.clone(),
                    None => {
                        received.unknown_phone_numbers += 1;
                        continue;
                    }
                },
            };
            tracing::warn!(tenant, path = %item.path, reason = %item.reason, "an unreadable webhook item; quarantined");
            let kind = item_kind(&item.path);
            s.metrics.unreadable_items.get_or_create(&labels::Unreadable { kind }).inc();
            s.quarantine.keep(batch, &Quarantined::new(&tenant, item, now))?;
            received.quarantined += 1;
        }
        Ok(())
    }

    /// Keeps each change of another field for the tenant it belongs to
    /// (the operator's when none), counted; a template's change is applied
    /// to its definition, a number's health change is audited.
    fn keep_fields(
        &self,
        fields: Vec<FieldChange>,
        owners: &Owners,
        now: crate::clock::Millis,
        batch: &mut Batch,
        received: &mut Received,
    ) -> Result<(), StoreError> {
        let s = &self.stages;
        let mut templates = crate::templates::Edits::default();
        for change in fields {
            let tenant = owners.of_field(&change).map_or(OPERATOR.to_string(), |t| t.id.clone());
            let event = FieldEvent::new(&tenant, change, now);
            if !s.fields.keep(batch, &event)? {
                continue;
            }
            received.fields += 1;
            let kind = event.value.get("event").or(event.value.get("decision")).and_then(|e| e.as_str());
            let field = KNOWN_FIELDS.iter().find(|f| **f == event.field).copied().unwrap_or("other");
            s.metrics.webhook_fields.get_or_create(&labels::WebhookField { field }).inc();
            if tenant != OPERATOR {
                s.templates.apply_webhook(&mut templates, &tenant, &event.field, &event.value, now)?;
            }
            if crate::numbers::FIELDS.contains(&event.field.as_str()) && tenant != OPERATOR {
                let what = format!("{}: {}", event.field, kind.unwrap_or("update"));
                let entry = AuditEntry::new(now, Actor::Host, AuditAction::NumberHealthChanged, what);
                s.control.audit.record(batch, &tenant, &entry.with(event.value.clone()))?;
            }
        }
        templates.write(batch)?;
        Ok(())
    }

    /// A change's messages and statuses as the tenant's events, counted,
    /// each kept as it came ([`RawItems`](crate::ingest::raw::RawItems)).
    fn events(&self, tenant: &Tenant, change: ChangeBatch, batch: &mut Batch) -> Result<Vec<Event>, StoreError> {
        let (s, metrics) = (&self.stages, &self.stages.metrics);
        if let Some(waba) = &change.waba_id {
            s.fields.learn_waba(batch, waba, &tenant.id)?;
        }
        if let Some(display) = &change.display_phone_number {
            s.numbers.learn_display(batch, &tenant.id, &change.phone_number_id, display)?;
        }
        let mut events = Vec::with_capacity(change.messages.len() + change.statuses.len());
        for mut m in change.messages {
            m.tenant = tenant.id.clone();
            metrics.messages_in.get_or_create(&labels::MessageType { r#type: m.kind.as_str() }).inc();
            self.keep_raw(batch, &tenant.id, ("message", &m.wamid, None, m.received_at), m.raw.take())?;
            events.push(Event::Inbound(m));
        }
        for mut st in change.statuses {
            st.tenant = tenant.id.clone();
            metrics.statuses_in.get_or_create(&labels::Status { status: st.status.as_str() }).inc();
            let about = ("status", st.wamid.as_str(), Some(st.status.as_str()), st.received_at);
            self.keep_raw(batch, &tenant.id, about, st.raw.take())?;
            events.push(Event::Status(st));
        }
        Ok(events)
    }

    fn keep_raw(
        &self,
        batch: &mut Batch,
        tenant: &str,
        (kind, wamid, status, received_at): (&str, &str, Option<&str>, crate::clock::Millis),
        raw: Option<crate::ingest::raw::RawJson>,
    ) -> Result<(), StoreError> {
        let Some(value) = raw.filter(|_| !self.stages.config.webhook.raw_retention.is_zero()) else { return Ok(()) };
        let item = RawItem {
            kind: kind.to_string(),
            wamid: wamid.to_string(),
            status: status.map(String::from),
            received_at,
            value,
        };
        self.stages.raw.keep(batch, tenant, &item)
    }

    /// Reads all of `tenant`'s quarantined items again: those this release
    /// can read are released and their events journaled in the same
    /// commit; the rest stay with the latest reason. The operator's items
    /// ([`OPERATOR`]) go to the tenant owning the number they turn out to
    /// name; a tenant's stay the tenant's.
    pub fn replay_all(&self, tenant: &str) -> Result<Replayed, StoreError> {
        let mut replayed = Replayed::default();
        let mut after: Option<String> = None;
        loop {
            let items = self.stages.quarantine.list(tenant, after.as_deref(), 100)?;
            let Some(last) = items.last() else { return Ok(replayed) };
            after = Some(last.id.clone());
            for item in items {
                self.replay_one(item, &mut replayed)?;
            }
        }
    }

    /// [`replay_all`](Self::replay_all) for one item; `None` if `tenant`
    /// has no such item.
    pub fn replay_item(&self, tenant: &str, id: &str) -> Result<Option<Replayed>, StoreError> {
        let Some(item) = self.stages.quarantine.get(tenant, id)? else { return Ok(None) };
        let mut replayed = Replayed::default();
        self.replay_one(item, &mut replayed)?;
        Ok(Some(replayed))
    }

    fn replay_one(&self, mut item: Quarantined, replayed: &mut Replayed) -> Result<(), StoreError> {
        let (s, now) = (&self.stages, self.stages.clock.now_ms());
        let read = match item.field.as_str() {
            field if payload::ITEM_FIELDS.contains(&field) => {
                payload::read_change(field, &item.value, &item.path, item.received_at)
            }
            // Nothing else is quarantined yet; kept as it is.
            _ => payload::ReadChange { batch: None, unreadable: vec![unreadable_as_is(&item)] },
        };
        let mut batch = Batch::new();
        let owner = match (&read.batch, item.tenant.as_str()) {
            (Some(change), OPERATOR) => self.stages.tenants.by_phone_number_id(&change.phone_number_id)?,
            (_, tenant) => s.tenants.get(tenant)?,
        };
        match (read.unreadable.into_iter().next(), read.batch, owner) {
            (None, Some(change), Some(tenant)) if !tenant.disabled => {
                s.quarantine.release(&mut batch, &item);
                let events = self.events(&tenant, change, &mut batch)?;
                let appended = self.submit(events, batch)?;
                replayed.released += 1;
                replayed.accepted += appended.new;
                replayed.duplicates += appended.duplicates;
            }
            (still, _, _) => {
                item.reason = match still {
                    Some(u) => u.reason,
                    None => "no enabled tenant owns its phone-number id".into(),
                };
                item.replays += 1;
                item.last_replay_at = Some(now);
                s.quarantine.keep(&mut batch, &item)?;
                s.store.commit(batch)?;
                replayed.kept += 1;
            }
        }
        Ok(())
    }
}

/// The fields Meta's webhook reference lists besides `messages`; others
/// are counted as `other` (a label's values must stay few).
const KNOWN_FIELDS: [&str; 10] = [
    "account_update",
    "phone_number_quality_update",
    "phone_number_name_update",
    "message_template_status_update",
    "message_template_quality_update",
    "template_category_update",
    "business_capability_update",
    "user_preferences",
    "history",
    "account_alerts",
];

/// `message`, `status` or `change`: what an unreadable item was, by where
/// it sat.
fn item_kind(path: &str) -> &'static str {
    if path.contains(".messages") {
        "message"
    } else if path.contains(".statuses") {
        "status"
    } else {
        "change"
    }
}

fn unreadable_as_is(item: &Quarantined) -> payload::Unreadable {
    payload::Unreadable {
        field: item.field.clone(),
        phone_number_id: item.phone_number_id.clone(),
        path: item.path.clone(),
        reason: item.reason.clone(),
        value: item.value.clone(),
    }
}
