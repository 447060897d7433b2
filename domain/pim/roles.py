"""Privileged roles as the policy file writes them (`pim:`): Entra directory roles by template id,
or privileged groups (member or owner), each with its activation settings.

Validated at load with the path and the reason (docs/architecture.md, rule 6): a default longer
than the maximum, a ticket pattern that does not compile, approval required with no stage, an
eligibility expiry the role's own settings forbid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from domain.approval.stages import ApprovalStage, ApproverSource
from domain.policy.values import Duration, NonEmpty, describe_duration

RoleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# An activation lasts at most this long whatever a role says (Entra allows 24 h; bounded is the
# rule, the bound is the organisation's).
MAX_ACTIVATION = timedelta(days=7)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleKind(StrEnum):
    DIRECTORY_ROLE = "directory_role"  # an Entra role, by its template id
    PRIVILEGED_GROUP = "privileged_group"  # PIM for groups: membership or ownership


class GroupAccess(StrEnum):
    MEMBER = "member"
    OWNER = "owner"


class TicketSettings(_Strict):
    required: bool = False
    # The ticket number must match this (a full match), e.g. "INC-[0-9]{4,}".
    pattern: str | None = None
    # Checked against a ticketing endpoint as well (its URL and token come from the environment,
    # TENURE_TICKETS_URL / _TOKEN, never the file).
    verify: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"pattern {value!r} does not compile: {err}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TicketSettings:
        if (self.pattern or self.verify) and not self.required:
            raise ValueError("a ticket pattern or check needs required: true")
        return self


class ApprovalSettings(_Strict):
    stages: list[ApprovalStage] = Field(min_length=1)
    # How long approvers have, from the request, before it lapses (Entra fixes it at 24 h).
    window: Duration = timedelta(hours=24)


class EligibilityExpiryKind(StrEnum):
    NEVER = "never"
    DURATION = "duration"  # this long after it is assigned
    DATE = "date"  # on this date


class EligibilityExpiry(_Strict):
    kind: EligibilityExpiryKind = EligibilityExpiryKind.DURATION
    duration: Duration | None = timedelta(days=180)
    date: datetime | None = None

    @field_validator("date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _fields_for_kind(self) -> EligibilityExpiry:
        if self.kind is EligibilityExpiryKind.DURATION and self.duration is None:
            raise ValueError("eligibility expiry duration: give the duration")
        if self.kind is EligibilityExpiryKind.DATE and self.date is None:
            raise ValueError("eligibility expiry date: give the date")
        return self


class PrivilegedRole(_Strict):
    kind: RoleKind
    display_name: NonEmpty
    template_id: Annotated[str, StringConstraints(pattern=_GUID)] | None = None
    group: NonEmpty | None = None
    access: GroupAccess = GroupAccess.MEMBER
    max_activation: Duration = timedelta(hours=8)
    default_activation: Duration = timedelta(hours=1)
    require_justification: bool = True
    ticket: TicketSettings = TicketSettings()
    require_mfa: bool = True
    approval: ApprovalSettings | None = None  # absent: no approval
    allow_permanent_eligible: bool = False
    allow_permanent_active: bool = False
    eligibility_expiry: EligibilityExpiry = EligibilityExpiry()
    notify: list[ApproverSource] = Field(default_factory=list)  # told of every activation

    @model_validator(mode="after")
    def _consistent(self) -> PrivilegedRole:
        if self.kind is RoleKind.DIRECTORY_ROLE and (self.template_id is None or self.group):
            raise ValueError("a directory_role names its template_id (a GUID) and no group")
        if self.kind is RoleKind.PRIVILEGED_GROUP and (self.group is None or self.template_id):
            raise ValueError("a privileged_group names its group and no template_id")
        if self.max_activation > MAX_ACTIVATION:
            raise ValueError(
                f"max_activation {describe_duration(self.max_activation)} is longer than "
                f"{describe_duration(MAX_ACTIVATION)}: an activation must end by itself"
            )
        if self.default_activation > self.max_activation:
            raise ValueError(
                f"default_activation {describe_duration(self.default_activation)} is longer than "
                f"max_activation {describe_duration(self.max_activation)}"
            )
        never = self.eligibility_expiry.kind is EligibilityExpiryKind.NEVER
        if never and not self.allow_permanent_eligible:
            raise ValueError(
                "eligibility_expiry never: set allow_permanent_eligible: true to allow "
                "eligibilities without an end"
            )
        return self


class PimSettings(_Strict):
    roles: dict[RoleId, PrivilegedRole] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_targets(self) -> PimSettings:
        seen: dict[str, str] = {}
        for rid, role in self.roles.items():
            target = (
                f"directory role {role.template_id}"
                if role.kind is RoleKind.DIRECTORY_ROLE
                else f"group {role.group} ({role.access.value})"
            )
            if target in seen:
                raise ValueError(f"roles {seen[target]} and {rid} both name {target}")
            seen[target] = rid
        return self
