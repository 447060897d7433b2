"""The policy file's model: tenant, target apps, groups, birthright rules. Validated at load (docs/architecture.md, rule 6)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from domain.access.policy import AccessSettings
from domain.pim.roles import PimSettings, RoleKind
from domain.policy.values import (
    EmployeeId,
    NonEmpty,
    as_text_conditions,
    check_condition_fields,
    duration_from_text,
    interval_seconds,
)
from domain.reviews.definition import ReviewDefinition, ReviewId, ScopeKind

_APP_NAME = r"^[a-z][a-z0-9-]{0,31}$"
_DOMAIN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantSettings(_Strict):
    domain: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=_DOMAIN)]
    mail_sender: NonEmpty = Field(
        description="Mailbox (UPN) that Tenure's notifications come from."
    )


class JoinerSettings(_Strict):
    pre_hire_days: int = Field(
        7, ge=0, le=180, description="Days before the start date that pre-hire work begins."
    )
    tap_lifetime_minutes: int = Field(480, ge=10, le=43200)


class LeaverSettings(_Strict):
    retention_days: int = Field(
        30,
        ge=0,
        le=3650,
        description="Days after the leave date that a leaver's accounts are deleted.",
    )


class TargetApp(_Strict):
    """A SCIM 2.0 target application. Its URL and token come from the environment, never the file."""

    display_name: NonEmpty
    description: str = ""


class AppGrant(_Strict):
    app: Annotated[str, StringConstraints(pattern=_APP_NAME)]
    roles: list[NonEmpty] = Field(default_factory=list)


class BirthrightRule(_Strict):
    """When every condition in `when` holds, the worker gets `groups` and `apps`.

    A condition's value is one string or a list (any of them matches); comparison ignores case.
    An empty `when` matches everyone. `remove_after` is a mover's grace period: when a move means
    the worker no longer gets this rule's access, it stays that long before it is removed (a number
    of days, `14d`/`36h` style, or an ISO-8601 duration such as `P14D`). Absent: removed at once.
    """

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    when: dict[str, str | list[str]] = Field(default_factory=dict)
    groups: list[NonEmpty] = Field(default_factory=list)
    apps: list[AppGrant] = Field(default_factory=list)
    remove_after: timedelta | None = None

    @field_validator("remove_after", mode="before")
    @classmethod
    def _grace_as_duration(cls, value: object) -> object:
        return duration_from_text(value)

    @field_validator("remove_after")
    @classmethod
    def _grace_in_range(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(0) < value <= MAX_GRACE:
            raise ValueError("remove_after must be more than 0 and at most 365 days")
        return value

    @field_validator("when", mode="before")
    @classmethod
    def _scalars_as_text(cls, when: object) -> object:
        return as_text_conditions(when)

    @field_validator("when")
    @classmethod
    def _known_fields(cls, when: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        check_condition_fields(when)
        return when

    @model_validator(mode="after")
    def _grants_something(self) -> BirthrightRule:
        if not self.groups and not self.apps:
            raise ValueError("a rule must grant at least one group or app")
        return self


MAX_GRACE = timedelta(days=365)
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")


class OrphanSweepSettings(_Strict):
    """The scheduled sweep for accounts nobody owns and leavers' accounts still active.

    It runs on `interval` (default every 24h) or on a `cron` expression, never both. It only reports
    unless `dry_run` is false, changes at most `max_changes` accounts per run, and never touches a
    `protected` account (a UPN, SCIM userName or employee id; case is ignored).
    """

    interval: str | None = None
    cron: str | None = None
    dry_run: bool = True
    # At most this many disables run at once in one sweep; 500 keeps a run far below Temporal's
    # limit of 2,000 pending activities (docs/platform-notes.md#temporal-limits).
    max_changes: int = Field(10, ge=0, le=500)
    protected: list[NonEmpty] = Field(default_factory=list)

    @field_validator("interval")
    @classmethod
    def _interval_parses(cls, value: str | None) -> str | None:
        if value is not None and interval_seconds(value) < 60:
            raise ValueError(f"interval {value!r}: must be at least 1m")
        return value

    @field_validator("cron")
    @classmethod
    def _cron_has_five_fields(cls, value: str | None) -> str | None:
        if value is None:
            return None
        fields = value.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ValueError(
                f"cron {value!r}: expected five fields (minute hour day month weekday), "
                'e.g. "0 2 * * *"'
            )
        return " ".join(fields)

    @model_validator(mode="after")
    def _one_timing(self) -> OrphanSweepSettings:
        if self.interval is not None and self.cron is not None:
            raise ValueError("give either interval or cron, not both")
        return self

    @property
    def every_seconds(self) -> int | None:
        """The interval in seconds; None when a cron expression drives the schedule."""
        if self.cron is not None:
            return None
        return interval_seconds(self.interval or "24h")


class SecuritySettings(_Strict):
    # Employee ids told of every incident, besides the person's manager.
    contacts: list[EmployeeId] = Field(default_factory=list)


class Policy(_Strict):
    tenant: TenantSettings
    joiner: JoinerSettings = JoinerSettings()
    leaver: LeaverSettings = LeaverSettings()
    groups: list[NonEmpty] = Field(
        default_factory=list, description="Graph groups, by display name."
    )
    apps: dict[Annotated[str, StringConstraints(pattern=_APP_NAME)], TargetApp] = Field(
        default_factory=dict
    )
    birthright: list[BirthrightRule] = Field(default_factory=list)
    # Absent: no scheduled sweep (the local stack removes one registered earlier).
    orphan_sweep: OrphanSweepSettings | None = None
    # Access packages people request, their approval chains, expiry and SoD rules.
    access: AccessSettings = AccessSettings()
    # Access reviews (certification campaigns), by id: what is reviewed, by whom, how often.
    reviews: dict[ReviewId, ReviewDefinition] = Field(default_factory=dict)
    # Privileged roles activated just in time (PIM): directory roles and privileged groups.
    pim: PimSettings = PimSettings()
    # Security incidents: who is told when one suspends a person.
    security: SecuritySettings = SecuritySettings()

    @model_validator(mode="after")
    def _references_resolve(self) -> Policy:
        if len(set(self.groups)) != len(self.groups):
            raise ValueError("groups: a group is listed twice")
        names = [rule.name for rule in self.birthright]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"birthright: rule names must be unique, repeated: {', '.join(dupes)}")
        known_groups = set(self.groups)
        for i, rule in enumerate(self.birthright):
            for group in rule.groups:
                if group not in known_groups:
                    raise ValueError(
                        f"birthright[{i}] ({rule.name}): group {group!r} is not declared under groups"
                    )
            for grant in rule.apps:
                if grant.app not in self.apps:
                    raise ValueError(
                        f"birthright[{i}] ({rule.name}): app {grant.app!r} is not declared under apps"
                    )
        self._access_references_resolve(known_groups)
        self._review_references_resolve(known_groups)
        self._pim_references_resolve(known_groups)
        return self

    def _pim_references_resolve(self, known_groups: set[str]) -> None:
        for rid, role in self.pim.roles.items():
            if role.kind is RoleKind.PRIVILEGED_GROUP and role.group not in known_groups:
                raise ValueError(
                    f"pim.roles.{rid}: group {role.group!r} is not declared under groups"
                )
            stages = role.approval.stages if role.approval else []
            for s, stage in enumerate(stages):
                sources = [
                    *stage.approvers,
                    *stage.fallback,
                    *(a for level in stage.escalations for a in level.approvers),
                ]
                for source in [*sources, *role.notify]:
                    if source.group is not None and source.group not in known_groups:
                        raise ValueError(
                            f"pim.roles.{rid}.approval.stages[{s}]: approver group "
                            f"{source.group!r} is not declared under groups"
                        )

    def _review_references_resolve(self, known_groups: set[str]) -> None:
        # A review naming an undeclared group, package or app would find nothing to review and
        # report a clean campaign: refuse it at load instead.
        for rid, review in self.reviews.items():
            for scope in review.scope:
                if scope.kind is ScopeKind.GROUP_MEMBERS:
                    known, what = known_groups, "groups"
                elif scope.kind is ScopeKind.ACCESS_PACKAGES:
                    known, what = set(self.access.packages), "access.packages"
                elif scope.kind is ScopeKind.APP_ACCOUNTS:
                    known, what = set(self.apps), "apps"
                else:
                    continue
                for name in scope.names:
                    if name not in known:
                        raise ValueError(
                            f"reviews.{rid}.scope: {scope.kind.value} {name!r} is not declared "
                            f"under {what}"
                        )
            for s, stage in enumerate(review.stages):
                for source in [*stage.reviewers, *stage.fallback]:
                    if source.group is not None and source.group not in known_groups:
                        raise ValueError(
                            f"reviews.{rid}.stages[{s}]: reviewer group {source.group!r} is not "
                            "declared under groups"
                        )

    def _access_references_resolve(self, known_groups: set[str]) -> None:
        # Groups and apps a package grants, an SoD rule names or whose members approve must be
        # declared above: a typo would otherwise surface only when someone asks for the package.
        for pid, package in self.access.packages.items():
            for resource in package.resources:
                if resource.group is not None and resource.group not in known_groups:
                    raise ValueError(
                        f"access.packages.{pid}: group {resource.group!r} is not declared under groups"
                    )
                if resource.app is not None and resource.app not in self.apps:
                    raise ValueError(
                        f"access.packages.{pid}: app {resource.app!r} is not declared under apps"
                    )
            for s, stage in enumerate(package.policy.stages):
                sources = [
                    *stage.approvers,
                    *stage.fallback,
                    *(a for level in stage.escalations for a in level.approvers),
                ]
                for source in sources:
                    if source.group is not None and source.group not in known_groups:
                        raise ValueError(
                            f"access.packages.{pid}.policy.stages[{s}]: approver group "
                            f"{source.group!r} is not declared under groups"
                        )
        for i, rule in enumerate(self.access.sod):
            for ref in rule.incompatible:
                if ref.group is not None and ref.group not in known_groups:
                    raise ValueError(
                        f"access.sod[{i}] ({rule.name}): group {ref.group!r} is not declared under groups"
                    )
                if ref.pim is not None and ref.pim not in self.pim.roles:
                    raise ValueError(
                        f"access.sod[{i}] ({rule.name}): pim role {ref.pim!r} is not declared "
                        "under pim.roles"
                    )
                app = ref.app.split(":", 1)[0] if ref.app is not None else None
                if app is not None and app not in self.apps:
                    raise ValueError(
                        f"access.sod[{i}] ({rule.name}): app {app!r} is not declared under apps"
                    )
