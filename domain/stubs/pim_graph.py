"""PIM's Graph activities (implemented by activities/pim/graph.py): activate, deactivate and check
a privileged role for one person, and keep their eligibility. Every one is safe to retry."""

from __future__ import annotations

from temporalio import activity

from domain.pim.graph import (
    ActivateRoleInput,
    ActiveAssignment,
    ActiveAssignmentInput,
    AssignEligibilityInput,
    DeactivateRoleInput,
    DeactivateRoleResult,
    EligibilityInput,
    GraphEligibility,
    PimGraphActivityNames,
    RemoveEligibilityInput,
)

__all__ = [
    "activate_role",
    "active_assignment",
    "assign_eligibility",
    "deactivate_role",
    "eligibility",
    "remove_eligibility",
]


@activity.defn(name=PimGraphActivityNames.ACTIVATE)
async def activate_role(input: ActivateRoleInput) -> ActiveAssignment:
    raise NotImplementedError


@activity.defn(name=PimGraphActivityNames.DEACTIVATE)
async def deactivate_role(input: DeactivateRoleInput) -> DeactivateRoleResult:
    raise NotImplementedError


@activity.defn(name=PimGraphActivityNames.ACTIVE_ASSIGNMENT)
async def active_assignment(input: ActiveAssignmentInput) -> ActiveAssignment | None:
    raise NotImplementedError


@activity.defn(name=PimGraphActivityNames.ELIGIBILITY)
async def eligibility(input: EligibilityInput) -> GraphEligibility | None:
    raise NotImplementedError


@activity.defn(name=PimGraphActivityNames.ASSIGN_ELIGIBILITY)
async def assign_eligibility(input: AssignEligibilityInput) -> GraphEligibility:
    raise NotImplementedError


@activity.defn(name=PimGraphActivityNames.REMOVE_ELIGIBILITY)
async def remove_eligibility(input: RemoveEligibilityInput) -> DeactivateRoleResult:
    raise NotImplementedError
