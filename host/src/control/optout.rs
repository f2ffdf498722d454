//! Opt-out and opt-in keywords: a contact who writes just "STOP" (or BAJA,
//! PARAR, SAIR, UNSUBSCRIBE…) gets nothing automated afterwards.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    OptOut,
    OptIn,
}

/// The message is exactly one of the keywords (ignoring case, spaces and
/// punctuation): "stop" opts out, "don't stop the promo" does not.
pub fn consent_change(text: &str, opt_out: &[String], opt_in: &[String]) -> Option<Consent> {
    let normal: String = text
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if normal.is_empty() {
        return None;
    }
    if opt_out.iter().any(|k| k.to_lowercase() == normal) {
        return Some(Consent::OptOut);
    }
    if opt_in.iter().any(|k| k.to_lowercase() == normal) {
        return Some(Consent::OptIn);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_keyword_changes_consent() {
        let (out, inn) = (crate::tenants::default_opt_out(), crate::tenants::default_opt_in());
        assert_eq!(consent_change("STOP", &out, &inn), Some(Consent::OptOut));
        assert_eq!(consent_change("  Baja. ", &out, &inn), Some(Consent::OptOut));
        assert_eq!(consent_change("please don't stop", &out, &inn), None);
        assert_eq!(consent_change("Start!", &out, &inn), Some(Consent::OptIn));
        assert_eq!(consent_change("", &out, &inn), None);
    }
}
