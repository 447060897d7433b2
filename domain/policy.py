"""The policy file's model: tenant, target apps, groups, birthright rules. Validated at load (rule 6)."""

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

_APP_NAME = r"^[a-z][a-z0-9-]{0,31}$"
_DOMAIN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]

# Worker fields a birthright condition may test; custom HR attributes are `attributes.<name>`.
CONDITION_FIELDS = ("department", "job_title", "location", "employment_type", "manager_id")


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
        if isinstance(value, bool):
            raise ValueError("expected a number of days or a duration such as 14d or P14D")
        if isinstance(value, int):
            return timedelta(days=value)
        if isinstance(value, str) and _INTERVAL_PART.match(value.replace(" ", "").lower()):
            return timedelta(seconds=interval_seconds(value))
        return value  # pydantic parses ISO-8601 durations (P14D, PT36H)

    @field_validator("remove_after")
    @classmethod
    def _grace_in_range(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(0) < value <= MAX_GRACE:
            raise ValueError("remove_after must be more than 0 and at most 365 days")
        return value

    @field_validator("when", mode="before")
    @classmethod
    def _scalars_as_text(cls, when: object) -> object:
        # YAML reads `grade: 7` or `remote: yes` as numbers/booleans; HR attributes are text.
        def text(v: object) -> object:
            if isinstance(v, bool):
                return "yes" if v else "no"
            return str(v) if isinstance(v, int | float) else v

        if isinstance(when, dict):
            return {
                k: [text(x) for x in v] if isinstance(v, list) else text(v) for k, v in when.items()
            }
        return when

    @field_validator("when")
    @classmethod
    def _known_fields(cls, when: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for key, value in when.items():
            if key not in CONDITION_FIELDS and not re.fullmatch(r"attributes\.[A-Za-z0-9_-]+", key):
                allowed = ", ".join(CONDITION_FIELDS)
                raise ValueError(
                    f"unknown condition field {key!r} (allowed: {allowed}, attributes.<name>)"
                )
            if isinstance(value, list) and not value:
                raise ValueError(f"condition {key!r} has an empty list of values")
        return when

    @model_validator(mode="after")
    def _grants_something(self) -> BirthrightRule:
        if not self.groups and not self.apps:
            raise ValueError("a rule must grant at least one group or app")
        return self


MAX_GRACE = timedelta(days=365)
_INTERVAL_PART = re.compile(r"(\d+)([smhd])")
_INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")


def interval_seconds(text: str) -> int:
    """`90s`, `15m`, `24h`, `1d12h`: a whole number of each unit, largest first, summed."""
    compact = text.replace(" ", "").lower()
    parts = _INTERVAL_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"interval {text!r}: expected e.g. 30m, 24h or 1d12h (units s, m, h, d)")
    return sum(int(n) * _INTERVAL_UNITS[u] for n, u in parts)


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
    # limit of 2,000 pending activities (RECIPES.md).
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
        return self
