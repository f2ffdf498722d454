//! The follow-up world on the host side: how it is called, and the check
//! that a plan is one the host can carry out.

use wasmtime::Store;

use super::call::Call;
use super::router::{check_template, invalid, seed_of};
use super::runtime::Pre;
use super::sandbox::HostState;
use super::{Failure, FollowUpInput, World, v0_1, v0_2};
use crate::clock::{DAY, Millis};
use crate::config::PluginLimits;
use crate::model::{FollowUpAction, FollowUpPlan, PlanKind};

/// A follow-up further out than this is a mistake, not a plan.
const MAX_HORIZON: i64 = 90 * DAY;

impl Call for FollowUpInput {
    const WORLD: World = World::FollowUp;
    const SAMPLE: &'static str = include_str!("../../../examples/inputs/follow-up-unanswered.json");
    const OUTPUT: &'static str = "plan";
    type Output = FollowUpPlan;

    fn now(&self) -> Millis {
        self.context.now
    }

    fn seed(&self) -> u64 {
        seed_of(&self.context.tenant, &self.context.conversation.id)
    }

    fn call(&self, pre: &Pre, store: &mut Store<HostState>) -> wasmtime::Result<Result<FollowUpPlan, String>> {
        match pre {
            Pre::FollowUpV0_1(pre) => v0_1::plan_follow_up(pre, store, self),
            Pre::FollowUpV0_2(pre) => v0_2::plan_follow_up(pre, store, self),
            _ => Err(wasmtime::Error::msg("not a follow-up planner")),
        }
    }

    fn validate(&self, plan: FollowUpPlan, limits: &PluginLimits) -> Result<FollowUpPlan, Failure> {
        validate(plan, self.context.now, limits.output_bytes)
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
                template.name.len() + template.parameters.iter().map(|p| p.shown().len()).sum::<usize>()
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
