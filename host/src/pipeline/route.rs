//! Asking the tenant's router, with the safe fallback.

use std::time::Duration;

use super::{Pipeline, PipelineError};
use crate::crm::{DecisionOutcome, PluginRef};
use crate::model::RoutingDecision;
use crate::plugins::RouterInput;
use crate::tenants::Tenant;

pub(super) struct Routed {
    pub decision: RoutingDecision,
    pub outcome: DecisionOutcome,
    pub cause: Option<String>,
    pub fuel_used: u64,
    pub duration: Duration,
    pub plugin: Option<PluginRef>,
}

pub(super) fn route(p: &Pipeline, tenant: &Tenant, input: &RouterInput) -> Result<Routed, PipelineError> {
    let Some((report, plugin)) = p.ask(tenant, &input.context.contact.id, input)? else {
        let cause = "no router plugin is active".to_string();
        return Ok(Routed {
            decision: RoutingDecision::fallback(&cause),
            outcome: DecisionOutcome::Fallback,
            cause: Some(cause),
            fuel_used: 0,
            duration: Duration::ZERO,
            plugin: None,
        });
    };
    let (decision, outcome, cause) = match report.result {
        Ok(d) => (d, DecisionOutcome::Decided, None),
        Err(failure) => {
            let cause = failure.to_string();
            (RoutingDecision::fallback(&cause), DecisionOutcome::Fallback, Some(cause))
        }
    };
    Ok(Routed {
        decision,
        outcome,
        cause,
        fuel_used: report.fuel_used,
        duration: report.duration,
        plugin: Some(plugin),
    })
}
