"""What PIM workflows ask of Graph: activate, deactivate and check a role for one person, and
keep their eligibility. One target type covers both kinds of privileged role:

- a directory role lives in `roleManagement/directory` (roleAssignmentScheduleRequests and
  roleEligibilityScheduleRequests, by `roleDefinitionId` = the role template id, scope "/");
- a privileged group lives in `identityGovernance/privilegedAccess/group` (assignment and
  eligibility schedule requests by `groupId` and `accessId` member | owner).

The activities (activities/pim/graph.py) look up before they write, so every call is safe to
retry: activating what is already active up to the asked end is success, and so is removing
what is already gone.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.holdings import ResourceKind, ResourceRef
from domain.pim.roles import GroupAccess, PrivilegedRole, RoleKind


class PimGraphActivityNames:
    ACTIVATE = "pim.activate_role"
    DEACTIVATE = "pim.deactivate_role"
    ACTIVE_ASSIGNMENT = "pim.active_assignment"
    ELIGIBILITY = "pim.eligibility"
    ASSIGN_ELIGIBILITY = "pim.assign_eligibility"
    REMOVE_ELIGIBILITY = "pim.remove_eligibility"


class RoleTarget(BaseModel):
    """Where a privileged role lives in Graph."""

    kind: RoleKind
    template_id: str | None = None  # a directory role's template id (= its roleDefinitionId)
    group: str | None = None  # a privileged group's display name
    access: GroupAccess = GroupAccess.MEMBER

    @classmethod
    def of(cls, role: PrivilegedRole) -> RoleTarget:
        return cls(
            kind=role.kind, template_id=role.template_id, group=role.group, access=role.access
        )

    @classmethod
    def of_resource(cls, resource: ResourceRef) -> RoleTarget | None:
        """The role a ledger resource names; None for anything that is not a privileged role."""
        if resource.kind is ResourceKind.DIRECTORY_ROLE:
            return cls(kind=RoleKind.DIRECTORY_ROLE, template_id=resource.target)
        if resource.kind is ResourceKind.PRIVILEGED_GROUP:
            access = GroupAccess(resource.role or GroupAccess.MEMBER.value)
            return cls(kind=RoleKind.PRIVILEGED_GROUP, group=resource.target, access=access)
        return None

    @property
    def resource(self) -> ResourceRef:
        """The role as the holdings ledger names it."""
        if self.kind is RoleKind.DIRECTORY_ROLE:
            assert self.template_id is not None
            return ResourceRef(kind=ResourceKind.DIRECTORY_ROLE, target=self.template_id)
        assert self.group is not None
        return ResourceRef(
            kind=ResourceKind.PRIVILEGED_GROUP, target=self.group, role=self.access.value
        )

    def describe(self) -> str:
        if self.kind is RoleKind.DIRECTORY_ROLE:
            return f"directory role {self.template_id}"
        return f"{self.access.value} of group {self.group}"


class ActivateRoleInput(BaseModel):
    principal_id: str  # the person's Graph user object id
    target: RoleTarget
    end: datetime  # the assignment expires by itself then, whatever Tenure does
    justification: str = Field("", max_length=500)
    ticket: str | None = None
    # Written into the request's justification so an auditor reading Graph finds the run.
    activation_id: str


class ActiveAssignment(BaseModel):
    """A role a person holds now, as Graph reports it (an instance of an assignment schedule)."""

    principal_id: str
    target: RoleTarget
    start: datetime | None = None
    end: datetime | None = None  # None: permanent
    # `adminAssign`/`selfActivate` made it, or it was there without a schedule (planted).
    assignment_type: str = "Assigned"  # Assigned | Activated


class DeactivateRoleInput(BaseModel):
    principal_id: str
    target: RoleTarget
    reason: str = Field("", max_length=500)


class DeactivateRoleResult(BaseModel):
    removed: bool  # False: it was already gone (expired, removed by someone else)


class ActiveAssignmentInput(BaseModel):
    principal_id: str
    target: RoleTarget


class EligibilityInput(BaseModel):
    principal_id: str
    target: RoleTarget


class GraphEligibility(BaseModel):
    """An eligibility schedule Graph holds for a person and a role."""

    principal_id: str
    target: RoleTarget
    start: datetime
    end: datetime | None = None  # None: permanent


class AssignEligibilityInput(BaseModel):
    principal_id: str
    target: RoleTarget
    start: datetime
    end: datetime | None = None  # None: permanent (only where the role allows it)
    justification: str = Field("", max_length=500)


class RemoveEligibilityInput(BaseModel):
    principal_id: str
    target: RoleTarget
    reason: str = Field("", max_length=500)
