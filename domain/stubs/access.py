"""Access-request activities (implemented by activities/access/requests.py and activities/policy.py)."""

from __future__ import annotations

from temporalio import activity

from domain.access.request import (
    AccessActivityNames,
    AccessPlan,
    AccessPlanInput,
    Beneficiary,
    BeneficiaryInput,
    NotifyInput,
    NotifyResult,
    ReleaseInput,
    ReserveInput,
)
from domain.approval.contract import ResolveApproversInput, ResolvedApprovers
from domain.holdings import Release
from domain.lifecycle.identity import ReserveAccessResult

__all__ = [
    "load_beneficiary",
    "notify",
    "release",
    "reserve",
    "resolve_access_plan",
    "resolve_approvers",
]


@activity.defn(name=AccessActivityNames.RESOLVE_ACCESS_PLAN)
async def resolve_access_plan(input: AccessPlanInput) -> AccessPlan:
    raise NotImplementedError


@activity.defn(name=AccessActivityNames.LOAD_BENEFICIARY)
async def load_beneficiary(input: BeneficiaryInput) -> Beneficiary:
    raise NotImplementedError


@activity.defn(name=AccessActivityNames.RESERVE)
async def reserve(input: ReserveInput) -> ReserveAccessResult:
    raise NotImplementedError


@activity.defn(name=AccessActivityNames.RELEASE)
async def release(input: ReleaseInput) -> Release:
    raise NotImplementedError


@activity.defn(name=AccessActivityNames.RESOLVE_APPROVERS)
async def resolve_approvers(input: ResolveApproversInput) -> ResolvedApprovers:
    raise NotImplementedError


@activity.defn(name=AccessActivityNames.NOTIFY)
async def notify(input: NotifyInput) -> NotifyResult:
    raise NotImplementedError
