//! Phone numbers to E.164, and the key two writings of one line share.
//!
//! A leaf: identity resolves contacts with it, the CRM indexes them by it,
//! the API parses what staff type with it.

use phonenumber::country::Id;
use phonenumber::{Mode, PhoneNumber};

/// A number that cannot be read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a phone number: {reason}")]
pub struct InvalidPhone {
    /// The input, cut short (see [`invalid`]).
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// `+` and digits, e.g. `+5511987654321`, in its current form (a
    /// Brazilian mobile with its ninth digit, a Mexican one without `1`).
    pub e164: String,
    /// ISO region, e.g. `BR`, when the number maps to one.
    pub region: Option<String>,
}

impl Phone {
    /// The key two writings of the same line share (see [`match_key`]).
    pub fn match_key(&self) -> String {
        match_key(&self.e164)
    }
}

/// Rewrites the forms WhatsApp and old CRMs use for a number into its
/// current form:
///
/// - Brazil: mobiles gained a leading 9 in 2012–2016; `wa_id`s and old
///   records may still lack it. `+55 AA NNNN-NNNN` with a mobile first digit
///   (6–9) becomes `+55 AA 9NNNN-NNNN`. Landlines (2–5) are left alone.
/// - Mexico: the `1` after `+52` for mobiles was dropped in 2019; `wa_id`s
///   often keep it. `+52 1` + 10 digits becomes `+52` + 10 digits.
pub fn canonical(e164: &str) -> String {
    let digits = e164.trim_start_matches('+');
    if let Some(n) = digits.strip_prefix("55")
        && n.len() == 10
        && matches!(n.as_bytes()[2], b'6'..=b'9')
    {
        return format!("+55{}9{}", &n[..2], &n[2..]);
    }
    if let Some(n) = digits.strip_prefix("521")
        && n.len() == 10
    {
        return format!("+52{n}");
    }
    format!("+{digits}")
}

/// The identity of a line, for matching. Besides [`canonical`], Argentina:
/// mobiles are dialled internationally with a 9 after `+54` (`549…`, the
/// form of `wa_id`s) but stored by many CRMs without it, or in national
/// form with `15`; the subscriber number is the same, so the key drops the 9.
/// Nothing else is folded: numbers that merely look alike never share a key.
pub fn match_key(e164: &str) -> String {
    let c = canonical(e164);
    if let Some(n) = c.strip_prefix("+549")
        && n.len() == 10
    {
        return format!("+54{n}");
    }
    c
}

/// The error names the input, cut short: it reaches logs and API answers,
/// and a "number" can be any text a sender put there.
fn invalid(input: &str, reason: impl Into<String>) -> InvalidPhone {
    let mut shown: String = input.chars().take(32).collect();
    if shown.len() < input.len() {
        shown.push('…');
    }
    InvalidPhone { input: shown, reason: reason.into() }
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
///
/// As libphonenumber's `parse(text, region)` does, a number written
/// internationally — with `+`, `00`, or the region's own international
/// prefix (`011` in the US) — is read by its country code whatever the
/// region; only a number written nationally takes the region's. (The
/// `phonenumber` crate strips the *region's* national prefix from
/// international numbers too, turning `+49 1511…` read in the US into
/// `+49 511…`; such numbers are therefore parsed without a region.)
pub fn normalize(raw: &str, default_region: &str) -> Result<Phone, InvalidPhone> {
    let number = without_extension(raw.trim());
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(invalid(raw, if raw.trim().is_empty() { "empty" } else { "no digits" }));
    }
    if let Some(bad) = number.chars().find(|c| !is_part_of_number(*c)) {
        return Err(invalid(raw, format!("{bad:?} is not part of a phone number")));
    }
    let region = default_region.trim().to_ascii_uppercase().parse::<Id>().ok();
    let written = international_forms(number, region);
    if written.is_empty() {
        return parse_national(region, number).map_err(|why| invalid(raw, why));
    }
    // Where the prefix could be read two ways (Brazil's `00` + carrier
    // code vs a plain `00`), the reading that gives a valid number wins.
    let mut first_error = None;
    for plus in &written {
        match parse_valid(None, plus) {
            Ok(phone) => return Ok(phone),
            Err(why) => {
                first_error.get_or_insert(why);
            }
        }
    }
    Err(invalid(raw, first_error.unwrap_or_default()))
}

/// When `raw`, written nationally, reads as two valid numbers — the whole
/// number in `default_region` (what [`normalize`] keeps, as libphonenumber
/// does) and, its leading digits being the region's country code, the same
/// digits written internationally without their `+` — the warning that
/// says both. An import reports it rather than guess silently.
pub fn ambiguity(raw: &str, default_region: &str) -> Option<String> {
    let number = without_extension(raw.trim());
    let region = default_region.trim().to_ascii_uppercase().parse::<Id>().ok()?;
    if !international_forms(number, Some(region)).is_empty() {
        return None;
    }
    let code = phonenumber::metadata::DATABASE.by_id(region.as_ref())?.country_code().to_string();
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if !digits.starts_with(&code) {
        return None;
    }
    let national = parse_valid(None, &format!("+{code}{digits}")).ok()?;
    let international = parse_valid(None, &format!("+{digits}")).ok()?;
    (national.e164 != international.e164).then(|| {
        format!(
            "read as {} (a national number in {}); it could also be {} written without its +",
            national.e164, default_region, international.e164
        )
    })
}

/// Digits and what people write between them: spaces (any Unicode
/// space), `-`, `.`, `/`, brackets, and a leading `+` (or the full-width
/// `＋`).
fn is_part_of_number(c: char) -> bool {
    c.is_ascii_digit() || c.is_whitespace() || "+\u{ff0b}-‐‑‒–—.·/()[]".contains(c)
}

/// The number without its extension, as libphonenumber recognises them:
/// `;ext=7` (RFC 3966), `ext`/`ext.`/`extn`/`extension`, `x`, `#`, and the
/// Spanish and Portuguese `anexo`/`ramal`, each before the extension's
/// digits at the end. WhatsApp numbers have no extension, so it is dropped.
fn without_extension(text: &str) -> &str {
    const MARKERS: [&str; 9] = [";ext=", "extension", "extn", "ext.", "ext", "anexo", "ramal", "x", "#"];
    let lower = text.to_ascii_lowercase();
    let cut = MARKERS
        .iter()
        .filter_map(|m| lower.find(m).map(|at| (at, m.len())))
        .filter(|(at, len)| {
            let tail = lower[at + len..].trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '.');
            lower[..*at].chars().any(|c| c.is_ascii_digit())
                && (1..=7).contains(&tail.len())
                && tail.chars().all(|c| c.is_ascii_digit())
        })
        .map(|(at, _)| at)
        .min();
    match cut {
        Some(at) => text[..at].trim_end(),
        None => text,
    }
}

/// A number written nationally, read in `region` as libphonenumber's
/// `parse(text, region)` reads it: leading digits that equal the region's
/// country code are that code only if the whole number is not valid as a
/// national one (`maybeExtractCountryCode`). The `phonenumber` crate takes
/// them as the code first, so an Italian mobile written `391 234 5678`
/// (country code 39), an Indian `91234 56789` (91) or a Brazilian number in
/// area code 55 would be refused or read as another number; the whole
/// number is therefore tried first.
fn parse_national(region: Option<Id>, text: &str) -> Result<Phone, String> {
    let code = region.and_then(|r| phonenumber::metadata::DATABASE.by_id(r.as_ref())).map(|m| m.country_code());
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if let Some(code) = code.map(|c| c.to_string()).filter(|c| digits.starts_with(c.as_str()))
        && let Ok(whole) = parse_valid(None, &format!("+{code}{digits}"))
    {
        return Ok(whole);
    }
    parse_valid(region, text)
}

/// Parses and validates, bringing an outdated form (a Brazilian mobile
/// without its 9) up to date.
fn parse_valid(region: Option<Id>, text: &str) -> Result<Phone, String> {
    let number = phonenumber::parse(region, text).map_err(|e| e.to_string())?;
    if number.is_valid() {
        let phone = to_phone(&number);
        return Ok(Phone { e164: canonical(&phone.e164), ..phone });
    }
    let e164 = canonical(&number.format().mode(Mode::E164).to_string());
    match phonenumber::parse(None, &e164) {
        Ok(updated) if updated.is_valid() => Ok(to_phone(&updated)),
        _ => Err("not a valid number for its country".into()),
    }
}

/// The ways `text` reads as an internationally written number, each with a
/// leading `+`: `+…` as is; the region's international prefix (a regular
/// expression in libphonenumber's metadata, matched at the start of the
/// digits) or `00` replaced by `+`. Empty: a national number.
fn international_forms(text: &str, region: Option<Id>) -> Vec<String> {
    // Punctuation before the number (`(`, spaces) is not part of it.
    let Some(start) = text.find(|c: char| c.is_ascii_digit() || c == '+' || c == '\u{ff0b}') else {
        return Vec::new();
    };
    let text = &text[start..];
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    // Separators go: the crate reads `+1812-576-8426` as country code 1812.
    if text.starts_with(['+', '\u{ff0b}']) {
        return vec![format!("+{digits}")];
    }
    let region_idd = region
        .and_then(|r| phonenumber::metadata::DATABASE.by_id(r.as_ref()))
        .and_then(|meta| meta.international_prefix()?.find(&digits))
        .filter(|m| m.start() == 0 && m.end() > 0)
        .map(|m| m.end());
    let generic_idd = (digits.starts_with("00") && !digits.starts_with("000")).then_some(2);
    let mut forms: Vec<String> = Vec::new();
    for idd in [region_idd, generic_idd].into_iter().flatten() {
        let form = format!("+{}", &digits[idd..]);
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

/// A WhatsApp `wa_id` (digits, country code first, no `+`). WhatsApp has
/// already validated it, so a number the metadata calls invalid (e.g. a
/// Brazilian mobile without its ninth digit) is kept as `+digits` rather
/// than rejected.
///
/// Parsing with libphonenumber's metadata was a tenth of the pipeline's CPU
/// (every event is routed by its sender, then resolved), and senders repeat:
/// results are remembered (a pure function of the digits, so the memo can
/// only ever be stale by being absent).
pub fn normalize_wa_id(wa_id: &str) -> Result<Phone, InvalidPhone> {
    let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 || digits.len() > 15 {
        return Err(invalid(wa_id, "a wa_id has 7 to 15 digits"));
    }
    if let Some(known) = WA_IDS.lock().ok().and_then(|memo| memo.get(&digits).cloned()) {
        return Ok(known);
    }
    let phone = parse_wa_id(&digits);
    if let Ok(mut memo) = WA_IDS.lock() {
        if memo.len() >= WA_ID_MEMO {
            memo.clear();
        }
        memo.insert(digits, phone.clone());
    }
    Ok(phone)
}

/// Senders remembered at most; the memo starts over when full.
const WA_ID_MEMO: usize = 65_536;
static WA_IDS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, Phone>>> =
    std::sync::LazyLock::new(Default::default);

fn parse_wa_id(digits: &str) -> Phone {
    let plus = canonical(&format!("+{digits}"));
    match phonenumber::parse(None, &plus) {
        Ok(number) if number.is_valid() => to_phone(&number),
        Ok(number) => Phone { e164: plus, region: number.country().id().map(|id| id.as_ref().to_string()) },
        Err(_) => Phone { e164: plus, region: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `(region, written)` normalises to `e164`.
    fn reads_as(cases: &[(&str, &str, &str)]) {
        for (region, written, e164) in cases {
            let phone = normalize(written, region).unwrap_or_else(|e| panic!("{region} {written}: {e}"));
            assert_eq!(phone.e164, *e164, "{written} in {region}");
        }
    }

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
    fn whatsapp_quirks_reach_the_same_key() {
        let br = normalize_wa_id("551187654321").unwrap();
        assert_eq!(br.e164, "+5511987654321", "Brazilian wa_id without the ninth digit");
        assert_eq!(normalize_wa_id("5215512345678").unwrap().e164, "+525512345678", "Mexican 521");
        assert_eq!(
            normalize_wa_id("5491123456789").unwrap().match_key(),
            normalize("+54 11 2345-6789", "AR").unwrap().match_key()
        );
        // A Brazilian landline is not a mobile without its 9.
        assert_ne!(
            normalize("+55 11 3456-7890", "BR").unwrap().match_key(),
            normalize("+55 11 93456-7890", "BR").unwrap().match_key()
        );
    }

    /// libphonenumber's `parse(text, region)`: a number written with `+`,
    /// `00` or the region's international prefix keeps its own country
    /// code whatever the region; one written nationally takes the region's.
    #[test]
    fn international_writing_wins_over_the_region() {
        reads_as(&[
            ("US", "+4915112345678", "+4915112345678"),
            ("US", "+5511987654321", "+5511987654321"),
            ("US", "011 49 1511 2345678", "+4915112345678"),
            ("US", "(650) 253-0000", "+16502530000"),
            ("DE", "+1 650 253 0000", "+16502530000"),
            ("DE", "00 1 650 253 0000", "+16502530000"),
            ("DE", "0151 12345678", "+4915112345678"),
            ("BR", "+1 650 253 0000", "+16502530000"),
            ("BR", "0055 11 98765 4321", "+5511987654321"),
            ("GB", "+33 6 12 34 56 78", "+33612345678"),
            ("GB", "07400 123456", "+447400123456"),
            ("AU", "0011 1 650 253 0000", "+16502530000"),
            ("JP", "010 1 650 253 0000", "+16502530000"),
            ("IN", "+91 98765 43210", "+919876543210"),
            ("MX", "+52 1 55 1234 5678", "+525512345678"),
        ]);
    }

    /// libphonenumber reads leading digits equal to the region's country
    /// code as that code only when the whole number is not valid as a
    /// national one: an Italian mobile starting 39, an Indian one starting
    /// 91, a Brazilian number in area code 55 are national numbers.
    #[test]
    fn national_numbers_that_start_with_their_country_code_stay_national() {
        reads_as(&[
            ("IT", "391 234 5678", "+393912345678"),
            ("IT", "3912345678", "+393912345678"),
            ("IT", "312 345 6789", "+393123456789"),
            ("IN", "91234 56789", "+919123456789"),
            ("IN", "9123456789", "+919123456789"),
            ("BR", "(55) 99876-5432", "+5555998765432"),
            ("BR", "55 99876 5432", "+5555998765432"),
            // Not valid as a national number: the leading digits are the code.
            ("BR", "5511987654321", "+5511987654321"),
            ("IT", "39 06 1234 5678", "+390612345678"),
        ]);
    }

    /// Separators glued to the country code, and extensions in the forms
    /// libphonenumber accepts (RFC 3966 `;ext=`, `ext.`, `x`, `#`, `ramal`).
    /// A Berlin number written `49 30 12345678` (its country code without
    /// the `+`) is, for libphonenumber, also a valid German national
    /// number (`+49 4930 12345678`), which it prefers; so is Jakarta's `62
    /// 21 5551234` in Indonesia. Kept as libphonenumber reads them, and
    /// named as ambiguous.
    #[test]
    fn numbers_readable_two_ways_are_named() {
        for (written, region, kept, other) in [
            ("49 30 12345678", "DE", "+49493012345678", "+493012345678"),
            ("62 21 5551234", "ID", "+6262215551234", "+62215551234"),
        ] {
            assert_eq!(normalize(written, region).map(|p| p.e164), Ok(kept.to_string()));
            let warning = ambiguity(written, region).expect("ambiguous");
            assert!(warning.contains(kept) && warning.contains(other), "{warning}");
        }
        assert_eq!(ambiguity("+49 30 12345678", "DE"), None, "written internationally");
        assert_eq!(ambiguity("030 12345678", "DE"), None, "written nationally, not starting with 49");
        assert_eq!(ambiguity("(55) 99876-5432", "BR"), None, "+55 998765432 is not a valid number");
    }

    #[test]
    fn glued_separators_and_extensions() {
        reads_as(&[
            ("US", "+1812-576-8426", "+18125768426"),
            ("US", "+1(812)576-8426", "+18125768426"),
            ("US", "+18125768426;ext=12", "+18125768426"),
            ("US", "812-576-8426 x12", "+18125768426"),
            ("US", "812.576.8426 ext. 12", "+18125768426"),
            ("BR", "+55 11 98765-4321 ramal 3", "+5511987654321"),
            ("BR", "(11) 98765-4321 #12", "+5511987654321"),
            ("CL", "+56 2 2345 6789 anexo 4", "+56223456789"),
        ]);
        assert!(normalize("+1 812 576 8426 call me", "US").is_err(), "words are not an extension");
    }

    #[test]
    fn extensions_are_dropped_and_garbage_rejected() {
        assert_eq!(normalize("+1 650-253-0000 ext. 7", "US").unwrap().e164, "+16502530000");
        assert!(normalize("hello", "BR").is_err());
        assert!(normalize("", "BR").is_err());
        assert!(normalize_wa_id("12").is_err());
    }
}
