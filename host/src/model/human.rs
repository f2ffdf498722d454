//! What people set on records to stop automation. These live here, below
//! the CRM records that carry them and the control stage that sets them,
//! so neither has to import the other.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Millis;

/// Automation stopped by a person, optionally until a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Pause {
    /// Staff member who paused.
    pub by: String,
    pub at: Millis,
    /// Resumes on its own at this time; `None` until resumed.
    pub until: Option<Millis>,
    pub reason: Option<String>,
}

impl Pause {
    pub fn active(&self, now: Millis) -> bool {
        self.until.is_none_or(|u| now < u)
    }
}

/// A staff member answering in person; automation stays off until release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Takeover {
    pub staff: String,
    pub at: Millis,
}
