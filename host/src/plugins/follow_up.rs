//! The follow-up world on the host side: call, then check the plan is one
//! the host can carry out.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::router::{check_template, invalid, seed_of};
use super::runtime::Pre;
use super::{CallReport, Failure, Plugin, Runtime, v0_1};
use crate::clock::DAY;
use crate::config::PluginLimits;
use crate::model::{FollowUpAction, FollowUpInput, FollowUpPlan, PlanKind};

/// A follow-up further out than this is a mistake, not a plan.
const MAX_HORIZON: i64 = 90 * DAY;

impl Runtime {
    pub fn plan_follow_up(
        &self,
        plugin: &Plugin,
        limits: &PluginLimits,
        config: Arc<BTreeMap<String, String>>,
        input: &FollowUpInput,
    ) -> CallReport<FollowUpPlan> {
        let seed = seed_of(&input.context.tenant, &input.context.conversation.id);
        let now = input.context.now;
        let report = self.invoke(limits, config, now, seed, |store| match &*plugin.pre {
            Pre::FollowUpV0_1(pre) => v0_1::plan_follow_up(pre, store, input),
            _ => Err(wasmtime::Error::msg(format!("a {} plugin cannot plan follow-ups", plugin.meta.world))),
        });
        report.map(|plan| validate(plan, now, limits.output_bytes))
    }
}

pub fn validate(plan: FollowUpPlan, now: i64, output_cap: usize) -> Result<FollowUpPlan, Failure> {
    if plan.reason.len() > 1024 {
        return Err(invalid("reason is longer than 1024 bytes"));
    }
    if let PlanKind::Schedule { follow_up } = &plan.kind {
        if follow_up.at > now.saturating_add(MAX_HORIZON) {
            return Err(invalid("a follow-up is scheduled more than 90 days ahead"));
        }
        let size = match &follow_up.action {
            FollowUpAction::SendText { body } => {
                if body.trim().is_empty() || body.chars().count() > 4096 {
                    return Err(invalid("a follow-up text must be 1–4096 characters"));
                }
                body.len()
            }
            FollowUpAction::SendTemplate { template } => {
                check_template(template)?;
                template.name.len() + template.parameters.iter().map(String::len).sum::<usize>()
            }
            FollowUpAction::NotifyAssignee { note } => {
                if note.len() > 1024 {
                    return Err(invalid("a note is longer than 1024 bytes"));
                }
                note.len()
            }
            FollowUpAction::CloseConversation => 0,
        };
        if size + plan.reason.len() > output_cap {
            return Err(invalid(format!("the plan is {} bytes; the cap is {output_cap}", size + plan.reason.len())));
        }
    }
    Ok(plan)
}
