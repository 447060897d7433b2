"""One approval stage as the policy file writes it: approver sources, quorum, deadline, reminders,
escalation levels and what a timeout does.

Validated at load: a stage with nobody in it, or a quorum larger than the approvers it can ever
have, fails with the path and the reason.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.policy.values import Duration, EmployeeId, NonEmpty, describe_duration

_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApproverKind(StrEnum):
    MANAGER = "manager"  # the manager of the subject's person (a request's beneficiary)
    SECOND_LEVEL_MANAGER = "second_level_manager"  # the manager's manager
    PEOPLE = "people"  # named employee ids
    GROUP = "group"  # every member of a Graph group
    OWNER = "owner"  # the subject's owners (a package's, or its catalog's)


class ApproverSource(_Strict):
    """One source of approvers. Written `manager`, `{people: [E1, E2]}`, `{group: Name}`..."""

    kind: ApproverKind
    people: list[EmployeeId] = Field(default_factory=list)
    group: NonEmpty | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, value: object) -> object:
        if isinstance(value, str):
            return {"kind": value}
        if isinstance(value, dict) and "kind" not in value:
            if "people" in value:
                return {"kind": "people", **value}
            if "group" in value:
                return {"kind": "group", **value}
        return value

    @model_validator(mode="after")
    def _complete(self) -> ApproverSource:
        if self.kind is ApproverKind.PEOPLE and not self.people:
            raise ValueError("people: name at least one employee id")
        if self.kind is ApproverKind.GROUP and self.group is None:
            raise ValueError("group: name the Graph group whose members approve")
        if self.kind not in (ApproverKind.PEOPLE,) and self.people:
            raise ValueError(f"{self.kind.value}: takes no people")
        if self.kind is not ApproverKind.GROUP and self.group is not None:
            raise ValueError(f"{self.kind.value}: takes no group")
        return self

    @property
    def max_size(self) -> int | None:
        """The most approvers this source can give; None when only known at run time (a group)."""
        if self.kind is ApproverKind.PEOPLE:
            return len(set(self.people))
        if self.kind in (ApproverKind.MANAGER, ApproverKind.SECOND_LEVEL_MANAGER):
            return 1
        return None


class EscalationMode(StrEnum):
    ADD = "add"  # alternates join the approvers already asked
    REPLACE = "replace"  # alternates take over; earlier approvers can no longer decide


class Escalation(_Strict):
    """After `after` (from when the stage opened) with no outcome, bring in alternates."""

    after: Duration
    mode: EscalationMode = EscalationMode.ADD
    approvers: list[ApproverSource] = Field(min_length=1)


class TimeoutOutcome(StrEnum):
    DENY = "deny"
    APPROVE = "approve"
    ESCALATE = "escalate"  # to `fallback` approvers, who get `fallback_deadline` more


class Require(StrEnum):
    FIRST = "first"  # the first decision decides, either way
    ALL = "all"  # everyone must approve; one denial denies


class ApprovalStage(_Strict):
    name: NonEmpty | None = None
    approvers: list[ApproverSource] = Field(min_length=1)
    # `first`, `all`, or a number k: approved once k approve (a quorum), denied once k can no
    # longer be reached.
    require: Require | Annotated[int, Field(ge=1, le=50)] = Require.FIRST
    deadline: Duration = timedelta(days=7)
    # Sent to approvers who have not decided yet, this long before the deadline. Absent: one day
    # before, when the deadline leaves room for it.
    reminders: list[Duration] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    on_timeout: TimeoutOutcome = TimeoutOutcome.DENY
    fallback: list[ApproverSource] = Field(default_factory=list)
    fallback_deadline: Duration = timedelta(days=2)

    @model_validator(mode="before")
    @classmethod
    def _default_reminder(cls, value: object) -> object:
        # The default reminder must not make a short deadline (a day or less) invalid.
        if not isinstance(value, dict) or "reminders" in value:
            return value
        try:
            deadline = _DURATION.validate_python(value.get("deadline", timedelta(days=7)))
        except ValidationError:
            return value  # the deadline's own error says what is wrong
        day = timedelta(days=1)
        return {**value, "reminders": [day] if deadline > day else []}

    @field_validator("require", mode="before")
    @classmethod
    def _require_text(cls, value: object) -> object:
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalStage:
        for lead in self.reminders:
            if lead >= self.deadline:
                raise ValueError(
                    f"reminder {describe_duration(lead)} before the deadline is not inside the stage's "
                    f"deadline of {describe_duration(self.deadline)}"
                )
        previous = timedelta(0)
        for i, level in enumerate(self.escalations):
            if level.after <= previous:
                raise ValueError(f"escalations[{i}]: each level must come after the one before")
            if level.after >= self.deadline:
                raise ValueError(
                    f"escalations[{i}]: after {describe_duration(level.after)} is not before the deadline "
                    f"({describe_duration(self.deadline)})"
                )
            previous = level.after
        if self.on_timeout is TimeoutOutcome.ESCALATE and not self.fallback:
            raise ValueError("on_timeout escalate: name the fallback approvers")
        if self.on_timeout is not TimeoutOutcome.ESCALATE and self.fallback:
            raise ValueError("fallback approvers are used only with on_timeout: escalate")
        if isinstance(self.require, int):
            bound = _most_approvers(self.approvers, self.escalations, self.fallback)
            if bound is not None and self.require > bound:
                raise ValueError(
                    f"require {self.require} is more approvers than this stage can ever have "
                    f"({bound})"
                )
        return self


def _most_approvers(*lists: list[ApproverSource] | list[Escalation]) -> int | None:
    """Distinct people the sources can ever give: a person named twice, or `manager` listed in a
    stage and again in its escalation, is still one approver. None when a source is a group (its
    members are known only at run time) or the owners (not known to the stage)."""
    people: set[str] = set()
    managers: set[ApproverKind] = set()
    for items in lists:
        for item in items:
            sources = item.approvers if isinstance(item, Escalation) else [item]
            for source in sources:
                if source.max_size is None:
                    return None
                if source.kind is ApproverKind.PEOPLE:
                    people.update(source.people)
                else:
                    managers.add(source.kind)
    return len(people) + len(managers)
