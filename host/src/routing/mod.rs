//! Routing: what the tenant's router decided, or the safe fallback when it
//! could not decide, and acting on it under the host's rules ([`act`]).
//!
//! The call itself is the pipeline's (`Pipeline::ask`, the same for every
//! world); this stage is pure, so its rules are tested without a store or
//! a sandbox.

pub mod act;

use std::time::Duration;

use crate::crm::{DecisionOutcome, PluginRef};
use crate::model::RoutingDecision;
use crate::plugins::CallReport;

/// A routing decision with where it came from, for the decision record.
pub struct Routed {
    pub decision: RoutingDecision,
    pub outcome: DecisionOutcome,
    /// Why the fallback was used, when it was.
    pub cause: Option<String>,
    pub fuel_used: u64,
    pub duration: Duration,
    pub plugin: Option<PluginRef>,
}

impl Routed {
    /// The router's answer, or the fallback (a person handles the message)
    /// when no router is active or it failed.
    pub fn from_answer(answer: Option<(CallReport<RoutingDecision>, PluginRef)>) -> Routed {
        let Some((report, plugin)) = answer else {
            let cause = "no router plugin is active".to_string();
            return Routed {
                decision: RoutingDecision::fallback(&cause),
                outcome: DecisionOutcome::Fallback,
                cause: Some(cause),
                fuel_used: 0,
                duration: Duration::ZERO,
                plugin: None,
            };
        };
        let (decision, outcome, cause) = match report.result {
            Ok(d) => (d, DecisionOutcome::Decided, None),
            Err(failure) => {
                let cause = failure.to_string();
                (RoutingDecision::fallback(&cause), DecisionOutcome::Fallback, Some(cause))
            }
        };
        Routed {
            decision,
            outcome,
            cause,
            fuel_used: report.fuel_used,
            duration: report.duration,
            plugin: Some(plugin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Handler;
    use crate::plugins::Failure;

    #[test]
    fn no_router_or_a_failed_one_hands_the_message_to_a_person() {
        let none = Routed::from_answer(None);
        assert_eq!(none.outcome, DecisionOutcome::Fallback);
        assert!(none.plugin.is_none());
        assert!(matches!(none.decision.handler, Handler::Human { .. }), "{:?}", none.decision.handler);

        let plugin =
            PluginRef { world: "router".into(), version: "v".into(), wit_version: "0.1.0".into(), builtin: None };
        let failed = CallReport::skipped(Failure::ContactQuarantined("five failures".into()));
        let routed = Routed::from_answer(Some((failed, plugin)));
        assert_eq!(routed.outcome, DecisionOutcome::Fallback);
        assert!(routed.cause.as_deref().is_some_and(|c| c.contains("five failures")));
        assert!(matches!(routed.decision.handler, Handler::Human { .. }));
    }
}
