"""The policy file's `access` section: catalogs, access packages, assignment policies, SoD rules
(a policy's approval stages are domain.approval.stages).

Validated at load (docs/architecture.md, rule 6): a stage with nobody in it, a quorum larger than the approvers
it can ever have, an unknown package in an SoD rule... fail with the path and the reason.
"""

from __future__ import annotations

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

from domain.approval.stages import ApprovalStage, ApproverKind, ApproverSource
from domain.holdings import ResourceRef, app_role
from domain.holdings import group as group_ref
from domain.policy.values import (
    Duration,
    EmployeeId,
    NonEmpty,
    as_text_conditions,
    check_condition_fields,
)

_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

PolicyId = Annotated[str, StringConstraints(pattern=_ID)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        return self.ref.key

    @property
    def ref(self) -> ResourceRef:
        """The resource as the holdings ledger names it (the app account comes with the role)."""
        if self.group is not None:
            return group_ref(self.group)
        assert self.app is not None and self.role is not None
        return app_role(self.app, self.role)


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
    """A side of an SoD rule: a package, a Graph group however it is held, a privileged role
    (`pim:<role id>`), or an app account or app role (`app:<app>`, `app:<app>:<role>`)."""

    package: PolicyId | None = None
    group: NonEmpty | None = None
    pim: PolicyId | None = None
    app: NonEmpty | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        if isinstance(value, str):
            kind, sep, name = value.partition(":")
            if sep and name and kind in SOD_KINDS:
                return {kind: name}
            raise ValueError(
                f"{value!r}: write package:<id>, group:<name>, pim:<role> or app:<app>[:<role>]"
            )
        return value

    @model_validator(mode="after")
    def _one(self) -> SodRef:
        named = [k for k in SOD_KINDS if getattr(self, k) is not None]
        if len(named) != 1:
            raise ValueError("an SoD entry names one of a package, a group, a pim role or an app")
        return self

    @property
    def key(self) -> str:
        """As the ledger and the identity's held keys name it (`ResourceRef.key` for groups and
        apps)."""
        for kind in SOD_KINDS:
            value = getattr(self, kind)
            if value is not None:
                return f"{kind}:{value}"
        raise AssertionError("validated to name one")


SOD_KINDS = ("package", "group", "pim", "app")


class SodRemediation(StrEnum):
    """What a violation found after the fact (a move, birthright, a PIM activation) starts."""

    NOTIFY = "notify"  # the owners are told, nothing changes
    REMOVE_NEWEST = "remove_newest"  # the newest package or PIM grant is ended
    EXCEPTION = "exception"  # the owners approve an exception for a while, or the newest goes


def _owners_stage() -> list[ApprovalStage]:
    # `owner` resolves to the rule's owners, or to the access administrators where it names none.
    return [ApprovalStage(name="owners", approvers=[ApproverSource(kind=ApproverKind.OWNER)])]


class SodException(_Strict):
    """How an exception to an SoD rule is approved, and how long one holds before the violation
    is checked again."""

    # At least one stage: an exception nobody approves would be no control at all.
    stages: list[ApprovalStage] = Field(default_factory=_owners_stage, min_length=1, max_length=10)
    duration: Duration = timedelta(days=90)


class SodRule(_Strict):
    """Any two of `incompatible` must never be held together, whichever came first."""

    name: PolicyId
    description: str = ""
    incompatible: list[SodRef] = Field(min_length=2)
    remediation: SodRemediation = SodRemediation.NOTIFY
    # Who is told of a violation and, as `owner` in the exception's stages, who decides on it.
    # None named: the access administrators.
    owners: list[EmployeeId] = Field(default_factory=list)
    # Only with `remediation: exception`; absent there, one stage of the owners and 90 days.
    exception: SodException | None = None

    @model_validator(mode="after")
    def _distinct(self) -> SodRule:
        keys = [r.key for r in self.incompatible]
        if len(set(keys)) != len(keys):
            raise ValueError(f"sod rule {self.name!r}: an entry is listed twice")
        if len(set(self.owners)) != len(self.owners):
            raise ValueError(f"sod rule {self.name!r}: an owner is listed twice")
        if self.exception is not None and self.remediation is not SodRemediation.EXCEPTION:
            raise ValueError(
                f"sod rule {self.name!r}: exception settings apply only to remediation: exception"
            )
        return self

    @property
    def exception_policy(self) -> SodException:
        """The exception's stages and duration, the defaults where the rule names none."""
        return self.exception or SodException()


class SodScanSettings(_Strict):
    """The scheduled check of everyone against the SoD rules (`tenure-sod-scan`); a move checks
    the person moved at once whatever this says."""

    enabled: bool = True
    every: Duration = timedelta(hours=24)


class AccessSettings(_Strict):
    # Employee ids allowed to revoke any grant (besides holders of the Tenure.Admin app role).
    administrators: list[EmployeeId] = Field(default_factory=list)
    catalogs: dict[PolicyId, Catalog] = Field(default_factory=dict)
    packages: dict[PolicyId, AccessPackage] = Field(default_factory=dict)
    sod: list[SodRule] = Field(default_factory=list)
    sod_scan: SodScanSettings = SodScanSettings()

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
