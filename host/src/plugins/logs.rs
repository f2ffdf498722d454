//! Per tenant and world, the most recent lines plugins logged or printed.
//!
//! A bounded ring in memory: plugin logs are a debugging aid for tenant
//! developers, not an audit trail, and a chatty plugin must not grow the
//! host's memory or disk without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

use super::{LogLine, World};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogEntry {
    /// The plugin version (sha256) that wrote it.
    pub version: String,
    #[serde(flatten)]
    pub line: LogLine,
}

pub struct PluginLogs {
    capacity: usize,
    rings: Mutex<HashMap<(String, World), VecDeque<LogEntry>>>,
}

impl PluginLogs {
    pub fn new(capacity: usize) -> Self {
        PluginLogs { capacity, rings: Mutex::default() }
    }

    pub fn append(&self, tenant: &str, world: World, version: &str, lines: Vec<LogLine>) {
        if lines.is_empty() {
            return;
        }
        let Ok(mut rings) = self.rings.lock() else { return };
        let ring = rings.entry((tenant.to_string(), world)).or_default();
        for line in lines {
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(LogEntry { version: version.to_string(), line });
        }
    }

    /// The latest `limit` entries, oldest first.
    pub fn recent(&self, tenant: &str, world: World, limit: usize) -> Vec<LogEntry> {
        let Ok(rings) = self.rings.lock() else { return Vec::new() };
        rings
            .get(&(tenant.to_string(), world))
            .map(|r| r.iter().skip(r.len().saturating_sub(limit)).cloned().collect())
            .unwrap_or_default()
    }
}
