"""Policy activities of the lifecycle: what the policy file says a joiner, mover or leaver gets
(implemented by activities/policy.py; run as local activities, the policy is in the worker)."""

from __future__ import annotations

from temporalio import activity

from domain.provisioning import (
    ActivityNames,
    JoinerPlan,
    JoinerPlanInput,
    LeaverPlan,
    LeaverPlanInput,
    MoverPlan,
    MoverPlanInput,
)

__all__ = ["resolve_joiner_plan", "resolve_leaver_plan", "resolve_mover_plan"]


@activity.defn(name=ActivityNames.RESOLVE_JOINER_PLAN)
async def resolve_joiner_plan(input: JoinerPlanInput) -> JoinerPlan:
    raise NotImplementedError


@activity.defn(name=ActivityNames.RESOLVE_LEAVER_PLAN)
async def resolve_leaver_plan(input: LeaverPlanInput) -> LeaverPlan:
    raise NotImplementedError


@activity.defn(name=ActivityNames.RESOLVE_MOVER_PLAN)
async def resolve_mover_plan(input: MoverPlanInput) -> MoverPlan:
    raise NotImplementedError
