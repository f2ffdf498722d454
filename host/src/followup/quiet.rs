//! Quiet hours in the contact's own local time.

use chrono::{TimeZone, Timelike};

use crate::clock::{MINUTE, Millis};
use crate::crm::Contact;

/// `21:00-08:00`: no follow-up goes out between these local times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: u32,
    end: u32,
}

impl QuietHours {
    pub const DEFAULT: &str = "21:00-08:00";

    pub fn parse(spec: &str) -> Option<QuietHours> {
        let (a, b) = spec.trim().split_once('-')?;
        let minute = |s: &str| -> Option<u32> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        Some(QuietHours { start: minute(a)?, end: minute(b)? })
    }

    fn quiet_at(&self, minute: u32) -> bool {
        if self.start <= self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// If `at` falls in quiet hours in `tz`, when they end; else `None`.
    pub fn ends_after(&self, at: Millis, tz: chrono_tz::Tz) -> Option<Millis> {
        let local = tz.timestamp_millis_opt(at).earliest()?;
        let minute = local.hour() * 60 + local.minute();
        if !self.quiet_at(minute) {
            return None;
        }
        let wait = (self.end + 24 * 60 - minute) % (24 * 60);
        // Land on the minute the quiet hours end.
        Some(
            at + i64::from(wait) * MINUTE
                - i64::from(local.second()) * 1000
                - i64::from(local.timestamp_subsec_millis()),
        )
    }
}

/// The contact's timezone: their own setting, else the main timezone of
/// their phone number's country, else `fallback` (the tenant's).
pub fn contact_timezone(contact: &Contact, fallback: chrono_tz::Tz) -> chrono_tz::Tz {
    if let Some(tz) = contact.timezone.as_deref().and_then(|t| t.parse().ok()) {
        return tz;
    }
    let by_country = match contact.country.as_deref() {
        Some("BR") => "America/Sao_Paulo",
        Some("MX") => "America/Mexico_City",
        Some("AR") => "America/Argentina/Buenos_Aires",
        Some("CL") => "America/Santiago",
        Some("CO") => "America/Bogota",
        Some("PE") => "America/Lima",
        Some("VE") => "America/Caracas",
        Some("EC") => "America/Guayaquil",
        Some("UY") => "America/Montevideo",
        Some("PY") => "America/Asuncion",
        Some("BO") => "America/La_Paz",
        Some("US") => "America/New_York",
        Some("CA") => "America/Toronto",
        Some("GB") => "Europe/London",
        Some("IE") => "Europe/Dublin",
        Some("ES") => "Europe/Madrid",
        Some("PT") => "Europe/Lisbon",
        Some("FR") => "Europe/Paris",
        Some("DE") => "Europe/Berlin",
        Some("IT") => "Europe/Rome",
        Some("NL") => "Europe/Amsterdam",
        Some("IN") => "Asia/Kolkata",
        Some("ID") => "Asia/Jakarta",
        Some("NG") => "Africa/Lagos",
        Some("ZA") => "Africa/Johannesburg",
        Some("EG") => "Africa/Cairo",
        Some("TR") => "Europe/Istanbul",
        Some("SA") => "Asia/Riyadh",
        Some("AE") => "Asia/Dubai",
        _ => return fallback,
    };
    by_country.parse().unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overnight_quiet_hours_end_in_the_morning() {
        let q = QuietHours::parse("21:00-08:00").unwrap();
        let sp = chrono_tz::America::Sao_Paulo;
        // 2026-11-23 23:30 in São Paulo = 02:30 UTC next day.
        let late = 1_795_487_400_000;
        let end = q.ends_after(late, sp).unwrap();
        assert_eq!(end - late, 8 * 60 * MINUTE + 30 * MINUTE, "08:00 local");
        // 14:00 local is not quiet.
        assert_eq!(q.ends_after(1_795_453_200_000, sp), None);
        assert!(QuietHours::parse("25:00-08:00").is_none());
    }
}
