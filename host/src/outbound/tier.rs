//! Meta's messaging limit (the number's "tier"): how many different people
//! it may start conversations with — a template outside their 24-hour
//! window — in a rolling 24 hours (250, 1K, 10K, 100K or unlimited). A
//! send past it waits in the queue until someone drops out of the window,
//! rather than be refused by Meta.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::{DAY, Millis};
use crate::store::{Batch, Result, Store, Tree, keys};

/// `phone-number id ␟ recipient` → when a conversation was last started.
const STARTED: Tree = Tree("outbound.conversations_started");

pub struct Tier {
    store: Store,
    /// Per number, the recipients started with in the last 24 hours.
    started: Mutex<HashMap<String, HashMap<String, Millis>>>,
}

impl Tier {
    pub fn new(store: Store) -> Tier {
        Tier { store, started: Mutex::default() }
    }

    /// Whether `number` may start a conversation with `to` now under
    /// `limit` (none: unlimited); if so it is counted. Someone already
    /// started with in the window does not count twice.
    pub fn admit(&self, number: &str, to: &str, limit: Option<u32>, now: Millis) -> Result<bool> {
        let Some(limit) = limit else { return Ok(true) };
        let mut all = self.started.lock().map_err(|_| crate::store::StoreError::Engine("tier lock poisoned".into()))?;
        if !all.contains_key(number) {
            all.insert(number.to_string(), self.load(number)?);
        }
        let started = all.entry(number.to_string()).or_default();
        let mut batch = Batch::new();
        started.retain(|recipient, at| {
            let keep = now - *at < DAY;
            if !keep {
                batch.delete(STARTED, keys::join(&[number.as_bytes(), recipient.as_bytes()]));
            }
            keep
        });
        let admitted = started.contains_key(to) || started.len() < limit as usize;
        if admitted {
            started.insert(to.to_string(), now);
            batch.put(STARTED, keys::join(&[number.as_bytes(), to.as_bytes()]), keys::ts(now).to_vec());
        }
        self.store.commit(batch)?;
        Ok(admitted)
    }

    fn load(&self, number: &str) -> Result<HashMap<String, Millis>> {
        let mut out = HashMap::new();
        for entry in self.store.scan_prefix(STARTED, &keys::prefix(&[number.as_bytes()]))? {
            let (k, v) = entry?;
            let recipient = String::from_utf8_lossy(keys::last_part(&k)).into_owned();
            out.insert(recipient, keys::read_ts(&v).unwrap_or_default());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_starts_with_at_most_its_limit_of_people_a_day() {
        let store = Store::in_memory();
        let tier = Tier::new(store.clone());
        for who in ["a", "b", "c"] {
            assert!(tier.admit("pn", who, Some(3), 1_000).unwrap());
        }
        assert!(!tier.admit("pn", "d", Some(3), 2_000).unwrap(), "a fourth person waits");
        assert!(tier.admit("pn", "a", Some(3), 2_000).unwrap(), "someone already counted does not count twice");
        assert!(tier.admit("other", "d", Some(3), 2_000).unwrap(), "limits are per number");
        assert!(tier.admit("pn", "d", None, 2_000).unwrap(), "no limit");
        // A restart reads who was counted; a day later b and c dropped out.
        let again = Tier::new(store);
        assert!(!again.admit("pn", "e", Some(3), 3_000).unwrap());
        assert!(again.admit("pn", "e", Some(3), 1_000 + DAY).unwrap());
        assert!(again.admit("pn", "f", Some(3), 1_000 + DAY).unwrap());
    }
}
