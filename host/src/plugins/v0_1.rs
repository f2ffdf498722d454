//! Bindings for `switchboard:plugin@0.1.0` and the conversions between the
//! host's values and that version's WIT types.
//!
//! One module per WIT version (as Zed does for extensions), the parts every
//! version shares expanded from `lowering`: components built against
//! `@0.1.0` keep working unchanged beside `@0.2.0` ones. This version is
//! frozen: what WhatsApp added since is lowered to what it can say.

use super::lowering::{lower_kind, wit_bindings, wit_conversions};
use super::sandbox::HostState;
use crate::crm::{Contact, Message};
use crate::model;

wit_bindings!("../wit/v0.1.0");

wit_conversions!("0.1.0");

// ---- what 0.1.0 says its own way ----

fn lift_template(t: wit::Template) -> model::Template {
    model::Template::text(t.name, t.language, t.parameters)
}

fn lower_template(t: &model::Template) -> wit::Template {
    wit::Template { name: t.name.clone(), language: t.language.clone(), parameters: t.parameter_texts() }
}

fn lower_contact(c: &Contact) -> wit::Contact {
    wit::Contact {
        id: c.id.clone(),
        // 0.1.0 plugins were written when every contact had a phone: one
        // known only by BSUID shows an empty one (0.2.0 says which).
        phone: c.phone.clone().unwrap_or_default(),
        name: c.display_name().map(String::from),
        country: c.country.clone(),
        email: c.email.clone(),
        tags: c.tags.clone(),
        opted_out: c.opted_out,
        signals: lower_signals(c),
    }
}

fn lower_message(m: &Message) -> wit::Message {
    wit::Message {
        id: m.id.clone(),
        direction: lower_direction(m.direction),
        author: lower_author(&m.author),
        kind: lower_kind(m.kind),
        text: m.text.clone(),
        at: m.at,
        reply_to: m.reply_to.clone(),
        status: m.status.map(lower_status),
    }
}

fn lower_kind(k: model::MessageKind) -> wit::MessageKind {
    lower_kind!(k, { K::Edit | K::Revoke | K::RequestWelcome | K::Call | K::Preference | K::Other => W::Other })
}

fn lower_status(s: model::DeliveryStatus) -> wit::DeliveryStatus {
    use model::DeliveryStatus as S;
    match s {
        // 0.1.0 has no "unknown": to its plugins it is still unconfirmed.
        S::Pending | S::Unknown => wit::DeliveryStatus::Pending,
        S::DryRun => wit::DeliveryStatus::DryRun,
        S::Sent => wit::DeliveryStatus::Sent,
        S::Failed => wit::DeliveryStatus::Failed,
        S::Delivered => wit::DeliveryStatus::Delivered,
        // 0.1.0 ends at `read`: a played voice message was read. `deleted`
        // and `warning` are never a message's status (only its history's).
        S::Read | S::Played | S::Deleted | S::Warning => wit::DeliveryStatus::Read,
    }
}
