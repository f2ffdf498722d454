//! Business hours: `mon-fri 09:00-18:00; sat 10:00-14:00`.

use switchboard_plugin::router::LocalTime;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEK: u32 = 7 * 24 * 60;

/// Open intervals as minutes since Monday 00:00, local time.
pub struct BusinessHours(Vec<(u32, u32)>);

impl BusinessHours {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut open = Vec::new();
        for range in spec.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (days, times) =
                range.split_once(' ').ok_or_else(|| format!("\"{range}\": expected e.g. \"mon-fri 09:00-18:00\""))?;
            let (first, last) = match days.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None => (day(days)?, day(days)?),
            };
            let (start, end) =
                times.trim().split_once('-').ok_or_else(|| format!("\"{times}\": expected e.g. \"09:00-18:00\""))?;
            let (start, end) = (minute(start)?, minute(end)?);
            if end <= start {
                return Err(format!("\"{times}\": closing time must be after opening time"));
            }
            let mut d = first;
            loop {
                open.push((d * 1440 + start, d * 1440 + end));
                if d == last {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        Ok(BusinessHours(open))
    }

    pub fn is_open(&self, now: &LocalTime) -> bool {
        let t = week_minute(now);
        self.0.iter().any(|&(a, b)| a <= t && t < b)
    }

    /// Minutes until the next opening; `None` if never open.
    pub fn minutes_until_open(&self, now: &LocalTime) -> Option<u64> {
        let t = week_minute(now);
        self.0.iter().map(|&(a, _)| u64::from((a + WEEK - t) % WEEK)).min()
    }
}

fn week_minute(now: &LocalTime) -> u32 {
    u32::from(now.weekday.min(6)) * 1440 + u32::from(now.minute_of_day.min(1439))
}

fn day(s: &str) -> Result<u32, String> {
    let s = s.trim().to_lowercase();
    DAYS.iter()
        .position(|d| s.starts_with(d))
        .map(|p| p as u32)
        .ok_or_else(|| format!("\"{s}\" is not a day (mon … sun)"))
}

fn minute(s: &str) -> Result<u32, String> {
    let (h, m) = s.trim().split_once(':').ok_or_else(|| format!("\"{s}\": expected HH:MM"))?;
    let h: u32 = h.parse().map_err(|_| format!("\"{s}\": bad hour"))?;
    let m: u32 = m.parse().map_err(|_| format!("\"{s}\": bad minute"))?;
    if h > 24 || m > 59 || (h == 24 && m > 0) {
        return Err(format!("\"{s}\" is not a time of day"));
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(weekday: u8, h: u16, m: u16) -> LocalTime {
        LocalTime { utc_offset_minutes: 0, weekday, minute_of_day: h * 60 + m }
    }

    #[test]
    fn weekdays_nine_to_six() {
        let hours = BusinessHours::parse("mon-fri 09:00-18:00").unwrap();
        assert!(hours.is_open(&at(0, 9, 0)));
        assert!(!hours.is_open(&at(0, 18, 0)));
        assert!(!hours.is_open(&at(5, 12, 0)));
        assert_eq!(hours.minutes_until_open(&at(4, 18, 0)), Some(63 * 60));
    }

    #[test]
    fn wraps_and_rejects() {
        let hours = BusinessHours::parse("sat-mon 10:00-12:00").unwrap();
        assert!(hours.is_open(&at(6, 11, 0)));
        assert!(BusinessHours::parse("mon 18:00-09:00").is_err());
        assert!(BusinessHours::parse("funday 09:00-10:00").is_err());
    }
}
