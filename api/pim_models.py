"""Bodies and answers of the PIM endpoints (`/v1/pim`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.access_models import RequestSummary
from domain.access.request import RequestStatus
from domain.pim.alerts import PimAlert
from domain.pim.roles import PrivilegedRole, RoleKind
from domain.policy.values import Duration, describe_duration


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewActivation(_Body):
    role_id: str = Field(min_length=1, max_length=48, examples=["user-admin"])
    # Absent: the role's default. `2h`, `90m`, `1d` or ISO 8601 (`PT2H`).
    duration: Duration | None = Field(None, examples=["2h"])
    justification: str = Field("", max_length=500)
    ticket: str | None = Field(None, max_length=100)
    start: AwareDatetime | None = None  # absent: now


class ActivationAccepted(BaseModel):
    activation_id: str
    status: RequestStatus
    links: dict[str, str]


class ActivationList(BaseModel):
    activations: list[RequestSummary]
    count: int


class DeactivateBody(_Body):
    reason: str = Field("", max_length=2000)


class ExtendActivationBody(_Body):
    # The activation's whole new length from its start, or its new end; one of them.
    duration: Duration | None = None
    new_end: AwareDatetime | None = None
    justification: str = Field("", max_length=2000)


class NewEligibility(_Body):
    employee_id: str = Field(min_length=1, max_length=64)
    role_id: str = Field(min_length=1, max_length=48)
    until: AwareDatetime | None = None  # absent: the role's default expiry
    permanent: bool = False
    justification: str = Field("", max_length=2000)


class ExtendEligibilityBody(_Body):
    until: AwareDatetime | None = None
    permanent: bool = False
    justification: str = Field("", max_length=2000)


class RemoveEligibilityBody(_Body):
    reason: str = Field("", max_length=2000)


class RoleSummary(BaseModel):
    """A privileged role as people choose it: what activating it takes."""

    role_id: str
    display_name: str
    kind: RoleKind
    target: str
    max_activation: str
    default_activation: str
    require_mfa: bool
    require_justification: bool
    require_ticket: bool
    ticket_pattern: str | None
    approval: bool
    approval_window: str | None

    @classmethod
    def of(cls, role_id: str, role: PrivilegedRole) -> RoleSummary:
        return cls(
            role_id=role_id,
            display_name=role.display_name,
            kind=role.kind,
            target=role.template_id or f"{role.group} ({role.access.value})",
            max_activation=_shown(role.max_activation),
            default_activation=_shown(role.default_activation),
            require_mfa=role.require_mfa,
            require_justification=role.require_justification,
            require_ticket=role.ticket.required,
            ticket_pattern=role.ticket.pattern,
            approval=role.approval is not None,
            approval_window=_shown(role.approval.window) if role.approval else None,
        )


class EligibleRole(BaseModel):
    role: RoleSummary
    eligibility_id: str
    until: AwareDatetime | None


class EligibleRoles(BaseModel):
    eligible: list[EligibleRole]
    count: int


class EligibilityList(BaseModel):
    eligibilities: list[RequestSummary]
    count: int


def _shown(value: timedelta) -> str:
    return describe_duration(value)


class AlertList(BaseModel):
    alerts: list[PimAlert]
    count: int
