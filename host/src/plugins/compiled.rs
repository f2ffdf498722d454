//! Compiled versions kept in memory, least recently used first out.
//!
//! Each compiled component holds its machine code (a JavaScript one tens
//! of MB). Kept for ever, a few dozen uploads took a server from 160 MB to
//! 1.7 GB. This cache holds them under a byte budget
//! (`plugins.compiled_cache_bytes`); an evicted version is reloaded from the
//! on-disk compile cache (a millisecond) when it is needed again. Versions
//! a tenant runs stay in memory whatever the budget: the registry's active
//! map holds them.

use std::collections::HashMap;

use super::Plugin;

pub(super) struct Compiled {
    entries: HashMap<String, Entry>,
    used: usize,
    budget: usize,
    clock: u64,
}

struct Entry {
    plugin: Plugin,
    bytes: usize,
    last_used: u64,
}

impl Compiled {
    pub(super) fn new(budget: usize) -> Self {
        Compiled { entries: HashMap::new(), used: 0, budget, clock: 0 }
    }

    pub(super) fn get(&mut self, hash: &str) -> Option<Plugin> {
        self.clock += 1;
        let entry = self.entries.get_mut(hash)?;
        entry.last_used = self.clock;
        Some(entry.plugin.clone())
    }

    pub(super) fn insert(&mut self, plugin: Plugin) {
        self.clock += 1;
        let bytes = plugin.code_bytes();
        let hash = plugin.meta.hash.clone();
        if let Some(old) = self.entries.insert(hash, Entry { plugin, bytes, last_used: self.clock }) {
            self.used -= old.bytes;
        }
        self.used += bytes;
        while self.used > self.budget && self.entries.len() > 1 {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.used -= e.bytes;
                tracing::debug!(version = %oldest, bytes = e.bytes, "compiled version evicted from memory");
            }
        }
    }

    /// Bytes of compiled code held.
    pub(super) fn used(&self) -> usize {
        self.used
    }
}
