//! Whether a send fills its template the way Meta will accept: every
//! variable given, of a type its component takes, within Meta's limits —
//! checked before calling Meta, so a mistake is a clear error naming the
//! component instead of a failed message later.

use super::definition::{ButtonShape, HeaderShape, Shape, Variables};
use crate::model::{ButtonParameter, HeaderParameter, Parameter, Template, TypedParameter};

/// Meta's limits (Cloud API, "Send template messages" and "Template
/// components"): a header's text is at most 60 characters, a body 1024
/// once its variables are filled, a copy-code button's code 15.
const HEADER_TEXT_MAX: usize = 60;
const BODY_MAX: usize = 1024;
const COUPON_MAX: usize = 15;

/// What is wrong with a send, naming the component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{component}: {problem}")]
pub struct Invalid {
    /// `header`, `body`, `button 2`…
    pub component: String,
    pub problem: String,
}

fn invalid(component: impl Into<String>, problem: impl Into<String>) -> Invalid {
    Invalid { component: component.into(), problem: problem.into() }
}

pub fn check(shape: &Shape, send: &Template) -> Result<(), Invalid> {
    header(shape.header.as_ref(), send.header.as_ref())?;
    body(shape, &send.parameters)?;
    buttons(&shape.buttons, &send.buttons)
}

fn header(shape: Option<&HeaderShape>, send: Option<&HeaderParameter>) -> Result<(), Invalid> {
    let fail = |p: String| Err(invalid("header", p));
    match (shape, send) {
        (None, None) => Ok(()),
        (None, Some(_)) => fail("the template has no header".into()),
        (Some(HeaderShape::Text(vars)), None) if vars.count() == 0 => Ok(()),
        (Some(HeaderShape::Text(_)), None) => fail("the header's text has a variable: send its value".into()),
        (Some(HeaderShape::Text(vars)), Some(HeaderParameter::Text { text, parameter_name })) => {
            if vars.count() == 0 {
                return fail("the header's text has no variable".into());
            }
            if let Variables::Named(names) = vars
                && parameter_name.as_ref().is_none_or(|n| !names.contains(n))
            {
                return fail(format!(
                    "the header's variable is {{{{{}}}}}: give it as parameter_name",
                    names.join(", ")
                ));
            }
            value_text("header", text, HEADER_TEXT_MAX)
        }
        (Some(HeaderShape::Other(format)), None) => fail(format!("the header is {format}: send it")),
        (Some(expected), Some(given)) => {
            let format = match expected {
                HeaderShape::Text(_) => "TEXT",
                HeaderShape::Other(f) => f.as_str(),
            };
            if given.format() != format {
                return fail(format!("the header is {format}, not {}", given.format()));
            }
            media_or_place(given)
        }
    }
}

fn media_or_place(h: &HeaderParameter) -> Result<(), Invalid> {
    if let Some((id, link)) = h.media() {
        return crate::outbound::limits::media_source("header", id, link).map_err(|e| invalid("header", e.to_string()));
    }
    if let HeaderParameter::Location { latitude, longitude, .. } = h {
        let (lat, lon) = (latitude.as_f64().unwrap_or(f64::NAN), longitude.as_f64().unwrap_or(f64::NAN));
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(invalid("header", "latitude must be within ±90 and longitude within ±180"));
        }
    }
    Ok(())
}

fn body(shape: &Shape, given: &[Parameter]) -> Result<(), Invalid> {
    match &shape.body {
        Variables::Positional(n) => {
            if given.len() != *n {
                return Err(invalid("body", format!("the template takes {n} parameter(s); {} given", given.len())));
            }
            if given.iter().any(|p| p.name().is_some()) {
                return Err(invalid("body", "the template's variables are numbered ({{1}}): drop parameter_name"));
            }
        }
        Variables::Named(names) => {
            for p in given {
                match p.name() {
                    None => {
                        return Err(invalid("body", "the template's variables are named: give each parameter_name"));
                    }
                    Some(n) if !names.iter().any(|x| x == n) => {
                        return Err(invalid("body", format!("the template has no variable {{{{{n}}}}}")));
                    }
                    Some(_) => {}
                }
            }
            if let Some(missing) = names.iter().find(|n| !given.iter().any(|p| p.name() == Some(n.as_str()))) {
                return Err(invalid("body", format!("no value for {{{{{missing}}}}}")));
            }
            if given.len() != names.len() {
                return Err(invalid("body", "a variable is given twice"));
            }
        }
    }
    for p in given {
        value_text("body", p.shown(), BODY_MAX)?;
        if let Parameter::Typed(TypedParameter::Currency { code, .. }) = p
            && !(code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()))
        {
            return Err(invalid("body", format!("currency code {code:?} is not an ISO 4217 code (like BRL)")));
        }
    }
    let filled = filled_length(shape, given);
    if filled > BODY_MAX {
        return Err(invalid("body", format!("{filled} characters once filled in; WhatsApp allows {BODY_MAX}")));
    }
    Ok(())
}

/// The body's length with each variable replaced by its value.
fn filled_length(shape: &Shape, given: &[Parameter]) -> usize {
    let mut text = shape.body_text.clone();
    for (i, p) in given.iter().enumerate() {
        let var = match p.name() {
            Some(name) => format!("{{{{{name}}}}}"),
            None => format!("{{{{{}}}}}", i + 1),
        };
        text = text.replace(&var, p.shown());
    }
    text.chars().count()
}

/// A variable's value, as Meta takes one: not blank, no new lines or
/// tabs, no more than four spaces in a row (error 132018), within `max`.
fn value_text(component: &str, text: &str, max: usize) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(invalid(component, "a parameter is empty"));
    }
    if text.contains(['\n', '\t']) || text.contains("     ") {
        return Err(invalid(component, "a parameter may not hold new lines, tabs or more than four spaces in a row"));
    }
    let len = text.chars().count();
    if len > max {
        return Err(invalid(component, format!("a parameter is {len} characters; at most {max}")));
    }
    Ok(())
}

fn buttons(shape: &[ButtonShape], given: &[ButtonParameter]) -> Result<(), Invalid> {
    for (i, b) in given.iter().enumerate() {
        let index = usize::from(b.index());
        let name = format!("button {index}");
        let Some(expected) = shape.get(index) else {
            return Err(invalid(name, format!("the template has {} button(s), numbered from 0", shape.len())));
        };
        if given[..i].iter().any(|earlier| earlier.index() == b.index()) {
            return Err(invalid(name, "given twice"));
        }
        if expected.kind != b.kind() {
            return Err(invalid(name, format!("it is a {} button, not {}", expected.kind, b.kind())));
        }
        match b {
            ButtonParameter::Url { .. } if !expected.takes_value => {
                return Err(invalid(name, "its URL has no variable"));
            }
            ButtonParameter::Url { text, .. } => value_text(&name, text, 2000)?,
            ButtonParameter::CopyCode { coupon_code, .. } => value_text(&name, coupon_code, COUPON_MAX)?,
            ButtonParameter::QuickReply { payload, .. } if payload.trim().is_empty() => {
                return Err(invalid(name, "the payload is empty"));
            }
            ButtonParameter::QuickReply { .. } => {}
        }
    }
    for (index, expected) in shape.iter().enumerate() {
        if expected.takes_value && !given.iter().any(|b| usize::from(b.index()) == index) {
            let what = if expected.kind == "URL" { "the end of its URL" } else { "its code" };
            return Err(invalid(format!("button {index}"), format!("a {} button: send {what}", expected.kind)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::templates::definition::TemplateDef;

    fn shape(components: serde_json::Value) -> Shape {
        let def =
            json!({ "id": "1", "name": "t", "language": "pt_BR", "status": "APPROVED", "components": components });
        TemplateDef::from_graph(&def, 0).unwrap().shape().unwrap()
    }

    fn send(v: serde_json::Value) -> Template {
        let mut t = json!({ "name": "t", "language": "pt_BR" });
        t.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        serde_json::from_value(t).unwrap()
    }

    fn component(r: Result<(), Invalid>) -> String {
        r.expect_err("refused").component
    }

    #[test]
    fn the_body_takes_exactly_its_variables() {
        let s = shape(json!([{ "type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} chegou." }]));
        assert!(check(&s, &send(json!({ "parameters": ["Ana", "#123"] }))).is_ok());
        let one = check(&s, &send(json!({ "parameters": ["Ana"] }))).unwrap_err();
        assert_eq!(
            (one.component.as_str(), one.problem.as_str()),
            ("body", "the template takes 2 parameter(s); 1 given")
        );
        assert_eq!(component(check(&s, &send(json!({ "parameters": ["Ana", "linha\nnova"] })))), "body");
        assert_eq!(component(check(&s, &send(json!({ "parameters": ["Ana", "a      b"] })))), "body");
        let typed = json!({ "parameters": [
            { "type": "currency", "fallback_value": "R$ 10", "code": "BRL", "amount_1000": 10000 },
            { "type": "date_time", "fallback_value": "amanhã" }] });
        assert!(check(&s, &send(typed)).is_ok());
        let bad_code = json!({ "parameters": ["Ana", { "type": "currency", "fallback_value": "10", "code": "real", "amount_1000": 1 }] });
        assert_eq!(component(check(&s, &send(bad_code))), "body");
    }

    #[test]
    fn named_variables_are_given_by_name() {
        let def = json!({ "id": "1", "name": "t", "language": "en_US", "status": "APPROVED", "parameter_format": "NAMED",
            "components": [{ "type": "BODY", "text": "Hi {{first_name}}, your code is {{code}}" }] });
        let s = TemplateDef::from_graph(&def, 0).unwrap().shape().unwrap();
        let ok = json!({ "parameters": [{ "type": "text", "text": "Ana", "parameter_name": "first_name" },
            { "type": "text", "text": "X1", "parameter_name": "code" }] });
        assert!(check(&s, &send(ok)).is_ok());
        let missing = check(
            &s,
            &send(json!({ "parameters": [{ "type": "text", "text": "Ana", "parameter_name": "first_name" }] })),
        );
        assert_eq!(missing.unwrap_err().problem, "no value for {{code}}");
        assert_eq!(component(check(&s, &send(json!({ "parameters": ["Ana", "X1"] })))), "body");
    }

    #[test]
    fn a_header_is_sent_as_its_format_says() {
        let image = shape(json!([{ "type": "HEADER", "format": "IMAGE" }, { "type": "BODY", "text": "Oferta" }]));
        assert!(
            check(&image, &send(json!({ "header": { "type": "image", "link": "https://x.example/a.jpg" } }))).is_ok()
        );
        assert!(check(&image, &send(json!({ "header": { "type": "image", "id": "1234" } }))).is_ok());
        assert_eq!(check(&image, &send(json!({}))).unwrap_err().problem, "the header is IMAGE: send it");
        let video = send(json!({ "header": { "type": "video", "link": "https://x.example/a.mp4" } }));
        assert_eq!(check(&image, &video).unwrap_err().problem, "the header is IMAGE, not VIDEO");
        let both = send(json!({ "header": { "type": "image", "id": "1", "link": "https://x.example/a.jpg" } }));
        assert_eq!(component(check(&image, &both)), "header");
        let location = shape(json!([{ "type": "HEADER", "format": "LOCATION" }, { "type": "BODY", "text": "Loja" }]));
        let here = json!({ "header": { "type": "location", "latitude": -23.55, "longitude": -46.63 } });
        assert!(check(&location, &send(here)).is_ok());
        let nowhere = json!({ "header": { "type": "location", "latitude": 123.0, "longitude": 0 } });
        assert_eq!(component(check(&location, &send(nowhere))), "header");
        let text = shape(
            json!([{ "type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}" }, { "type": "BODY", "text": "x" }]),
        );
        assert!(check(&text, &send(json!({ "header": { "type": "text", "text": "#123" } }))).is_ok());
        let long = json!({ "header": { "type": "text", "text": "x".repeat(61) } });
        assert_eq!(check(&text, &send(long)).unwrap_err().problem, "a parameter is 61 characters; at most 60");
        let document = shape(json!([{ "type": "HEADER", "format": "DOCUMENT" }]));
        assert!(
            check(&document, &send(json!({ "header": { "type": "document", "id": "9", "filename": "nf.pdf" } })))
                .is_ok()
        );
        let none = shape(json!([{ "type": "BODY", "text": "x" }]));
        assert_eq!(
            check(&none, &send(json!({ "header": { "type": "text", "text": "x" } }))).unwrap_err().problem,
            "the template has no header"
        );
    }

    #[test]
    fn buttons_take_values_where_the_template_has_variables() {
        let s = shape(json!([{ "type": "BODY", "text": "x" }, { "type": "BUTTONS", "buttons": [
            { "type": "QUICK_REPLY", "text": "Parar" },
            { "type": "URL", "text": "Ver", "url": "https://loja.example/p/{{1}}" },
            { "type": "COPY_CODE", "example": "OFF10" },
            { "type": "URL", "text": "Site", "url": "https://loja.example" }] }]));
        let all = json!({ "buttons": [{ "type": "quick_reply", "index": 0, "payload": "stop" },
            { "type": "url", "index": 1, "text": "A1" }, { "type": "copy_code", "index": 2, "coupon_code": "OFF10" }] });
        assert!(check(&s, &send(all)).is_ok());
        let no_code = json!({ "buttons": [{ "type": "url", "index": 1, "text": "A1" }] });
        assert_eq!(check(&s, &send(no_code)).unwrap_err().component, "button 2");
        let wrong = json!({ "buttons": [{ "type": "url", "index": 0, "text": "A1" }] });
        assert_eq!(check(&s, &send(wrong)).unwrap_err().problem, "it is a QUICK_REPLY button, not URL");
        let static_url = json!({ "buttons": [{ "type": "url", "index": 1, "text": "A1" },
            { "type": "copy_code", "index": 2, "coupon_code": "OFF10" }, { "type": "url", "index": 3, "text": "x" }] });
        assert_eq!(check(&s, &send(static_url)).unwrap_err().problem, "its URL has no variable");
        let long_code = json!({ "buttons": [{ "type": "url", "index": 1, "text": "A1" },
            { "type": "copy_code", "index": 2, "coupon_code": "A".repeat(16) }] });
        assert_eq!(check(&s, &send(long_code)).unwrap_err().component, "button 2");
        let beyond = json!({ "buttons": [{ "type": "quick_reply", "index": 7, "payload": "x" }] });
        assert_eq!(check(&s, &send(beyond)).unwrap_err().component, "button 7");
    }
}
