"""One approval stage on durable timers: approvers, reminders, escalation levels, timeout.

Deterministic workflow code. Who may decide and what decisions add up to are pure functions in
domain/approval; this module adds time (the stage's timeline) and the side effects it asks of its
host (resolving approvers, mail worded by the subject, the record).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.approval.host import ApprovalHost, ApprovalResult

with workflow.unsafe.imports_passed_through():
    from domain.approval.contract import (
        SYSTEM,
        Decision,
        ResolveApproversInput,
        ResolvedApprovers,
        StageView,
    )
    from domain.approval.stages import ApprovalStage, ApproverSource, EscalationMode, TimeoutOutcome
    from domain.approval.subject import ApprovalSubject, AskKind, StageAsk
    from domain.approval.tally import (
        StageOutcome,
        StageTally,
        decision_refusal,
        escalate,
        needs_text,
        outcome,
        record_decision,
        require_text,
    )
    from domain.approval.timeline import (
        TimelineKind,
        TimelinePoint,
        fallback_timeline,
        stage_timeline,
    )
    from domain.policy.values import describe_duration


class StageRun:
    def __init__(
        self,
        host: ApprovalHost,
        subject: ApprovalSubject,
        stage: ApprovalStage,
        index: int,
        round: str,
        hard_stop: datetime | None,
    ) -> None:
        self._host = host
        self._subject = subject
        self._context = subject.approver_context()
        self._stage = stage
        self._index = index
        self._round = round
        self._hard_stop = hard_stop
        self._name = stage.name or f"stage {index + 1}"
        self.tally = StageTally(require=require_text(stage), approvers=[])
        self.view: StageView | None = None
        self._timeline: list[TimelinePoint] = []
        self._fallback_used = False

    # ---- decisions (from the host's validated update handler) ---------------------------------

    def refusal(self, actor_id: str) -> str | None:
        return decision_refusal(
            self.tally, actor_id, self._context.own_people, self._subject.own_refusal()
        )

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

    async def run(self) -> ApprovalResult:
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
        await self._ask(resolved.employee_ids, AskKind.ASK)
        await host.record()

        while True:
            result = outcome(self.tally, self._more_may_come())
            if result is not None:
                return self._close(
                    ApprovalResult.APPROVED
                    if result is StageOutcome.APPROVED
                    else ApprovalResult.DENIED,
                    result.value,
                )
            if host.interrupted(self._hard_stop):
                return self._close(ApprovalResult.INTERRUPTED, "withdrawn")
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

    async def _on_time(self, point: TimelinePoint) -> ApprovalResult | None:
        host, stage = self._host, self._stage
        fired = workflow.now()
        if point.kind is TimelineKind.REMINDER:
            waiting = self.tally.undecided
            host.tell(
                "reminder", SYSTEM, f"reminded {', '.join(waiting) or 'nobody'}", stage=self._index
            )
            await self._ask(waiting, AskKind.REMINDER)
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
            return self._close(ApprovalResult.DENIED, "timed out: denied")
        if stage.on_timeout is TimeoutOutcome.APPROVE:
            host.tell(
                "timeout",
                SYSTEM,
                f"{self._name}: nobody decided in time; approved by policy (no reviewer)",
            )
            return self._close(ApprovalResult.APPROVED, "timed out: approved by policy")
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
        await self._ask(added, AskKind.ESCALATION)

    # ---- helpers ------------------------------------------------------------------------------

    def _more_may_come(self) -> bool:
        levels = any(p.kind is TimelineKind.ESCALATION for p in self._timeline)
        fallback = self._stage.on_timeout is TimeoutOutcome.ESCALATE and not self._fallback_used
        return levels or fallback

    def _needs(self) -> str:
        return needs_text(self.tally.require)

    def _close(self, result: ApprovalResult, text: str) -> ApprovalResult:
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
        context = self._context
        return await self._host.resolve_approvers(
            ResolveApproversInput(
                sources=sources,
                beneficiary_manager_id=context.manager_id,
                owners=context.owners,
                exclude=context.own_people,
            )
        )

    async def _ask(self, approvers: list[str], kind: AskKind) -> None:
        if not approvers or self.view is None:
            return
        mail = self._subject.ask_mail(
            StageAsk(
                kind=kind, stage_name=self._name, needs=self._needs(), deadline=self.view.deadline
            )
        )
        await self._host.notify(approvers, mail.subject, mail.html)

    def describe(self) -> str:
        if self.view is None:
            return f"{self._name}: resolving approvers"
        waiting = ", ".join(self.tally.undecided) or "nobody"
        return (
            f"{self._name} ({self._round}) waits for {waiting} "
            f"(needs {self._needs()}) until {self.view.deadline:%Y-%m-%d %H:%M} UTC"
        )
