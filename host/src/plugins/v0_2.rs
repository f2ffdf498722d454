//! Bindings for `switchboard:plugin@0.2.0`: WhatsApp as it is in 2026 — a
//! contact with an optional phone, a BSUID and a username; messages with
//! their referral, edits, deletion and forwarded flags; the new kinds;
//! templates with their category. The rest is shared (see `lowering`).

use super::lowering::{lower_kind, wit_bindings, wit_conversions};
use super::sandbox::HostState;
use crate::crm::{Contact, Message};
use crate::model;

wit_bindings!("../wit/v0.2.0");

wit_conversions!("0.2.0");

fn lift_template(t: wit::Template) -> model::Template {
    let category = t.category.map(|c| match c {
        wit::TemplateCategory::Marketing => model::TemplateCategory::Marketing,
        wit::TemplateCategory::Utility => model::TemplateCategory::Utility,
        wit::TemplateCategory::Authentication => model::TemplateCategory::Authentication,
    });
    model::Template { category, ..model::Template::text(t.name, t.language, t.parameters) }
}

fn lower_template(t: &model::Template) -> wit::Template {
    wit::Template {
        name: t.name.clone(),
        language: t.language.clone(),
        parameters: t.parameter_texts(),
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
    lower_kind!(k, {
        K::Edit => W::Edit,
        K::Revoke => W::Revoke,
        K::RequestWelcome => W::RequestWelcome,
        K::Call => W::Call,
        K::Preference => W::Preference,
        K::Other => W::Other,
    })
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
