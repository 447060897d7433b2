"""The approval engine: walks a subject's stages one at a time, and takes decisions on the open
one through the host's validated update.

It knows nothing of what is decided. The subject words the mails and names its own people; the host
(an access request today; a role activation or an access review next) runs the activities, keeps
the story and the record, and says when the stages are withdrawn. A host deciding on many subjects
at once (a review's items) keeps one engine per subject.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.approval.host import ApprovalHost, ApprovalResult
from workflows.approval.stage import StageRun

with workflow.unsafe.imports_passed_through():
    from domain.approval.contract import SYSTEM, Decision, DecisionRefusal, StageView
    from domain.approval.stages import ApprovalStage
    from domain.approval.subject import ApprovalSubject


class ApprovalEngine:
    def __init__(self, host: ApprovalHost) -> None:
        self._host = host
        self._open: StageRun | None = None  # the stage waiting for decisions, if any

    @property
    def view(self) -> StageView | None:
        """The open stage as people see it (None also while its approvers are being resolved)."""
        return self._open.view if self._open is not None else None

    def describe(self) -> str | None:
        return self._open.describe() if self._open is not None else None

    async def run(
        self,
        subject: ApprovalSubject,
        stages: list[ApprovalStage],
        round: str,
        hard_stop: datetime | None,
    ) -> ApprovalResult:
        """Each stage in order until one does not approve. `round` names this pass in the story
        and the views; past `hard_stop` the open stage is withdrawn."""
        if not stages:
            self._host.tell("stage_closed", SYSTEM, "no approval required by policy")
            return ApprovalResult.APPROVED
        for index, stage in enumerate(stages):
            self._open = StageRun(self._host, subject, stage, index, round, hard_stop)
            try:
                result = await self._open.run()
            finally:
                self._open = None
            await self._host.record()
            if result is not ApprovalResult.APPROVED:
                return result
        return ApprovalResult.APPROVED

    # ---- decisions --------------------------------------------------------------------------------

    def validate_decision(self, actor_id: str) -> None:
        """The decide update's validator: refuse, before anything reaches history, a decision when
        no stage is open, by the subject's own people, a repeat, a replaced approver or a stranger."""
        stage = self._open
        if stage is None:
            raise ApplicationError(self._host.closed_refusal(), type=DecisionRefusal.CLOSED)
        reason = stage.refusal(actor_id)
        if reason is not None:
            raise ApplicationError(reason, type=DecisionRefusal.NOT_ALLOWED)

    def decide(self, actor_id: str, decision: Decision, comment: str) -> str:
        """Record a decision `validate_decision` let through; a sentence for the caller."""
        assert self._open is not None
        return self._open.decide(actor_id, decision, comment)
