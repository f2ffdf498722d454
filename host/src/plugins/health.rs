//! A version's health: a failure-rate breaker over its recent calls, and
//! the contacts whose own messages keep making it fail.
//!
//! Consecutive failures alone miss a version that fails every other call,
//! and let any one contact take a tenant's plugin down by sending a few
//! messages it chokes on. So the breaker looks at the last `window` calls
//! of each version: once it has seen `min_failures` failures there and
//! they are at least `failure_rate` of the calls, the version is
//! suspended — unless the failures are one contact's, in which case only
//! that contact's decisions go to the fallback for a while (quarantine),
//! and everyone else keeps the version. Host faults (an overloaded
//! machine, no free instance slot) are counted apart and never trip it.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::Failure;
use crate::clock::Millis;

/// The breaker's settings (`plugins.*`).
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub window: usize,
    pub min_failures: u32,
    pub failure_rate: f64,
    /// Share of the window's failures from one contact that makes them
    /// that contact's problem rather than the version's.
    pub contact_share: f64,
    pub contact_quarantine: Duration,
}

impl From<&crate::config::PluginConfig> for BreakerConfig {
    fn from(c: &crate::config::PluginConfig) -> Self {
        BreakerConfig {
            window: c.breaker_window.max(1),
            min_failures: c.suspend_after.max(1),
            failure_rate: c.breaker_failure_rate.clamp(0.0, 1.0),
            contact_share: 0.6,
            contact_quarantine: c.contact_quarantine,
        }
    }
}

/// Calls and failures of one version since the host started.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[schema(as = VersionHealth)]
pub struct Health {
    pub calls: u64,
    /// Failures the plugin is to blame for.
    pub failures: u64,
    /// Calls the host could not run (overload, no slot): not the plugin's.
    pub host_faults: u64,
    /// In the breaker's window (the last `plugins.breaker_window` calls).
    pub window_calls: u32,
    pub window_failures: u32,
}

/// A contact whose messages keep failing one version: its decisions take
/// the fallback until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QuarantinedContact {
    pub contact_id: String,
    pub since: Millis,
    pub until: Millis,
    pub failures: u32,
    /// The last failure.
    pub cause: String,
}

/// What the breaker decided after a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Fine,
    /// Quarantine this contact (for this version).
    Quarantine(QuarantinedContact),
    /// Suspend the version: `failures` of the last `calls` failed.
    Suspend {
        failures: u32,
        calls: u32,
        cause: String,
    },
}

#[derive(Default)]
pub(super) struct VersionHealth {
    totals: Health,
    /// (failed, contact id) of the last calls, oldest first.
    recent: VecDeque<(bool, String)>,
    quarantined: HashMap<String, QuarantinedContact>,
}

impl VersionHealth {
    /// Records one call of `contact` and decides.
    pub(super) fn record(
        &mut self,
        config: &BreakerConfig,
        contact: &str,
        failure: Option<&Failure>,
        now: Millis,
    ) -> Verdict {
        match failure {
            Some(Failure::Host(_)) => {
                self.totals.host_faults += 1;
                return Verdict::Fine;
            }
            Some(f) if !f.blames_plugin() => return Verdict::Fine,
            _ => {}
        }
        self.totals.calls += 1;
        self.recent.push_back((failure.is_some(), contact.to_string()));
        while self.recent.len() > config.window.max(1) {
            self.recent.pop_front();
        }
        let Some(failure) = failure else { return Verdict::Fine };
        self.totals.failures += 1;
        let cause = failure.to_string();
        let mine = self.recent.iter().filter(|(f, c)| *f && c == contact).count() as u32;
        let failures = self.recent.iter().filter(|(f, _)| *f).count() as u32;
        if mine >= config.min_failures && f64::from(mine) >= config.contact_share * f64::from(failures) {
            // This contact's messages are the problem: set them aside and
            // judge the version on everyone else's.
            self.recent.retain(|(_, c)| c != contact);
            let q = QuarantinedContact {
                contact_id: contact.to_string(),
                since: now,
                until: now.saturating_add(config.contact_quarantine.as_millis() as i64),
                failures: mine,
                cause,
            };
            self.quarantined.insert(contact.to_string(), q.clone());
            return Verdict::Quarantine(q);
        }
        let calls = self.recent.len() as u32;
        if failures >= config.min_failures && f64::from(failures) >= config.failure_rate * f64::from(calls) {
            self.recent.clear();
            return Verdict::Suspend { failures, calls, cause };
        }
        Verdict::Fine
    }

    /// Whether `contact`'s decisions skip this version now.
    pub(super) fn quarantined(&mut self, contact: &str, now: Millis) -> Option<QuarantinedContact> {
        match self.quarantined.get(contact) {
            Some(q) if q.until > now => Some(q.clone()),
            Some(_) => {
                self.quarantined.remove(contact);
                None
            }
            None => None,
        }
    }

    pub(super) fn view(&self, now: Millis) -> (Health, Vec<QuarantinedContact>) {
        let mut h = self.totals;
        h.window_calls = self.recent.len() as u32;
        h.window_failures = self.recent.iter().filter(|(f, _)| *f).count() as u32;
        let mut q: Vec<_> = self.quarantined.values().filter(|q| q.until > now).cloned().collect();
        q.sort_by_key(|q| q.since);
        (h, q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            window: 20,
            min_failures: 5,
            failure_rate: 0.5,
            contact_share: 0.6,
            contact_quarantine: Duration::from_secs(3600),
        }
    }

    fn trap() -> Failure {
        Failure::Trap("unreachable".into())
    }

    #[test]
    fn a_version_failing_every_other_call_is_suspended() {
        let (c, mut h) = (config(), VersionHealth::default());
        let mut verdicts = Vec::new();
        for n in 0..40 {
            let contact = format!("ct{}", n % 7);
            verdicts.push(h.record(&c, &contact, (n % 2 == 0).then(trap).as_ref(), n));
        }
        assert!(verdicts.iter().any(|v| matches!(v, Verdict::Suspend { .. })), "{verdicts:?}");
        assert!(!verdicts.iter().any(|v| matches!(v, Verdict::Quarantine(_))));
    }

    #[test]
    fn one_contact_failing_is_quarantined_and_the_version_stays() {
        let (c, mut h) = (config(), VersionHealth::default());
        for n in 0..10 {
            assert_eq!(h.record(&c, &format!("good{n}"), None, n), Verdict::Fine);
        }
        let mut last = Verdict::Fine;
        for n in 0..5 {
            last = h.record(&c, "poison", Some(&trap()), 10 + n);
        }
        assert!(matches!(&last, Verdict::Quarantine(q) if q.contact_id == "poison" && q.failures == 5), "{last:?}");
        assert!(h.quarantined("poison", 20).is_some());
        assert!(h.quarantined("poison", 20 + 3_600_000).is_none(), "it ends");
        assert_eq!(h.record(&c, "good0", None, 30), Verdict::Fine);
    }

    #[test]
    fn host_faults_never_trip_it() {
        let (c, mut h) = (config(), VersionHealth::default());
        for n in 0..50 {
            assert_eq!(h.record(&c, &format!("ct{n}"), Some(&Failure::Host("overloaded".into())), n), Verdict::Fine);
        }
        assert_eq!(h.view(0).0.host_faults, 50);
        assert_eq!(h.view(0).0.calls, 0);
    }
}
