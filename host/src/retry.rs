//! How long to wait before trying again: one backoff for every retry loop,
//! and the server's own answer (`Retry-After`) when it gave one.

use std::time::{Duration, SystemTime};

use rand::RngExt;

/// Exponential backoff with "equal jitter" (AWS's name): attempt `n` waits
/// between half and all of `initial × 2ⁿ⁻¹`, capped at `max`. Half is kept
/// fixed so a retry never comes back at once, the other half is random so
/// many failing callers do not retry in step.
pub fn backoff(initial: Duration, attempt: u32, max: Duration) -> Duration {
    let doubled = initial.saturating_mul(1 << attempt.min(16).saturating_sub(1));
    doubled.min(max).mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP date,
/// as a wait from `now` (a date in the past means now).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_the_cap() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(60);
        for attempt in 1..=8u32 {
            let full = initial * 2u32.pow(attempt - 1);
            for _ in 0..50 {
                let wait = backoff(initial, attempt, max);
                assert!(wait >= full / 2 && wait <= full, "attempt {attempt}: {wait:?} outside {full:?}/2..={full:?}");
            }
        }
        assert!(backoff(initial, u32::MAX, max) <= max);
        assert!(backoff(initial, 0, max) <= initial);
    }

    /// The examples of RFC 9110 §10.2.3.
    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Fri, 31 Dec 1999 23:58:00 GMT").unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Fri, 31 Dec 1999 23:59:59 GMT", now), Some(Duration::from_secs(119)));
        assert_eq!(retry_after("Fri, 31 Dec 1999 23:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}
