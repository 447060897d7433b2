"""The policy file's `access` section: catalogs, access packages, assignment policies, SoD rules.

Validated at load (DESIGN.md rule 6): a stage with nobody in it, a quorum larger than the approvers
it can ever have, an unknown package in an SoD rule... fail with the path and the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.policy_values import (
    NonEmpty,
    as_text_conditions,
    check_condition_fields,
    duration_from_text,
)

_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_EMPLOYEE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

PolicyId = Annotated[str, StringConstraints(pattern=_ID)]
EmployeeId = Annotated[str, StringConstraints(pattern=_EMPLOYEE_ID)]

# A deadline, a reminder lead or an expiry can never be longer than this (10 years, as Entra's 3,660
# days); nothing shorter than a minute makes sense for people to act on.
MAX_DURATION = timedelta(days=3660)
MIN_DURATION = timedelta(minutes=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# A number of days, `14d`/`36h`/`1d12h`, or ISO-8601 (`P14D`, `PT4H`).
Duration = Annotated[
    timedelta, BeforeValidator(duration_from_text), Field(ge=MIN_DURATION, le=MAX_DURATION)
]

_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)


class Catalog(_Strict):
    display_name: NonEmpty
    description: str = ""
    # Employee ids of the catalog's owners: approvers of kind `owner` for its packages that name none.
    owners: list[EmployeeId] = Field(default_factory=list)


class PackageResource(_Strict):
    """One thing a package grants: a Graph group (by display name), or an app role in a SCIM app."""

    group: NonEmpty | None = None
    app: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")] | None = None
    role: NonEmpty | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PackageResource:
        if (self.group is None) == (self.app is None):
            raise ValueError("a resource is either {group: NAME} or {app: APP, role: ROLE}")
        if self.app is not None and self.role is None:
            raise ValueError(f"resource app {self.app!r}: name the role it grants")
        if self.group is not None and self.role is not None:
            raise ValueError("a group resource takes no role")
        return self

    @property
    def key(self) -> str:
        return f"group:{self.group}" if self.group is not None else f"app:{self.app}:{self.role}"


class WhoMayRequest(_Strict):
    """Who may ask. `everyone`, or any matching `when` condition set, or a named person."""

    everyone: bool = False
    # Each mapping is one alternative; all conditions inside it must hold (birthright syntax).
    when: list[dict[str, str | list[str]]] = Field(default_factory=list)
    people: list[EmployeeId] = Field(default_factory=list)
    # A manager may request the package for a direct report (who must be eligible themselves).
    managers_for_reports: bool = False

    @field_validator("when", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if isinstance(value, dict):
            value = [value]
        return [as_text_conditions(v) for v in value] if isinstance(value, list) else value

    @field_validator("when")
    @classmethod
    def _fields(cls, value: list[dict[str, str | list[str]]]) -> list[dict[str, str | list[str]]]:
        for conditions in value:
            if not conditions:
                raise ValueError("an empty condition set would match everyone: use everyone: true")
            check_condition_fields(conditions)
        return value

    @model_validator(mode="after")
    def _someone(self) -> WhoMayRequest:
        if not self.everyone and not self.when and not self.people:
            raise ValueError("nobody may request: set everyone, when or people")
        return self


class QuestionKind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"


class Question(_Strict):
    id: PolicyId
    text: NonEmpty
    kind: QuestionKind = QuestionKind.TEXT
    required: bool = True
    choices: list[NonEmpty] = Field(default_factory=list)
    max_length: int = Field(500, ge=1, le=4000)

    @model_validator(mode="after")
    def _choices_match_kind(self) -> Question:
        if self.kind is QuestionKind.CHOICE and len(self.choices) < 2:
            raise ValueError(f"question {self.id!r}: a choice needs at least two choices")
        if self.kind is QuestionKind.TEXT and self.choices:
            raise ValueError(f"question {self.id!r}: a text question takes no choices")
        return self


class ApproverKind(StrEnum):
    MANAGER = "manager"  # the beneficiary's manager
    SECOND_LEVEL_MANAGER = "second_level_manager"  # the manager's manager
    PEOPLE = "people"  # named employee ids
    GROUP = "group"  # every member of a Graph group
    OWNER = "owner"  # the package's owners (or its catalog's)


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


class ExpiryKind(StrEnum):
    NEVER = "never"
    DURATION = "duration"  # `duration` after the grant
    DATE = "date"  # on `date`
    REQUESTER_CHOOSES = "requester_chooses"  # any end within `max` of the grant


class ExtensionPolicy(_Strict):
    allowed: bool = True
    requires_approval: bool = True  # the package's stages run again for the extension
    # How far one extension may move the end; absent: as far as the expiry policy allows.
    max: Duration | None = None


class ExpiryPolicy(_Strict):
    kind: ExpiryKind = ExpiryKind.DURATION
    duration: Duration | None = None
    date: datetime | None = None
    max: Duration | None = None
    # Sent to the beneficiary (and the requester) this long before the end.
    reminders: list[Duration] = Field(
        default_factory=lambda: [timedelta(days=14), timedelta(days=1)]
    )
    extension: ExtensionPolicy = ExtensionPolicy()

    @field_validator("date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _fields_for_kind(self) -> ExpiryPolicy:
        needs = {
            ExpiryKind.DURATION: ("duration",),
            ExpiryKind.DATE: ("date",),
            ExpiryKind.REQUESTER_CHOOSES: ("max",),
            ExpiryKind.NEVER: (),
        }[self.kind]
        for name in ("duration", "date", "max"):
            given = getattr(self, name) is not None
            if name in needs and not given:
                raise ValueError(f"expiry {self.kind.value}: give {name}")
            if name not in needs and given:
                raise ValueError(f"expiry {self.kind.value}: takes no {name}")
        return self


class AssignmentPolicy(_Strict):
    who_may_request: WhoMayRequest
    justification_required: bool = True
    questions: list[Question] = Field(default_factory=list)
    # In order; none means granted on request (still checked for eligibility and SoD).
    stages: list[ApprovalStage] = Field(default_factory=list, max_length=10)
    expiry: ExpiryPolicy = ExpiryPolicy(kind=ExpiryKind.DURATION, duration=timedelta(days=365))

    @model_validator(mode="after")
    def _unique_questions(self) -> AssignmentPolicy:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("questions: two questions share an id")
        return self


class AccessPackage(_Strict):
    display_name: NonEmpty
    description: str = ""
    catalog: PolicyId
    resources: list[PackageResource] = Field(min_length=1)
    owners: list[EmployeeId] = Field(default_factory=list)
    policy: AssignmentPolicy


class SodRef(_Strict):
    """A side of an SoD rule: a package, or a Graph group however it is held."""

    package: PolicyId | None = None
    group: NonEmpty | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        if isinstance(value, str):
            kind, sep, name = value.partition(":")
            if sep and kind in ("package", "group"):
                return {kind: name}
            raise ValueError(f"{value!r}: write package:<id> or group:<name>")
        return value

    @model_validator(mode="after")
    def _one(self) -> SodRef:
        if (self.package is None) == (self.group is None):
            raise ValueError("an SoD entry names either a package or a group")
        return self

    @property
    def key(self) -> str:
        return f"package:{self.package}" if self.package is not None else f"group:{self.group}"


class SodRule(_Strict):
    """Any two of `incompatible` must never be held together, whichever came first."""

    name: PolicyId
    description: str = ""
    incompatible: list[SodRef] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> SodRule:
        keys = [r.key for r in self.incompatible]
        if len(set(keys)) != len(keys):
            raise ValueError(f"sod rule {self.name!r}: an entry is listed twice")
        return self


class AccessSettings(_Strict):
    # Employee ids allowed to revoke any grant (besides holders of the Tenure.Admin app role).
    administrators: list[EmployeeId] = Field(default_factory=list)
    catalogs: dict[PolicyId, Catalog] = Field(default_factory=dict)
    packages: dict[PolicyId, AccessPackage] = Field(default_factory=dict)
    sod: list[SodRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_resolve(self) -> AccessSettings:
        for pid, package in self.packages.items():
            if package.catalog not in self.catalogs:
                raise ValueError(
                    f"packages.{pid}: catalog {package.catalog!r} is not declared under catalogs"
                )
            needs_owner = any(
                s.kind is ApproverKind.OWNER
                for stage in package.policy.stages
                for s in [
                    *stage.approvers,
                    *stage.fallback,
                    *(a for e in stage.escalations for a in e.approvers),
                ]
            )
            if needs_owner and not (package.owners or self.catalogs[package.catalog].owners):
                raise ValueError(
                    f"packages.{pid}: an approver stage names the owner, "
                    "but neither the package nor its catalog has owners"
                )
        names = [rule.name for rule in self.sod]
        if len(set(names)) != len(names):
            raise ValueError("sod: two rules share a name")
        for i, rule in enumerate(self.sod):
            for ref in rule.incompatible:
                if ref.package is not None and ref.package not in self.packages:
                    raise ValueError(f"sod[{i}] ({rule.name}): unknown package {ref.package!r}")
        return self


def describe_duration(value: timedelta) -> str:
    """`3d`, `36h`, `90m` or `45s`: the largest whole unit."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
