//! Phone numbers to E.164.

use phonenumber::country::Id;
use phonenumber::{Mode, PhoneNumber};

use super::IdentityError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// `+` and digits, e.g. `+5511987654321`.
    pub e164: String,
    /// ISO region, e.g. `BR`, when the number maps to one.
    pub region: Option<String>,
}

fn invalid(input: &str, reason: impl Into<String>) -> IdentityError {
    IdentityError::InvalidPhone { input: input.to_string(), reason: reason.into() }
}

fn to_phone(number: &PhoneNumber) -> Phone {
    Phone {
        e164: number.format().mode(Mode::E164).to_string(),
        region: number.country().id().map(|id| id.as_ref().to_string()),
    }
}

/// Normalises a number as a person or an old CRM wrote it: `+55 (11)
/// 98765-4321`, `0055 11 98765 4321`, `(11) 98765-4321` with region `BR`,
/// `+1 415 555 0100 ext. 7`. Extensions are dropped: WhatsApp has none.
pub fn normalize(raw: &str, default_region: &str) -> Result<Phone, IdentityError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid(raw, "empty"));
    }
    // `00` is the international prefix across most of the world; the parser
    // only knows it relative to a region, so make it explicit.
    let international = match trimmed.strip_prefix("00") {
        Some(rest) if !rest.starts_with('0') => format!("+{rest}"),
        _ => trimmed.to_string(),
    };
    let region = default_region.trim().to_ascii_uppercase().parse::<Id>().ok();
    let number = phonenumber::parse(region, &international).map_err(|e| invalid(raw, e.to_string()))?;
    if !number.is_valid() {
        return Err(invalid(raw, "not a valid number for its country"));
    }
    Ok(to_phone(&number))
}

/// A WhatsApp `wa_id` (digits, country code first, no `+`). WhatsApp has
/// already validated it, so a number the metadata calls invalid (e.g. a
/// Brazilian mobile without its ninth digit) is kept as `+digits` rather
/// than rejected.
pub fn normalize_wa_id(wa_id: &str) -> Result<Phone, IdentityError> {
    let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 || digits.len() > 15 {
        return Err(invalid(wa_id, "a wa_id has 7 to 15 digits"));
    }
    let plus = format!("+{digits}");
    match phonenumber::parse(None, &plus) {
        Ok(number) if number.is_valid() => Ok(to_phone(&number)),
        Ok(number) => Ok(Phone { e164: plus, region: number.country().id().map(|id| id.as_ref().to_string()) }),
        Err(_) => Ok(Phone { e164: plus, region: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_international_forms_agree() {
        let want = "+5511987654321";
        for raw in ["+55 (11) 98765-4321", "0055 11 98765 4321", "(11) 98765-4321", "11987654321", "+55.11.98765.4321"]
        {
            assert_eq!(normalize(raw, "BR").unwrap().e164, want, "{raw}");
        }
        assert_eq!(normalize_wa_id("5511987654321").unwrap().e164, want);
        assert_eq!(normalize_wa_id("5511987654321").unwrap().region.as_deref(), Some("BR"));
    }

    #[test]
    fn extensions_are_dropped_and_garbage_rejected() {
        assert_eq!(normalize("+1 415-555-0100 ext. 7", "US").unwrap().e164, "+14155550100");
        assert!(normalize("hello", "BR").is_err());
        assert!(normalize("", "BR").is_err());
        assert!(normalize_wa_id("12").is_err());
    }
}
