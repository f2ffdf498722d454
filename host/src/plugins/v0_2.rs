//! Bindings for `switchboard:plugin@0.2.0`: WhatsApp as it is in 2026 — a
//! contact with an optional phone, a BSUID and a username; messages with
//! their referral, edits, deletion and forwarded flags; the new kinds;
//! templates with their category. The rest is shared (see `lowering`).

use super::lowering::wit_conversions;
use super::sandbox::HostState;
use crate::crm::{Contact, Message};
use crate::model;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "router",
    });
}

pub mod follow_up_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "follow-up",
        with: {
            "switchboard:plugin/types": super::bindings::switchboard::plugin::types,
            "switchboard:plugin/host": super::bindings::switchboard::plugin::host,
        },
    });
}

pub mod feedback_bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "feedback",
        with: {
            "switchboard:plugin/types": super::bindings::switchboard::plugin::types,
            "switchboard:plugin/host": super::bindings::switchboard::plugin::host,
        },
    });
}

use bindings::exports::switchboard::plugin::routing as wit_routing;
use bindings::switchboard::plugin::host as wit_host;
use bindings::switchboard::plugin::types as wit;
use feedback_bindings::exports::switchboard::plugin::learning as wit_learning;
use follow_up_bindings::exports::switchboard::plugin::following as wit_following;

wit_conversions!("0.2.0");

fn lift_template(t: wit::Template) -> model::Template {
    let category = t.category.map(|c| match c {
        wit::TemplateCategory::Marketing => model::TemplateCategory::Marketing,
        wit::TemplateCategory::Utility => model::TemplateCategory::Utility,
        wit::TemplateCategory::Authentication => model::TemplateCategory::Authentication,
    });
    model::Template { name: t.name, language: t.language, parameters: t.parameters, category }
}

fn lower_template(t: &model::Template) -> wit::Template {
    wit::Template {
        name: t.name.clone(),
        language: t.language.clone(),
        parameters: t.parameters.clone(),
        category: t.category.map(|c| match c {
            model::TemplateCategory::Marketing => wit::TemplateCategory::Marketing,
            model::TemplateCategory::Utility => wit::TemplateCategory::Utility,
            model::TemplateCategory::Authentication => wit::TemplateCategory::Authentication,
        }),
    }
}

fn lower_contact(c: &Contact) -> wit::Contact {
    wit::Contact {
        id: c.id.clone(),
        phone: c.phone.clone(),
        user_id: c.user_id.clone(),
        username: c.username.clone(),
        name: c.display_name().map(String::from),
        country: c.country.clone(),
        email: c.email.clone(),
        tags: c.tags.clone(),
        opted_out: c.opted_out,
        marketing_stopped: c.marketing_stopped_at.is_some(),
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
        forwarded: match m.forwarded {
            model::Forwarded::No => wit::Forwarded::No,
            model::Forwarded::Forwarded => wit::Forwarded::Forwarded,
            model::Forwarded::FrequentlyForwarded => wit::Forwarded::FrequentlyForwarded,
        },
        edited_at: m.edits.last().map(|e| e.replaced_at),
        revoked_at: m.revoked_at,
        referral: m.referral.as_ref().map(lower_referral),
    }
}

/// Meta's `referral` object, field by field; a field of another type
/// than text is left out rather than guessed at.
fn lower_referral(r: &serde_json::Value) -> wit::Referral {
    let field = |k: &str| r.get(k).and_then(serde_json::Value::as_str).map(String::from);
    wit::Referral {
        source_type: field("source_type"),
        source_id: field("source_id"),
        source_url: field("source_url"),
        headline: field("headline"),
        body: field("body"),
        media_type: field("media_type"),
        ctwa_clid: field("ctwa_clid"),
    }
}

fn lower_kind(k: model::MessageKind) -> wit::MessageKind {
    use model::MessageKind as K;
    match k {
        K::Text => wit::MessageKind::Text,
        K::Image => wit::MessageKind::Image,
        K::Audio => wit::MessageKind::Audio,
        K::Video => wit::MessageKind::Video,
        K::Document => wit::MessageKind::Document,
        K::Sticker => wit::MessageKind::Sticker,
        K::Location => wit::MessageKind::Location,
        K::Contacts => wit::MessageKind::Contacts,
        K::Interactive => wit::MessageKind::Interactive,
        K::Button => wit::MessageKind::Button,
        K::Reaction => wit::MessageKind::Reaction,
        K::Order => wit::MessageKind::Order,
        K::System => wit::MessageKind::System,
        K::Template => wit::MessageKind::Template,
        K::Unsupported => wit::MessageKind::Unsupported,
        K::Edit => wit::MessageKind::Edit,
        K::Revoke => wit::MessageKind::Revoke,
        K::RequestWelcome => wit::MessageKind::RequestWelcome,
        K::Call => wit::MessageKind::Call,
        K::Preference => wit::MessageKind::Preference,
        K::Other => wit::MessageKind::Other,
    }
}

fn lower_status(s: model::DeliveryStatus) -> wit::DeliveryStatus {
    use model::DeliveryStatus as S;
    match s {
        S::Pending => wit::DeliveryStatus::Pending,
        S::Unknown => wit::DeliveryStatus::Unknown,
        S::DryRun => wit::DeliveryStatus::DryRun,
        S::Sent => wit::DeliveryStatus::Sent,
        S::Failed => wit::DeliveryStatus::Failed,
        S::Delivered => wit::DeliveryStatus::Delivered,
        S::Played => wit::DeliveryStatus::Played,
        // `deleted` and `warning` are never a message's status (only its
        // history's); should one be, the message had been read.
        S::Read | S::Deleted | S::Warning => wit::DeliveryStatus::Read,
    }
}
