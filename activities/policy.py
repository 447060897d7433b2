"""Policy activities: hand workflows what the policy file says (docs/architecture.md, rule 6)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.access.plan import UnknownPackage, access_plan
from domain.access.request import AccessActivityNames, AccessPlan, AccessPlanInput
from domain.lifecycle.birthright import joiner_plan, leaver_plan, mover_plan
from domain.pim.activation import PimActivityNames, ResolvedRole, ResolveRoleInput
from domain.pim.plan import UnknownRole, resolved_role
from domain.policy.model import Policy
from domain.provisioning import (
    ActivityNames,
    JoinerPlan,
    JoinerPlanInput,
    LeaverPlan,
    LeaverPlanInput,
    MoverPlan,
    MoverPlanInput,
)


class PolicyActivities:
    """Holds the policy validated at worker start; workflows receive it only through results."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    @activity.defn(name=ActivityNames.RESOLVE_JOINER_PLAN)
    async def resolve_joiner_plan(self, input: JoinerPlanInput) -> JoinerPlan:
        return joiner_plan(self._policy, input.worker)

    @activity.defn(name=ActivityNames.RESOLVE_LEAVER_PLAN)
    async def resolve_leaver_plan(self, input: LeaverPlanInput) -> LeaverPlan:
        return leaver_plan(self._policy)

    @activity.defn(name=ActivityNames.RESOLVE_MOVER_PLAN)
    async def resolve_mover_plan(self, input: MoverPlanInput) -> MoverPlan:
        return mover_plan(self._policy, input.worker)

    @activity.defn(name=AccessActivityNames.RESOLVE_ACCESS_PLAN)
    async def resolve_access_plan(self, input: AccessPlanInput) -> AccessPlan:
        try:
            return access_plan(self._policy, input.package_id)
        except UnknownPackage as err:
            # The policy changed since the request was accepted: no retry will bring it back.
            raise ApplicationError(str(err), type="UnknownPackage", non_retryable=True) from None

    @activity.defn(name=PimActivityNames.RESOLVE_ROLE)
    async def resolve_pim_role(self, input: ResolveRoleInput) -> ResolvedRole:
        try:
            return resolved_role(self._policy, input.role_id)
        except UnknownRole as err:
            raise ApplicationError(str(err), type="UnknownRole", non_retryable=True) from None
