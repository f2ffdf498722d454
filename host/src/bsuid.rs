//! Business-scoped user ids (BSUIDs). Since 2026 Meta names every WhatsApp
//! user with one per business portfolio — an ISO country code, a dot, up
//! to 128 letters and digits (`US.13491208655302741918`; a parent
//! portfolio's has `ENT.` after the dot) — and for a user who adopts a
//! username it is the only id a webhook carries. Phone numbers are all
//! digits, so a string is never both.

/// Whether `s` is written as a BSUID (or a parent BSUID).
pub fn is_bsuid(s: &str) -> bool {
    let Some((country, rest)) = s.split_once('.') else { return false };
    let rest = rest.strip_prefix("ENT.").unwrap_or(rest);
    country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && (1..=128).contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The region a BSUID starts with (`US`), when `s` is one.
pub fn region(s: &str) -> Option<&str> {
    is_bsuid(s).then(|| &s[..2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsuids_are_told_from_phone_numbers() {
        // The forms in Meta's business-scoped user id documentation.
        assert!(is_bsuid("US.13491208655302741918"));
        assert!(is_bsuid("US.ENT.11815799212886844830"));
        assert!(is_bsuid("BR.aB3"));
        assert_eq!(region("BR.1349120865"), Some("BR"));
        for not in ["5511987654321", "+5511987654321", "us.1349", "USA.1349", "US.", "US.12-34", "US.ENT.", ""] {
            assert!(!is_bsuid(not), "{not}");
        }
        assert!(!is_bsuid(&format!("US.{}", "9".repeat(129))));
        assert!(is_bsuid(&format!("US.{}", "9".repeat(128))));
    }
}
