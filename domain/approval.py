"""One approval stage as data: who may decide, what has been decided, and what that adds up to.

Pure functions, so quorum, refusal and timeline rules are unit-tested without Temporal; the request
workflow keeps a `StageTally` per open stage and asks these functions what to do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.access_policy import ApprovalStage, EscalationMode, Require, describe_duration
from domain.access_request import Decision


class StageOutcome(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"


class StageTally(BaseModel):
    require: str  # "first", "all" or a number
    approvers: list[str]
    # Approvers an escalation replaced: they were asked, and may no longer decide.
    replaced: list[str] = Field(default_factory=list)
    approved_by: list[str] = Field(default_factory=list)
    denied_by: list[str] = Field(default_factory=list)

    @property
    def decided(self) -> set[str]:
        return {*self.approved_by, *self.denied_by}

    @property
    def undecided(self) -> list[str]:
        return [a for a in self.approvers if a not in self.decided]


def require_text(stage: ApprovalStage) -> str:
    return stage.require.value if isinstance(stage.require, Require) else str(stage.require)


def decision_refusal(
    tally: StageTally, actor_id: str, requester_id: str, beneficiary_id: str
) -> str | None:
    """Why `actor_id` may not decide this stage now, or None."""
    if actor_id in (requester_id, beneficiary_id):
        return "you cannot decide on a request for your own access or one you made"
    if actor_id in tally.decided:
        return "you have already decided on this stage"
    if actor_id in tally.replaced:
        return "this stage was escalated: your decision is no longer needed"
    if actor_id not in tally.approvers:
        return "you are not an approver of the stage waiting for a decision"
    return None


def record_decision(tally: StageTally, actor_id: str, decision: Decision) -> StageTally:
    if decision is Decision.APPROVE:
        return tally.model_copy(update={"approved_by": [*tally.approved_by, actor_id]})
    return tally.model_copy(update={"denied_by": [*tally.denied_by, actor_id]})


def outcome(tally: StageTally, more_may_come: bool) -> StageOutcome | None:
    """Approved, denied, or still open. `more_may_come`: an escalation or fallback may still add
    approvers, so a quorum out of reach today is not yet a denial."""
    approvals, denials = len(tally.approved_by), len(tally.denied_by)
    if tally.require == Require.FIRST.value:
        if approvals:
            return StageOutcome.APPROVED
        if denials:
            return StageOutcome.DENIED
        return None
    if tally.require == Require.ALL.value:
        if denials:
            return StageOutcome.DENIED
        if tally.approvers and not tally.undecided:
            return StageOutcome.APPROVED
        return None
    needed = int(tally.require)
    if approvals >= needed:
        return StageOutcome.APPROVED
    still_possible = approvals + len(tally.undecided)
    if still_possible < needed and not more_may_come:
        return StageOutcome.DENIED
    return None


def escalate(tally: StageTally, alternates: list[str], mode: EscalationMode) -> StageTally:
    """Bring alternates in. Replaced approvers who already decided keep their decision; one an
    earlier level replaced and this level brings back may decide again."""
    if mode is EscalationMode.REPLACE:
        replaced = [a for a in tally.approvers if a not in tally.decided and a not in alternates]
        kept = [a for a in tally.approvers if a in tally.decided]
        approvers = [*kept, *(a for a in alternates if a not in kept)]
    else:
        replaced = []
        approvers = [*tally.approvers, *(a for a in alternates if a not in tally.approvers)]
    still_replaced = [a for a in [*tally.replaced, *replaced] if a not in approvers]
    return tally.model_copy(update={"approvers": approvers, "replaced": still_replaced})


class TimelineKind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"
    DEADLINE = "deadline"


class TimelinePoint(BaseModel):
    at: datetime
    kind: TimelineKind
    index: int  # which reminder or escalation level
    text: str


def stage_timeline(stage: ApprovalStage, opened_at: datetime) -> list[TimelinePoint]:
    """Everything that happens to an undecided stage, in time order (ties: escalations first,
    so a reminder at the same moment reaches the alternates too)."""
    points = [
        TimelinePoint(
            at=opened_at + stage.deadline - lead,
            kind=TimelineKind.REMINDER,
            index=i,
            text=f"reminder {describe_duration(lead)} before the deadline",
        )
        for i, lead in enumerate(stage.reminders)
    ]
    points += [
        TimelinePoint(
            at=opened_at + level.after,
            kind=TimelineKind.ESCALATION,
            index=i,
            text=f"escalation level {i + 1} after {describe_duration(level.after)}",
        )
        for i, level in enumerate(stage.escalations)
    ]
    points.append(
        TimelinePoint(
            at=opened_at + stage.deadline,
            kind=TimelineKind.DEADLINE,
            index=0,
            text=f"deadline after {describe_duration(stage.deadline)}",
        )
    )
    order = {TimelineKind.ESCALATION: 0, TimelineKind.REMINDER: 1, TimelineKind.DEADLINE: 2}
    return sorted(points, key=lambda p: (p.at, order[p.kind]))


def fallback_timeline(stage: ApprovalStage, opened_at: datetime) -> list[TimelinePoint]:
    """After an escalate-on-timeout: the fallback approvers' own deadline (a reminder halfway)."""
    half = stage.fallback_deadline / 2
    return [
        TimelinePoint(
            at=opened_at + half,
            kind=TimelineKind.REMINDER,
            index=0,
            text=f"reminder {describe_duration(stage.fallback_deadline - half)} before the fallback deadline",
        ),
        TimelinePoint(
            at=opened_at + stage.fallback_deadline,
            kind=TimelineKind.DEADLINE,
            index=1,
            text=f"fallback deadline after {describe_duration(stage.fallback_deadline)}",
        ),
    ]


def expiry_reminders(end: datetime, granted_at: datetime, leads: list[timedelta]) -> list[datetime]:
    """Reminder times before `end`, skipping any that fall before the grant itself."""
    return sorted(end - lead for lead in leads if end - lead > granted_at)
