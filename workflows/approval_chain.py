"""One approval stage run inside the request workflow: approvers, reminders, escalation, timeout.

Deterministic workflow code. Who may decide and what decisions add up to are pure functions in
domain/approval.py; this module adds time (the stage's timeline on durable timers) and the side
effects the host workflow performs for it (resolving approvers, mail, the record).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from html import escape
from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.access_policy import (
        ApprovalStage,
        ApproverSource,
        EscalationMode,
        TimeoutOutcome,
        describe_duration,
    )
    from domain.access_request import (
        SYSTEM,
        AccessActivityNames,
        AccessPlan,
        AccessRequestInput,
        Decision,
        NotifyResult,
        ResolveApproversInput,
        ResolvedApprovers,
        StageView,
        StoryKind,
    )
    from domain.approval import (
        StageOutcome,
        StageTally,
        TimelineKind,
        TimelinePoint,
        escalate,
        fallback_timeline,
        outcome,
        record_decision,
        require_text,
        stage_timeline,
    )
    from workflows.retry import PROVISIONING


class ChainResult(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    # Cancelled, the person left, or (for an extension) the access ended first.
    INTERRUPTED = "interrupted"


class ChainHost(Protocol):
    """What a stage needs from the request workflow running it."""

    @property
    def plan(self) -> AccessPlan: ...
    @property
    def request(self) -> AccessRequestInput: ...
    @property
    def beneficiary_manager_id(self) -> str | None: ...
    def wakes(self) -> int: ...
    def interrupted(self, hard_stop: datetime | None) -> bool: ...
    def stage_opened(self, view: StageView) -> None: ...
    def tell(
        self, kind: StoryKind, actor: str, text: str, at: datetime | None = None, **data: Any
    ) -> None: ...
    async def sleep_until(self, at: datetime | None, what: str) -> bool: ...
    async def notify(self, to: list[str], subject: str, html: str) -> NotifyResult | None: ...
    async def record(self) -> None: ...


class ApprovalChain:
    def __init__(
        self,
        host: ChainHost,
        stage: ApprovalStage,
        index: int,
        round: str,
        hard_stop: datetime | None,
    ) -> None:
        self._host = host
        self._stage = stage
        self._index = index
        self._round = round
        self._hard_stop = hard_stop
        self._name = stage.name or f"stage {index + 1}"
        self.tally = StageTally(require=require_text(stage), approvers=[])
        self.view: StageView | None = None
        self._timeline: list[TimelinePoint] = []
        self._fallback_used = False

    # ---- decisions (called from the workflow's validated update handler) ----------------------

    def decide(self, actor: str, decision: Decision, comment: str) -> str:
        self.tally = record_decision(self.tally, actor, decision)
        self._sync_view()
        self._host.tell(
            "decision",
            actor,
            f"{decision.value}d {self._name}" + (f": {comment}" if comment else ""),
            stage=self._index,
            stage_name=self._name,
            round=self._round,
            decision=decision.value,
            comment=comment,
        )
        result = outcome(self.tally, self._more_may_come())
        if result is None:
            return f"{decision.value} recorded; {self._name} still waits for more decisions"
        return f"{decision.value} recorded; {self._name} is {result.value}"

    # ---- the stage's life ---------------------------------------------------------------------

    async def run(self) -> ChainResult:
        host = self._host
        opened = workflow.now()
        resolved = await self._resolve(self._stage.approvers)
        self.tally = self.tally.model_copy(update={"approvers": resolved.employee_ids})
        self.view = StageView(
            index=self._index,
            name=self._name,
            round=self._round,
            require=self.tally.require,
            approvers=list(resolved.employee_ids),
            opened_at=opened,
            deadline=opened + self._stage.deadline,
        )
        host.stage_opened(self.view)
        self._timeline = stage_timeline(self._stage, opened)
        nobody = "" if resolved.employee_ids else " (nobody could be asked: waits for escalation)"
        host.tell(
            "stage_opened",
            SYSTEM,
            f"{self._name} ({self._round}) opened: asks {', '.join(resolved.employee_ids) or 'nobody'}"
            f", needs {self._needs()}, deadline {self.view.deadline:%Y-%m-%d %H:%M} UTC{nobody}",
            stage=self._index,
            round=self._round,
            approvers=resolved.employee_ids,
            empty_sources=resolved.empty_sources,
            deadline=self.view.deadline.isoformat(),
        )
        await self._ask(resolved.employee_ids, "Decision needed")
        await host.record()

        while True:
            result = outcome(self.tally, self._more_may_come())
            if result is not None:
                return self._close(
                    ChainResult.APPROVED if result is StageOutcome.APPROVED else ChainResult.DENIED,
                    result.value,
                )
            if host.interrupted(self._hard_stop):
                return self._close(ChainResult.INTERRUPTED, "withdrawn")
            point = self._timeline[0]
            wake_at = point.at if self._hard_stop is None else min(point.at, self._hard_stop)
            if await host.sleep_until(wake_at, point.text):
                await host.record()
                continue
            if workflow.now() < point.at:
                continue  # the hard stop came first: the next pass sees it
            self._timeline.pop(0)
            finished = await self._on_time(point)
            if finished is not None:
                return finished
            await host.record()

    async def _on_time(self, point: TimelinePoint) -> ChainResult | None:
        host, stage = self._host, self._stage
        fired = workflow.now()
        if point.kind is TimelineKind.REMINDER:
            waiting = self.tally.undecided
            host.tell(
                "reminder", SYSTEM, f"reminded {', '.join(waiting) or 'nobody'}", stage=self._index
            )
            await self._ask(waiting, "Reminder: decision needed")
            return None
        if point.kind is TimelineKind.ESCALATION:
            level = stage.escalations[point.index]
            await self._bring_in(
                level.approvers, level.mode, f"escalation level {point.index + 1}", fired
            )
            return None
        # The deadline.
        if self._fallback_used or stage.on_timeout is TimeoutOutcome.DENY:
            host.tell("timeout", SYSTEM, f"{self._name}: nobody decided in time; denied by policy")
            return self._close(ChainResult.DENIED, "timed out: denied")
        if stage.on_timeout is TimeoutOutcome.APPROVE:
            host.tell(
                "timeout",
                SYSTEM,
                f"{self._name}: nobody decided in time; approved by policy (no reviewer)",
            )
            return self._close(ChainResult.APPROVED, "timed out: approved by policy")
        self._fallback_used = True
        now = workflow.now()
        assert self.view is not None
        self.view.deadline = now + stage.fallback_deadline
        self._timeline = fallback_timeline(stage, now)
        host.tell(
            "timeout",
            SYSTEM,
            f"{self._name}: nobody decided in time; escalated to the fallback approvers for "
            f"{describe_duration(stage.fallback_deadline)}",
        )
        await self._bring_in(stage.fallback, EscalationMode.REPLACE, "fallback", fired)
        return None

    async def _bring_in(
        self, sources: list[ApproverSource], mode: EscalationMode, what: str, fired: datetime
    ) -> None:
        before = set(self.tally.approvers)
        resolved = await self._resolve(sources)
        self.tally = escalate(self.tally, resolved.employee_ids, mode)
        self._sync_view()
        added = [a for a in self.tally.approvers if a not in before]
        self._host.tell(
            "escalated",
            SYSTEM,
            f"{what}: {mode.value} approvers {', '.join(resolved.employee_ids) or 'nobody'}",
            at=fired,
            stage=self._index,
            mode=mode.value,
            added=added,
            replaced=self.tally.replaced,
        )
        await self._ask(added, "Escalated: decision needed")

    # ---- helpers ------------------------------------------------------------------------------

    def _more_may_come(self) -> bool:
        levels = any(p.kind is TimelineKind.ESCALATION for p in self._timeline)
        fallback = self._stage.on_timeout is TimeoutOutcome.ESCALATE and not self._fallback_used
        return levels or fallback

    def _needs(self) -> str:
        require = self.tally.require
        if require == "first":
            return "the first decision"
        if require == "all":
            return "everyone's approval"
        return f"{require} approvals"

    def _close(self, result: ChainResult, text: str) -> ChainResult:
        assert self.view is not None
        self.view.outcome = text
        self._host.tell(
            "stage_closed",
            SYSTEM,
            f"{self._name} ({self._round}): {text}",
            stage=self._index,
            round=self._round,
            outcome=text,
        )
        return result

    def _sync_view(self) -> None:
        if self.view is not None:
            self.view.approvers = list(self.tally.approvers)
            self.view.approved_by = list(self.tally.approved_by)
            self.view.denied_by = list(self.tally.denied_by)

    async def _resolve(self, sources: list[ApproverSource]) -> ResolvedApprovers:
        request = self._host.request
        return await workflow.execute_activity(
            AccessActivityNames.RESOLVE_APPROVERS,
            ResolveApproversInput(
                sources=sources,
                beneficiary_manager_id=self._host.beneficiary_manager_id,
                owners=self._host.plan.owners,
                exclude=[request.requester_id, request.beneficiary_id],
            ),
            result_type=ResolvedApprovers,
            **PROVISIONING,
        )

    async def _ask(self, approvers: list[str], subject: str) -> None:
        if not approvers or self.view is None:
            return
        plan, request = self._host.plan, self._host.request
        await self._host.notify(
            approvers,
            f"{subject}: {plan.display_name} for {request.beneficiary_id}",
            f"<p>{request.requester_id} asks for <b>{escape(plan.display_name)}</b> for "
            f"{request.beneficiary_id}: "
            f"{escape(request.justification or '(no justification)')}</p>"
            f"<p>{self._name} needs {self._needs()} by {self.view.deadline:%Y-%m-%d %H:%M} UTC. "
            f"Decide with <code>tenure requests approve {workflow.info().workflow_id}</code> "
            "(or deny).</p>",
        )

    def describe(self) -> str:
        if self.view is None:
            return f"{self._name}: resolving approvers"
        waiting = ", ".join(self.tally.undecided) or "nobody"
        return (
            f"{self._name} ({self._round}) waits for {waiting} "
            f"(needs {self._needs()}) until {self.view.deadline:%Y-%m-%d %H:%M} UTC"
        )
