//! What WhatsApp refuses before it is sent: Meta's lengths and counts for
//! each kind of message ("Send messages", "Interactive messages"),
//! checked so a sender learns which field is wrong instead of finding a
//! failed message later. Templates are checked against their definition
//! (`templates`).

use std::collections::HashSet;

use crate::model::{ListSection, Reply, ReplyButton};

/// A field over Meta's limit, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct OverLimit {
    pub field: String,
    pub problem: String,
}

fn over(field: &str, problem: impl Into<String>) -> OverLimit {
    OverLimit { field: field.into(), problem: problem.into() }
}

/// `text` is 1–`max` characters.
fn length(field: &str, text: &str, max: usize) -> Result<(), OverLimit> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        return Err(over(field, "is empty"));
    }
    if n > max {
        return Err(over(field, format!("is {n} characters; WhatsApp allows {max}")));
    }
    Ok(())
}

fn optional(field: &str, text: &Option<String>, max: usize) -> Result<(), OverLimit> {
    text.as_deref().map_or(Ok(()), |t| length(field, t, max))
}

fn web_link(field: &str, url: &str) -> Result<(), OverLimit> {
    let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok { Ok(()) } else { Err(over(field, "must be an http(s) URL")) }
}

/// Media named by Meta's id (uploaded to the number) or a public http(s)
/// link, exactly one: for messages and template headers alike.
pub fn media_source(field: &str, id: Option<&str>, link: Option<&str>) -> Result<(), OverLimit> {
    match (id, link) {
        (Some(id), None) => length(&format!("{field}.id"), id, 256),
        (None, Some(link)) => web_link(&format!("{field}.link"), link),
        _ => Err(over(field, "give the media's `id` or its `link`, one of them")),
    }
}

pub fn check(reply: &Reply) -> Result<(), OverLimit> {
    match reply {
        Reply::Text { body } => length("text", body, 4096),
        Reply::Template(_) => Ok(()),
        Reply::Media { kind, id, link, caption, filename } => {
            media_source("media", id.as_deref(), link.as_deref())?;
            if caption.is_some() && !kind.takes_caption() {
                return Err(over("media.caption", format!("{} takes no caption", kind.as_str())));
            }
            optional("media.caption", caption, 1024)?;
            if filename.is_some() && *kind != crate::model::MediaKind::Document {
                return Err(over("media.filename", "only documents have a file name"));
            }
            optional("media.filename", filename, 240)
        }
        Reply::Buttons { body, header, footer, buttons } => {
            frame(body, 1024, header, footer)?;
            reply_buttons(buttons)
        }
        Reply::List { body, header, footer, button, sections } => {
            frame(body, 4096, header, footer)?;
            length("list.button", button, 20)?;
            list(sections)
        }
        Reply::CtaUrl { body, header, footer, display_text, url } => {
            frame(body, 1024, header, footer)?;
            length("cta_url.display_text", display_text, 20)?;
            web_link("cta_url.url", url)
        }
        Reply::LocationRequest { body } => length("body", body, 1024),
        Reply::Reaction { message_id, emoji } => {
            length("reaction.message_id", message_id, 256)?;
            // One emoji (a sequence of a few code points), or none to remove.
            if emoji.chars().count() > 10 || emoji.chars().any(|c| c.is_ascii_alphanumeric()) {
                return Err(over("reaction.emoji", "one emoji, or \"\" to remove the reaction"));
            }
            Ok(())
        }
    }
}

/// An interactive message's body, header and footer.
fn frame(body: &str, max: usize, header: &Option<String>, footer: &Option<String>) -> Result<(), OverLimit> {
    length("body", body, max)?;
    optional("header", header, 60)?;
    optional("footer", footer, 60)
}

fn reply_buttons(buttons: &[ReplyButton]) -> Result<(), OverLimit> {
    if buttons.is_empty() || buttons.len() > 3 {
        return Err(over("buttons", format!("{} given; WhatsApp takes 1 to 3", buttons.len())));
    }
    let (mut ids, mut titles) = (HashSet::new(), HashSet::new());
    for (i, b) in buttons.iter().enumerate() {
        length(&format!("buttons[{i}].id"), &b.id, 256)?;
        length(&format!("buttons[{i}].title"), &b.title, 20)?;
        if !ids.insert(&b.id) || !titles.insert(&b.title) {
            return Err(over(&format!("buttons[{i}]"), "ids and titles must be unique"));
        }
    }
    Ok(())
}

fn list(sections: &[ListSection]) -> Result<(), OverLimit> {
    let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
    if sections.is_empty() || rows == 0 || rows > 10 {
        return Err(over("list.sections", format!("{rows} rows given; WhatsApp takes 1 to 10 in all")));
    }
    let mut ids = HashSet::new();
    for (i, s) in sections.iter().enumerate() {
        match &s.title {
            Some(t) => length(&format!("sections[{i}].title"), t, 24)?,
            None if sections.len() > 1 => {
                return Err(over(&format!("sections[{i}].title"), "needed with several sections"));
            }
            None => {}
        }
        for (j, r) in s.rows.iter().enumerate() {
            let field = format!("sections[{i}].rows[{j}]");
            length(&format!("{field}.id"), &r.id, 200)?;
            length(&format!("{field}.title"), &r.title, 24)?;
            optional(&format!("{field}.description"), &r.description, 72)?;
            if !ids.insert(&r.id) {
                return Err(over(&field, "row ids must be unique"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reply(v: serde_json::Value) -> Reply {
        serde_json::from_value(v).unwrap()
    }

    fn field(v: serde_json::Value) -> String {
        check(&reply(v)).unwrap_err().field
    }

    /// Meta's interactive-message limits: 3 reply buttons with titles of
    /// 20 characters; 10 list rows with titles of 24 and descriptions of 72.
    #[test]
    fn interactive_messages_within_whatsapp_limits() {
        let three = json!({ "type": "buttons", "body": "Posso ajudar?", "buttons": [
            { "id": "sales", "title": "Comprar" }, { "id": "support", "title": "Suporte" }, { "id": "other", "title": "Outro" }] });
        assert!(check(&reply(three)).is_ok());
        let four = json!({ "type": "buttons", "body": "x", "buttons": [
            { "id": "1", "title": "a" }, { "id": "2", "title": "b" }, { "id": "3", "title": "c" }, { "id": "4", "title": "d" }] });
        assert_eq!(field(four), "buttons");
        let long_title = json!({ "type": "buttons", "body": "x", "buttons": [{ "id": "1", "title": "a".repeat(21) }] });
        assert_eq!(field(long_title), "buttons[0].title");
        let rows: Vec<_> = (0..11).map(|i| json!({ "id": format!("r{i}"), "title": format!("Opção {i}") })).collect();
        let eleven =
            json!({ "type": "list", "body": "Escolha", "button": "Ver opções", "sections": [{ "rows": rows }] });
        assert_eq!(field(eleven), "list.sections");
        let described = json!({ "type": "list", "body": "Escolha", "button": "Ver", "sections": [{ "rows": [
            { "id": "r1", "title": "Plano anual", "description": "d".repeat(73) }] }] });
        assert_eq!(field(described), "sections[0].rows[0].description");
        let untitled = json!({ "type": "list", "body": "x", "button": "Ver", "sections": [
            { "rows": [{ "id": "a", "title": "A" }] }, { "rows": [{ "id": "b", "title": "B" }] }] });
        assert_eq!(field(untitled), "sections[0].title");
        let cta = json!({ "type": "cta_url", "body": "Veja", "display_text": "Abrir", "url": "javascript:alert(1)" });
        assert_eq!(field(cta), "cta_url.url");
    }

    #[test]
    fn media_text_and_reactions() {
        let both = json!({ "type": "media", "kind": "image", "id": "1", "link": "https://x.example/a.jpg" });
        assert_eq!(field(both), "media");
        let voice = json!({ "type": "media", "kind": "audio", "id": "1", "caption": "oi" });
        assert_eq!(field(voice), "media.caption");
        let pdf = json!({ "type": "media", "kind": "document", "link": "https://x.example/a.pdf", "filename": "proposta.pdf", "caption": "Segue" });
        assert!(check(&reply(pdf)).is_ok());
        assert_eq!(field(json!({ "type": "text", "body": "x".repeat(4097) })), "text");
        assert!(check(&reply(json!({ "type": "reaction", "message_id": "wamid.1", "emoji": "👍🏽" }))).is_ok());
        assert!(check(&reply(json!({ "type": "reaction", "message_id": "wamid.1", "emoji": "" }))).is_ok());
        assert_eq!(field(json!({ "type": "reaction", "message_id": "wamid.1", "emoji": "ok" })), "reaction.emoji");
    }
}
