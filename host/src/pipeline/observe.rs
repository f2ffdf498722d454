//! What every plugin call leaves behind, whatever its world: latency and
//! failure metrics, the plugin's log lines, and its health record.

use super::{Pipeline, PipelineError};
use crate::crm::PluginRef;
use crate::metrics::labels;
use crate::plugins::{Call, CallReport, Failure, Plugin, World};
use crate::tenants::Tenant;

/// A plugin's answer, and which version gave it.
pub(super) type Asked<T> = (CallReport<T>, PluginRef);

impl Pipeline {
    /// Asks the tenant's active plugin of `C`'s world about `input`, with
    /// the tenant's limits and settings, and records the call. `None` when
    /// the tenant has no plugin of that world; the report's error, when the
    /// caller must fall back.
    pub(super) fn ask<C: Call>(
        &self,
        tenant: &Tenant,
        contact_id: &str,
        input: &C,
    ) -> Result<Option<Asked<C::Output>>, PipelineError> {
        let s = &self.stages;
        let Some(plugin) = s.plugins.active(&tenant.id, C::WORLD) else { return Ok(None) };
        let limits = tenant.limits.clone().unwrap_or_else(|| s.config.plugins.limits.clone());
        let config = s.plugins.config(&tenant.id, C::WORLD)?;
        let now = input.now();
        let mut report = self.call_plugin(&tenant.id, &plugin, contact_id, now, || {
            let span = tracing::info_span!("plugin", world = %C::WORLD, plugin_version = %&plugin.meta.hash[..12]);
            let _e = span.enter();
            s.plugins.runtime().call(&plugin, &limits, config, input)
        });
        let plugin_ref = self.observe(&tenant.id, &plugin, contact_id, &mut report, now);
        Ok(Some((report, plugin_ref)))
    }

    /// Makes `call` to `plugin` about `contact_id`, unless that contact is
    /// quarantined for the plugin (its messages kept making it fail): then
    /// the call is skipped and the caller falls back, saying why.
    pub(super) fn call_plugin<T>(
        &self,
        tenant: &str,
        plugin: &Plugin,
        contact_id: &str,
        now: i64,
        call: impl FnOnce() -> CallReport<T>,
    ) -> CallReport<T> {
        match self.stages.plugins.contact_quarantined(tenant, &plugin.meta, contact_id, now) {
            Some(q) => CallReport::skipped(Failure::ContactQuarantined(format!(
                "this contact's messages made the version fail {} times (last: {}); it skips the version until {}",
                q.failures, q.cause, q.until
            ))),
            None => call(),
        }
    }

    /// Records `report` and returns the plugin reference for the record.
    pub(super) fn observe<T>(
        &self,
        tenant: &str,
        plugin: &Plugin,
        contact_id: &str,
        report: &mut CallReport<T>,
        now: i64,
    ) -> PluginRef {
        let s = &self.stages;
        let world = plugin.meta.world;
        let version = &plugin.meta.hash;
        s.metrics
            .plugin_call_seconds
            .get_or_create(&labels::World { world: world.as_str() })
            .observe(report.duration.as_secs_f64());
        s.plugins.logs.append(tenant, world, version, std::mem::take(&mut report.logs));
        s.plugins.record_outcome(tenant, &plugin.meta, contact_id, report.result.as_ref().err(), now);
        let outcome = if report.result.is_ok() { "decided" } else { "fallback" };
        s.metrics.decisions.get_or_create(&labels::Decision { world: world.as_str(), outcome }).inc();
        if let Err(failure) = &report.result {
            tracing::warn!(%world, cause = %failure, "plugin failed; applying the fallback");
            s.metrics
                .plugin_failures
                .get_or_create(&labels::PluginFailure {
                    tenant: tenant.to_string(),
                    world: world.as_str(),
                    version: version[..12].to_string(),
                    kind: failure.kind(),
                })
                .inc();
            s.metrics.fallbacks.get_or_create(&labels::Fallback { world: world.as_str(), cause: failure.kind() }).inc();
        }
        PluginRef {
            world: World::as_str(world).to_string(),
            version: version.clone(),
            wit_version: plugin.meta.wit_version.clone(),
            builtin: plugin.meta.builtin.clone(),
        }
    }
}
