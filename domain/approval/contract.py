"""What the approval engine exchanges with the workflow hosting it, its activities and its readers:
decisions, refusals, the stage as people see it, and approver resolution."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from domain.approval.stages import ApproverSource

# The actor of story lines that timers and policy write, not a person.
SYSTEM = "system"

# The story lines a stage writes; a host's own story kinds include these.
ApprovalStoryKind = Literal[
    "stage_opened", "reminder", "escalated", "decision", "stage_closed", "timeout"
]


class Decision(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class DecisionRefusal:
    """`ApplicationError.type` of a decision the engine's validator refused (the API maps them to
    statuses; hosts use the same types for their other updates)."""

    NOT_ALLOWED = "NotAllowed"  # not an approver, the subject's own person, a repeat: 403
    CLOSED = "RequestClosed"  # nothing waits for a decision now: 409


class StageView(BaseModel):
    index: int
    name: str
    round: str  # which pass over the subject's stages: "request" or "extension-N" for a request
    require: str  # "first", "all" or a number
    approvers: list[str]
    approved_by: list[str] = Field(default_factory=list)
    denied_by: list[str] = Field(default_factory=list)
    opened_at: datetime
    deadline: datetime
    outcome: str | None = None  # approved | denied | timed out (deny/approve) | withdrawn


class ResolveApproversInput(BaseModel):
    sources: list[ApproverSource]
    # Where `manager` and `second_level_manager` start: the manager of the subject's person. (Named
    # after a request's beneficiary, kept so activities already scheduled still decode.)
    beneficiary_manager_id: str | None
    owners: list[str]  # whom `owner` names
    # Never asked: the subject's own people (a request's requester and beneficiary).
    exclude: list[str] = Field(default_factory=list)


class ResolvedApprovers(BaseModel):
    employee_ids: list[str]
    # Sources that gave nobody (no manager, an empty group), for the record.
    empty_sources: list[str] = Field(default_factory=list)
