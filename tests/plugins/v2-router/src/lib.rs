//! A router built against `switchboard:plugin@0.2.0`, straight from the
//! WIT files (not the SDK, which targets 0.1.0): it reports what 0.2.0
//! adds — the contact's optional phone, BSUID and username, the message's
//! kind, forwarded flag, edit, deletion and ad referral — as JSON in the
//! decision's reason, and answers "code" with an authentication template
//! and "offer" with a marketing one, so tests see categories reach the host.
wit_bindgen::generate!({ path: "../../../wit/v0.2.0", world: "router" });

use exports::switchboard::plugin::routing::{Decision, Guest, Handler, Input, Reply};
use switchboard::plugin::types::{Priority, Template, TemplateCategory};

struct V2;

impl Guest for V2 {
    fn route(input: Input) -> Result<Decision, String> {
        let (contact, message) = (&input.context.contact, &input.message);
        let referral = message.referral.as_ref();
        let reason = format!(
            concat!(
                "{{\"phone\":{:?},\"user_id\":{:?},\"username\":{:?},\"marketing_stopped\":{},",
                "\"kind\":{:?},\"forwarded\":{:?},\"edited\":{},\"revoked\":{},",
                "\"referral_headline\":{:?},\"ctwa_clid\":{:?},\"history\":{}}}"
            ),
            contact.phone.clone().unwrap_or_default(),
            contact.user_id.clone().unwrap_or_default(),
            contact.username.clone().unwrap_or_default(),
            contact.marketing_stopped,
            format!("{:?}", message.kind),
            format!("{:?}", message.forwarded),
            message.edited_at.is_some(),
            message.revoked_at.is_some(),
            referral.and_then(|r| r.headline.clone()).unwrap_or_default(),
            referral.and_then(|r| r.ctwa_clid.clone()).unwrap_or_default(),
            input.context.conversation.history.len(),
        );
        let template = |name: &str, category| {
            Reply::Template(Template {
                name: name.into(),
                language: "pt_BR".into(),
                parameters: vec![],
                category: Some(category),
            })
        };
        let reply = match message.text.as_deref() {
            Some("code") => template("login_code", TemplateCategory::Authentication),
            Some("offer") => template("black_friday", TemplateCategory::Marketing),
            _ => Reply::Text("ok".into()),
        };
        Ok(Decision {
            needs_reply: true,
            handler: Handler::Bot(reply),
            acknowledge: None,
            priority: Priority::Normal,
            respond_within: None,
            tags: vec![],
            reason,
        })
    }
}

export!(V2);
