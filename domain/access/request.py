"""The access request's contract: names, inputs of its updates and signals, and its record.

One workflow per request, id `access-request-{beneficiary}-{package}-{key}`. Humans act on it through
Updates whose validators refuse what they must (docs/architecture.md, rule 5); the API puts the caller's identity
from the verified token into `Actor`, never from the request body.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from domain.access.policy import AssignmentPolicy, PackageResource, SodRule
from domain.approval.contract import Decision, DecisionRefusal, StageView
from domain.lifecycle.events import WorkerRecord
from domain.lifecycle.identity import ReleaseAccessInput, ReserveAccessInput


class AccessRequestContract:
    WORKFLOW = "AccessRequestWorkflow"
    UPDATE_DECIDE = "decide"
    UPDATE_CANCEL = "cancel"
    UPDATE_REVOKE = "revoke"
    UPDATE_EXTEND = "request_extension"
    # A decision the validator refused leaves no trace in history; the API reports it by signal so
    # the request's record keeps who tried and why they were refused.
    SIGNAL_REFUSED_ATTEMPT = "refused_attempt"
    # The identity entity tells its open requests that the person left.
    SIGNAL_BENEFICIARY_LEFT = "beneficiary_left"
    QUERY_DETAILS = "details"


class Refusal:
    """`ApplicationError.type` of an update the validator refused; the API maps them to statuses."""

    # Not an approver, self-approval, repeat (the approval engine's refusals), not an administrator.
    NOT_ALLOWED = DecisionRefusal.NOT_ALLOWED  # 403
    CLOSED = DecisionRefusal.CLOSED  # the request or stage no longer takes this action: 409
    INVALID = "InvalidRequest"  # the input breaks a policy rule (an extension too long): 422


class AccessActivityNames:
    RESOLVE_ACCESS_PLAN = "policy.resolve_access_plan"
    LOAD_BENEFICIARY = "access.load_beneficiary"
    RESERVE = "access.reserve"
    RELEASE = "access.release"
    RESOLVE_APPROVERS = "access.resolve_approvers"
    NOTIFY = "access.notify"


def request_workflow_id(beneficiary_id: str, package_id: str, key: str) -> str:
    """Readable and deterministic: the same idempotency key always names the same request."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"access-request-{beneficiary_id}-{package_id}-{digest}"


class RequestStatus(StrEnum):
    SUBMITTED = "submitted"  # checks running
    PENDING_APPROVAL = "pending_approval"
    GRANTING = "granting"
    GRANTED = "granted"  # the access is held until it expires
    DENIED = "denied"  # ineligible, SoD conflict, a stage denied or timed out
    CANCELLED = "cancelled"  # by the requester, or because the person left before a grant
    EXPIRED = "expired"  # held, then removed at its end
    REVOKED = "revoked"  # held, then removed by an administrator or because the person left
    FAILED = "failed"  # a grant or removal failed beyond Temporal's retries: an operator's turn
    SCHEDULED = "scheduled"  # a role activation approved, waiting for its scheduled start

    @property
    def open(self) -> bool:
        return self in (RequestStatus.SUBMITTED, RequestStatus.PENDING_APPROVAL)

    @property
    def final(self) -> bool:
        return self in (
            RequestStatus.DENIED,
            RequestStatus.CANCELLED,
            RequestStatus.EXPIRED,
            RequestStatus.REVOKED,
            RequestStatus.FAILED,
        )


class Actor(BaseModel):
    """Who acts, from the verified token (the story says `system` for timers and policy)."""

    employee_id: str
    is_admin: bool = False


class AccessRequestInput(BaseModel):
    request_id: str
    package_id: str
    beneficiary_id: str
    requester_id: str
    justification: str = ""
    answers: dict[str, str] = Field(default_factory=dict)
    # For packages whose expiry the requester chooses (within the policy's maximum).
    requested_end: AwareDatetime | None = None
    submitted_at: AwareDatetime
    # The time-skipping test server cannot register custom search attributes (docs/platform-notes.md#time-skipping-test-server).
    record_search_attributes: bool = True


class DecideInput(BaseModel):
    actor: Actor
    decision: Decision
    comment: str = Field("", max_length=2000)


class CancelInput(BaseModel):
    actor: Actor
    reason: str = Field("", max_length=2000)


class RevokeInput(BaseModel):
    actor: Actor
    reason: str = Field("", max_length=2000)


class ExtendInput(BaseModel):
    actor: Actor
    new_end: AwareDatetime
    justification: str = Field("", max_length=2000)


class RefusedAttempt(BaseModel):
    actor: Actor
    action: str  # decide | cancel | revoke | request_extension
    reason: str
    at: datetime


class BeneficiaryLeft(BaseModel):
    event_id: str
    effective_at: datetime


class UpdateAnswer(BaseModel):
    """What an accepted update changed: the request's status and a sentence for the caller."""

    request_id: str
    status: RequestStatus
    message: str


# ---- the record ---------------------------------------------------------------------------------

# Includes the lines the approval engine writes (domain.approval.contract.ApprovalStoryKind).
StoryKind = Literal[
    "submitted",
    "eligibility",
    "sod",
    "stage_opened",
    "reminder",
    "escalated",
    "decision",
    "refused_attempt",
    "stage_closed",
    "timeout",
    "granted",
    "expiry_reminder",
    "extension_requested",
    "extension_decided",
    "extended",
    "removed",
    "cancelled",
    "denied",
    "revoked",
    "failed",
    # A role activation's own lines (domain/pim/activation.py).
    "scheduled",
    "activated",
    "deactivate_requested",
    "verified",
    "suspended",
    "restored",
]


class StoryEntry(BaseModel):
    """One line of a request's story. `seq` numbers lines from 1 so a store appends each once."""

    seq: int
    at: datetime
    kind: StoryKind
    actor: str  # employee id, or "system"
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class RequestView(BaseModel):
    """The request as operators, the API and the audit store see it."""

    request_id: str
    package_id: str
    package_name: str
    beneficiary_id: str
    requester_id: str
    status: RequestStatus
    justification: str = ""
    answers: dict[str, str] = Field(default_factory=dict)
    submitted_at: datetime
    resources: list[str] = Field(default_factory=list)
    # The stage waiting for decisions now, if any (the request's or an extension's).
    waiting_on: StageView | None = None
    stages: list[StageView] = Field(default_factory=list)
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    closed_at: datetime | None = None
    story: list[StoryEntry] = Field(default_factory=list)
    updated_at: datetime


# ---- what the workflow asks of activities -------------------------------------------------------


class AccessPlanInput(BaseModel):
    package_id: str


class AccessPlan(BaseModel):
    """The package as policy says now, resolved once at the start of the request."""

    package_id: str
    display_name: str
    resources: list[PackageResource]
    policy: AssignmentPolicy
    owners: list[str]  # the package's, else its catalog's
    administrators: list[str]
    # Only the SoD rules that name this package or one of its groups.
    sod_rules: list[SodRule] = Field(default_factory=list)
    mail_sender: str


class BeneficiaryInput(BaseModel):
    employee_id: str


class Beneficiary(BaseModel):
    """What a request needs of the person, read from their identity entity."""

    employee_id: str
    known: bool  # Tenure has an identity for them
    stage: str = "none"
    worker: WorkerRecord | None = None
    graph_user_id: str | None = None
    user_principal_name: str | None = None


class ReserveInput(BaseModel):
    """Register the request with the beneficiary's identity entity, which checks SoD atomically."""

    beneficiary_id: str
    reservation: ReserveAccessInput


class ReleaseInput(BaseModel):
    """Ask the beneficiary's identity entity which of a request's resources no other grant holds."""

    beneficiary_id: str
    release: ReleaseAccessInput


class NotifyInput(BaseModel):
    sender: str
    to_employee_ids: list[str]
    subject: str
    html_body: str


class NotifyResult(BaseModel):
    sent_to: list[str] = Field(default_factory=list)
    # People without a mailbox (not in Graph yet, deleted): noted, not an error.
    unreachable: list[str] = Field(default_factory=list)


class RecordRequestInput(BaseModel):
    view: RequestView
