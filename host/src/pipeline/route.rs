//! Asking the tenant's router, with the safe fallback.

use std::time::Duration;

use super::{Pipeline, PipelineError};
use crate::context::Context;
use crate::crm::{DecisionOutcome, Message, PluginRef};
use crate::model::RoutingDecision;
use crate::plugins::World;
use crate::tenants::Tenant;

pub(super) struct Routed {
    pub decision: RoutingDecision,
    pub outcome: DecisionOutcome,
    pub cause: Option<String>,
    pub fuel_used: u64,
    pub duration: Duration,
    pub plugin: Option<PluginRef>,
}

pub(super) fn route(
    p: &Pipeline,
    tenant: &Tenant,
    context: &Context,
    message: &Message,
) -> Result<Routed, PipelineError> {
    let s = &p.stages;
    let Some(plugin) = s.plugins.active(&tenant.id, World::Router) else {
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
    let limits = tenant.limits.clone().unwrap_or_else(|| s.config.plugins.limits.clone());
    let config = s.plugins.config(&tenant.id, World::Router)?;
    let contact = &context.contact.id;
    let mut report = p.call_plugin(&tenant.id, &plugin, contact, context.now, || {
        let span = tracing::info_span!("route", plugin_version = %&plugin.meta.hash[..12]);
        let _e = span.enter();
        s.plugins.runtime().route(&plugin, &limits, config, context, message)
    });
    let plugin_ref = p.observe(&tenant.id, &plugin, contact, &mut report, context.now);
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
        plugin: Some(plugin_ref),
    })
}
