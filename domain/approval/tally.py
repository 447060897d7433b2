"""What has been decided on one stage, who may still decide, and what that adds up to.

Pure functions, so quorum and refusal rules are unit-tested without Temporal; the engine keeps a
`StageTally` per open stage and asks these functions what to do.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from domain.approval.contract import Decision
from domain.approval.stages import ApprovalStage, EscalationMode, Require


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


def needs_text(require: str) -> str:
    """What a stage needs, in words: for its story, its status line and its mails."""
    if require == Require.FIRST.value:
        return "the first decision"
    if require == Require.ALL.value:
        return "everyone's approval"
    return f"{require} approvals"


def decision_refusal(
    tally: StageTally, actor_id: str, own_people: list[str], own_refusal: str
) -> str | None:
    """Why `actor_id` may not decide this stage now, or None. `own_people` may never decide on
    their own subject (`own_refusal` says so in the subject's words), even when a source names
    them."""
    if actor_id in own_people:
        return own_refusal
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
