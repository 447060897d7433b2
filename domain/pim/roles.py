"""Privileged roles as the policy file writes them (`pim:`): Entra directory roles by template id,
or privileged groups (member or owner), each with its activation settings.

Validated at load with the path and the reason (docs/architecture.md, rule 6): a default longer
than the maximum, a ticket pattern that does not compile, approval required with no stage, an
eligibility expiry the role's own settings forbid.

`alerts` sets the detective scan of privileged access (`tenure-pim-alerts`,
workflows/detective/pim_alerts.py): how often it runs, its thresholds, and who is told.
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
from domain.policy.values import (
    Duration,
    EmployeeId,
    NonEmpty,
    describe_duration,
    interval_seconds,
)

RoleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_ROLE_ID = r"^[a-z0-9][a-z0-9-]{0,47}$"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
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

    @property
    def scan_key(self) -> str:
        """What the alert scan counts holders by: the directory role's template id (lower case),
        or `group:<display name>:<member|owner>` for a privileged group."""
        if self.kind is RoleKind.PRIVILEGED_GROUP:
            return f"group:{(self.group or '').lower()}:{self.access.value}"
        return (self.template_id or "").lower()

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


class PimAlertSettings(_Strict):
    """The scheduled scan for privileged access gone wrong (domain/pim/alerts.py).

    It runs `every` (an interval, at least 1m) unless `enabled` is false. A role has too many
    holders above its `max_holders` entry (by the policy's role id, a privileged group's too, or a
    template id; a role without one has no limit); a person activates too often with more than `max_activations` activations
    of one role within `activation_window`; an eligible person is idle when eligible for
    `never_activated_days` without activating the role in that time. `notify` (employee ids) are
    mailed each alert when it is raised.
    """

    enabled: bool = True
    every: str = "1h"
    # Global Administrator can change everything, PIM included: few should hold it at once.
    max_holders: dict[str, int] = Field(default_factory=lambda: {GLOBAL_ADMINISTRATOR: 5})
    max_activations: int = Field(10, ge=1)
    activation_window: Duration = timedelta(days=7)
    never_activated_days: int = Field(30, ge=1, le=3650)
    notify: list[EmployeeId] = Field(default_factory=list)

    @field_validator("every")
    @classmethod
    def _every_parses(cls, value: str) -> str:
        if interval_seconds(value) < 60:
            raise ValueError(f"every {value!r}: must be at least 1m")
        return value

    @field_validator("max_holders")
    @classmethod
    def _holder_limits(cls, value: dict[str, int]) -> dict[str, int]:
        limits: dict[str, int] = {}
        for key, limit in value.items():
            if re.match(_GUID, key):
                key = key.lower()  # Graph's ids compare without case
            elif not re.match(_ROLE_ID, key):
                raise ValueError(f"max_holders {key!r}: expected a role id or a template id (GUID)")
            if limit < 0:
                raise ValueError(f"max_holders {key!r}: {limit} is below 0")
            if key in limits:
                raise ValueError(f"max_holders names {key} twice")
            limits[key] = limit
        return limits

    @property
    def every_seconds(self) -> int:
        return interval_seconds(self.every)


class PimSettings(_Strict):
    roles: dict[RoleId, PrivilegedRole] = Field(default_factory=dict)
    # The detective scan's settings (on by default, with Entra's usual thresholds).
    alerts: PimAlertSettings = PimAlertSettings()

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

    @model_validator(mode="after")
    def _alert_limits_resolve(self) -> PimSettings:
        # A limit naming a role that is not there would silently limit nothing.
        by_template: dict[str, str] = {}
        for key in self.alerts.max_holders:
            if re.match(_GUID, key):
                template = key
            else:
                role = self.roles.get(key)
                if role is None:
                    raise ValueError(f"alerts.max_holders: {key!r} is not a role under pim.roles")
                template = role.scan_key
            if template in by_template:
                what = template if template.startswith("group:") else f"directory role {template}"
                raise ValueError(
                    f"alerts.max_holders: {by_template[template]!r} and {key!r} both name {what}"
                )
            by_template[template] = key
        return self
