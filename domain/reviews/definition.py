"""An access review as the policy file writes it (`reviews:`): what is reviewed (scopes and
filters), by whom (stages of reviewers with fallbacks), when (recurrence, duration, reminders,
escalation), what silence means, and how outcomes are applied (dry run, removal cap, protected
accounts).

Validated at load with the path and the reason (docs/architecture.md, rule 6). References to
groups, packages and apps are checked against the rest of the policy in `Policy`.
"""

from __future__ import annotations

from datetime import timedelta
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

from domain.approval.stages import ApproverSource
from domain.policy.values import Duration, NonEmpty, describe_duration
from domain.reviews.recurrence import Recurrence

ReviewId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeKind(StrEnum):
    GROUP_MEMBERS = "groups"  # members of the named Graph groups
    ACCESS_PACKAGES = "packages"  # active assignments of the named access packages
    APP_ACCOUNTS = "apps"  # accounts (and each of their roles) in the named SCIM apps
    BIRTHRIGHT = "birthright"  # what birthright rules grant Tenure's identities
    SERVICE_PRINCIPALS = (
        "service_principals"  # app-role assignments of these apps (workload identities)
    )
    PRIVILEGED_ROLES = "privileged_roles"  # PIM eligibilities and activations (not yet reviewed)


class ReviewScope(_Strict):
    """One source of items. Written `{groups: [A, B]}`, `{packages: [p]}`, `{apps: [ledger]}`,
    `{service_principals: [Payroll API]}` (display name or appId) or `birthright`."""

    kind: ScopeKind
    names: list[NonEmpty] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: object) -> object:
        if isinstance(value, str):
            return {"kind": value}
        if isinstance(value, dict) and "kind" not in value and len(value) == 1:
            ((key, names),) = value.items()
            if key in {k.value for k in ScopeKind}:
                return {"kind": key, "names": names if isinstance(names, list) else [names]}
            known = ", ".join(k.value for k in ScopeKind)
            raise ValueError(f"unknown scope {key!r}: expected one of {known}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ReviewScope:
        if self.kind is ScopeKind.PRIVILEGED_ROLES:
            raise ValueError(
                "privileged_roles: reviews of PIM eligibilities and activations are not supported "
                "yet (the PIM alerts and eligibility expiry cover them meanwhile)"
            )
        if self.kind is ScopeKind.BIRTHRIGHT:
            if self.names:
                raise ValueError("birthright: takes no names (it covers every birthright rule)")
        elif not self.names:
            raise ValueError(f"{self.kind.value}: name at least one")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{self.kind.value}: a name is listed twice")
        return self


class ScopeFilter(_Strict):
    """Which holders' items are kept; every condition given must hold (case is ignored)."""

    employment_types: list[NonEmpty] = Field(default_factory=list)
    departments: list[NonEmpty] = Field(default_factory=list)
    guests_only: bool = False  # userType Guest
    contractors_only: bool = False  # employment type contractor
    # Only holders with no sign-in for this many days (never signed in counts as inactive).
    inactive_days: int | None = Field(None, ge=1, le=3650)

    @model_validator(mode="after")
    def _consistent(self) -> ScopeFilter:
        if self.contractors_only and self.employment_types:
            raise ValueError("give either contractors_only or employment_types, not both")
        return self


class PriorOutcome(StrEnum):
    """What an earlier stage came to for an item; a later stage can be limited to some."""

    APPROVED = "approved"
    DENIED = "denied"
    DONT_KNOW = "dont_know"  # a reviewer said they do not know
    NOT_REVIEWED = "not_reviewed"  # nobody decided


class NoResponse(StrEnum):
    """What an item nobody decided comes to when its stage ends."""

    KEEP = "keep"  # stays, recorded as not reviewed
    REMOVE = "remove"  # denied by rule
    APPROVE = "approve"  # approved by rule
    RECOMMENDATION = "recommendation"  # follows the recommendation (approve when there is none)


class Justification(StrEnum):
    NEVER = "never"
    DENY = "deny"  # a denial must say why
    ALWAYS = "always"


class ReviewStage(_Strict):
    name: NonEmpty | None = None
    # `manager`, `owner` (Graph group owners, a package's or its catalog's owners, a service
    # principal's owners), `self`, `{people: [...]}` or `{group: Name}`.
    reviewers: list[ApproverSource] = Field(default_factory=list)
    self_review: bool = False  # the holder reviews their own access (`self` among the reviewers)
    # Asked when the reviewers resolve to nobody for an item, and (with `escalate_after`) for the
    # items of reviewers who have not started.
    fallback: list[ApproverSource] = Field(default_factory=list)
    duration: Duration = timedelta(days=14)
    # Sent this long before the end to reviewers who still have undecided items, and only them.
    reminders: list[Duration] = Field(default_factory=list)
    # Reviewers with no decision this long after the stage opened: the fallback reviewers join.
    escalate_after: Duration | None = None
    # Only items whose outcome in the stage before is one of these (empty: every item).
    only: list[PriorOutcome] = Field(default_factory=list)
    no_response: NoResponse = NoResponse.KEEP

    @model_validator(mode="before")
    @classmethod
    def _self_as_reviewer(cls, value: object) -> object:
        if isinstance(value, dict) and isinstance(value.get("reviewers"), list):
            others = [r for r in value["reviewers"] if r != "self"]
            if len(others) != len(value["reviewers"]):
                return {**value, "reviewers": others, "self_review": True}
        return value

    @field_validator("reminders")
    @classmethod
    def _distinct_reminders(cls, value: list[timedelta]) -> list[timedelta]:
        if len(set(value)) != len(value):
            raise ValueError("a reminder is listed twice")
        return sorted(value, reverse=True)

    @model_validator(mode="after")
    def _consistent(self) -> ReviewStage:
        if not self.reviewers and not self.self_review and not self.fallback:
            raise ValueError("a stage needs reviewers (or self, or fallback reviewers)")
        if self.self_review and self.reviewers:
            raise ValueError("a self-review stage has only the holder as reviewer; drop the others")
        for lead in self.reminders:
            if lead >= self.duration:
                raise ValueError(
                    f"reminder {describe_duration(lead)} before the end is not inside the stage's "
                    f"duration of {describe_duration(self.duration)}"
                )
        if self.escalate_after is not None:
            if not self.fallback:
                raise ValueError("escalate_after: name the fallback reviewers to escalate to")
            if self.escalate_after >= self.duration:
                raise ValueError(
                    f"escalate_after {describe_duration(self.escalate_after)} is not before the "
                    f"stage ends ({describe_duration(self.duration)})"
                )
        return self

    def label(self, index: int) -> str:
        return self.name or f"stage {index + 1}"


class Recommendation(_Strict):
    """No sign-in for `inactive_days` → recommend deny; otherwise approve."""

    inactive_days: int = Field(30, ge=1, le=3650)


class ApplyWhen(StrEnum):
    END = "end"  # when the last stage ends (or an operator confirms)
    DECIDED = "decided"  # each denial as it is made, within the cap; the rest at the end


class ApplySettings(_Strict):
    when: ApplyWhen = ApplyWhen.END
    # Apply removals when the last stage ends. False: outcomes are kept and applied only when an
    # operator confirms (the campaign waits, as for the cap).
    auto_apply: bool = True
    dry_run: bool = False  # say what would be removed, remove nothing
    # Above this share of the campaign's items removed, the campaign pauses for an operator to
    # confirm or abort (Entra's own documentation warns remove-on-no-response can remove everything).
    max_removal_share: float = Field(0.25, gt=0, le=1)
    # Never removed, whatever the decision: UPN, employee id, Graph object id, or a service
    # principal's appId or display name (case is ignored). Break-glass accounts belong here.
    protected: list[NonEmpty] = Field(default_factory=list)
    # A campaign waiting for confirmation this long applies nothing and closes: removals nobody
    # confirmed are never applied by default.
    confirm_within: Duration = timedelta(days=14)

    @field_validator("max_removal_share", mode="before")
    @classmethod
    def _percent(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(f"{value!r}: expected a share such as 0.25 or 25%") from None
        return value


class ReviewDefinition(_Strict):
    name: NonEmpty
    description: str = ""
    scope: list[ReviewScope] = Field(min_length=1)
    filter: ScopeFilter = ScopeFilter()
    stages: list[ReviewStage] = Field(min_length=1)
    recurrence: Recurrence | None = None  # absent: started by hand only
    recommend: Recommendation | None = Recommendation()
    justification: Justification = Justification.DENY
    apply: ApplySettings = ApplySettings()

    @model_validator(mode="after")
    def _consistent(self) -> ReviewDefinition:
        if self.stages[0].only:
            raise ValueError("stages[0].only: the first stage has no stage before it")
        if self.apply.when is ApplyWhen.DECIDED and len(self.stages) > 1:
            raise ValueError(
                "apply.when decided: only for a review of one stage (a later stage could "
                "overturn a denial already applied)"
            )
        kinds = [s.kind for s in self.scope]
        if len(set(kinds)) != len(kinds):
            raise ValueError("scope: list each kind once (name several groups in one entry)")
        return self

    @property
    def total_duration(self) -> timedelta:
        return sum((s.duration for s in self.stages), timedelta(0))
