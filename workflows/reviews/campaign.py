"""A review campaign: snapshot the scope, run each stage as batch workflows, then apply the
removals within the policy's safeguards and leave the evidence in the record.

Started by its Schedule (`tenure schedules sync`) or by hand (`tenure reviews start`). Items live
in the record, never in this history: the campaign holds counts, so its history grows with the
number of batches (a thousand items each), not with the number of items.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.approval.contract import DecisionRefusal
    from domain.approval.timeline import TimelineKind, timeline
    from domain.policy.values import describe_duration
    from domain.reviews.campaign import (
        ApplyBatchInput,
        BatchInput,
        BatchOutcome,
        CampaignInput,
        CampaignProgress,
        CloseLeaversInput,
        ConfirmApplyInput,
        DeniedNow,
        EndStageInput,
        EscalateInput,
        NotStartedInput,
        OpenStageInput,
        Phase,
        PlanApplyInput,
        PlanItemsInput,
        RecordCampaignInput,
        RemindInput,
        ReviewContract,
        SnapshotInput,
        StageProgress,
        batch_workflow_id,
    )
    from domain.reviews.definition import ApplyWhen, ReviewStage
    from domain.reviews.items import ApplyState
    from domain.reviews.rules import over_cap, removal_share
    from domain.search_attributes import CAMPAIGN_PHASE, REVIEW_ID
    from domain.stubs import reviews as review_activity
    from workflows.reviews.batch import ReviewBatchWorkflow
    from workflows.steps.retry import REVIEW_BULK, REVIEW_STEP

# Removal batches applied at once: enough to keep Graph busy, few enough that a throttled
# tenant slows one campaign rather than every workflow on the queue.
APPLY_CONCURRENCY = 4


@workflow.defn(name=ReviewContract.CAMPAIGN_WORKFLOW)
class ReviewCampaignWorkflow:
    def __init__(self) -> None:
        self._progress: CampaignProgress | None = None
        self._end_stage: EndStageInput | None = None
        self._confirmation: ConfirmApplyInput | None = None
        self._batches: list[workflow.ChildWorkflowHandle] = []
        self._search_attributes = True
        # apply.when decided: denials handed over by batches, not yet planned; and how many of
        # them have been planned for removal (the running cap).
        self._denied_now: list[str] = []
        self._removed_now = 0
        self._stage_over = False

    @workflow.run
    async def run(self, input: CampaignInput) -> CampaignProgress:
        definition = input.definition
        campaign = workflow.info().workflow_id
        self._search_attributes = input.record_search_attributes
        progress = self._progress = CampaignProgress(
            campaign_id=campaign,
            review_id=input.review_id,
            name=definition.name,
            phase=Phase.SNAPSHOT,
            started_at=workflow.now(),
            stages=[
                StageProgress(index=i, name=s.label(i)) for i, s in enumerate(definition.stages)
            ],
            cap=definition.apply.max_removal_share,
            dry_run=definition.apply.dry_run,
        )
        await self._phase(Phase.SNAPSHOT, f"snapshotting the scope of {definition.name}")
        snapshot = await workflow.execute_activity(
            review_activity.snapshot,
            SnapshotInput(
                campaign_id=campaign,
                review_id=input.review_id,
                definition=definition,
                started_at=progress.started_at,
            ),
            **REVIEW_BULK,
        )
        progress.items = snapshot.items
        progress.snapshot = snapshot

        for index, stage in enumerate(definition.stages):
            await self._run_stage(input, index, stage)

        await self._apply(input)
        return progress

    # ---- stages --------------------------------------------------------------------------------

    async def _run_stage(self, input: CampaignInput, index: int, stage: ReviewStage) -> None:
        progress = self._require()
        campaign = progress.campaign_id
        view = progress.stages[index]
        progress.current_stage = index
        opened_at = workflow.now()
        ends_at = opened_at + stage.duration
        opened = await workflow.execute_activity(
            review_activity.open_stage,
            OpenStageInput(
                campaign_id=campaign,
                stage=index,
                definition=input.definition,
                batch_size=input.batch_size,
                ends_at=ends_at,
            ),
            **REVIEW_BULK,
        )
        view.items, view.batches = opened.items, opened.batches
        view.opened_at, view.ends_at = opened_at, ends_at
        if opened.items == 0:
            view.closed_at = opened_at
            await self._phase(Phase.REVIEWING, f"{view.name}: no items to review")
            return
        await self._phase(
            Phase.REVIEWING,
            f"{view.name}: {opened.items} item(s) in {opened.batches} batch(es), "
            f"ends {view.ends_at.isoformat()}",
        )
        self._end_stage = None
        # Started together: one workflow task for all of them, not one round trip each.
        self._batches = list(
            await asyncio.gather(
                *(
                    workflow.start_child_workflow(
                        ReviewBatchWorkflow.run,
                        BatchInput(
                            campaign_id=campaign,
                            review_id=input.review_id,
                            stage=index,
                            batch=batch,
                            ends_at=view.ends_at,
                            definition=input.definition,
                        ),
                        id=batch_workflow_id(campaign, index, batch),
                        static_summary=f"{input.definition.name}: {view.name}, batch {batch + 1}",
                        parent_close_policy=ParentClosePolicy.TERMINATE,
                    )
                    for batch in range(opened.batches)
                )
            )
        )

        applier = None
        if input.definition.apply.when is ApplyWhen.DECIDED:
            self._stage_over = False
            applier = asyncio.create_task(self._apply_as_decided(input))

        points = timeline(
            opened_at,
            stage.duration,
            list(stage.reminders),
            [stage.escalate_after] if stage.escalate_after is not None else [],
        )
        for point in points:
            if point.kind is TimelineKind.DEADLINE:
                break
            if await self._until(point.at):
                break  # an operator ended the stage
            if point.kind is TimelineKind.REMINDER:
                await workflow.execute_activity(
                    review_activity.remind,
                    RemindInput(
                        campaign_id=campaign,
                        review_name=input.definition.name,
                        stage=index,
                        stage_name=view.name,
                        ends_at=view.ends_at,
                        lead=describe_duration(stage.reminders[point.index]),
                    ),
                    **REVIEW_STEP,
                )
            else:
                idle = await workflow.execute_activity(
                    review_activity.find_not_started,
                    NotStartedInput(campaign_id=campaign, stage=index, definition=input.definition),
                    **REVIEW_STEP,
                )
                if idle.reviewers and idle.fallback:
                    escalation = EscalateInput(not_started=idle.reviewers, fallback=idle.fallback)
                    await asyncio.gather(
                        *(b.signal(ReviewContract.ESCALATE, escalation) for b in self._batches)
                    )
        if self._end_stage is None:
            await self._until(view.ends_at)
        if self._end_stage is not None:
            # The batches' own timers are still running: tell them to close now.
            await asyncio.gather(*(b.signal(ReviewContract.CLOSE) for b in self._batches))
        outcomes: list[BatchOutcome] = list(await asyncio.gather(*self._batches))
        self._batches = []
        if applier is not None:
            self._stage_over = True  # every batch has closed: nothing more is handed over
            await applier
        counts: dict[str, int] = {}
        for outcome in outcomes:
            for key, n in outcome.outcomes.items():
                counts[key] = counts.get(key, 0) + n
        view.outcomes = counts
        view.closed_at = workflow.now()
        left = await workflow.execute_activity(
            review_activity.close_leavers,
            CloseLeaversInput(campaign_id=campaign),
            **REVIEW_STEP,
        )
        if left.items:
            view.outcomes["left"] = left.items
        await self._record()

    async def _until(self, at: datetime) -> bool:
        """Sleep until `at`; True when an operator ended the stage first."""
        timeout = at - workflow.now()
        if timeout.total_seconds() > 0 and self._end_stage is None:
            try:
                await workflow.wait_condition(lambda: self._end_stage is not None, timeout=timeout)
            except TimeoutError:
                pass
        return self._end_stage is not None

    # ---- apply ---------------------------------------------------------------------------------

    async def _apply(self, input: CampaignInput) -> None:
        progress = self._require()
        settings = input.definition.apply
        progress.current_stage = None
        plan = await workflow.execute_activity(
            review_activity.plan_apply,
            PlanApplyInput(campaign_id=progress.campaign_id, definition=input.definition),
            **REVIEW_STEP,
        )
        progress.removals = plan.removals
        progress.removal_share = removal_share(plan.removals, plan.items)
        not_applied: str | None = None
        if plan.removals and not settings.dry_run:
            capped = over_cap(plan.removals, plan.items, settings)
            if capped or not settings.auto_apply:
                why = (
                    f"{plan.removals} removal(s) are {progress.removal_share:.1%} of "
                    f"{plan.items} item(s), over the cap of {settings.max_removal_share:.0%}"
                    if capped
                    else f"{plan.removals} removal(s) wait for an operator (auto_apply is off)"
                )
                progress.waiting_for = f"{why}: confirm or abort (tenure reviews confirm)"
                await self._phase(Phase.AWAITING_CONFIRMATION, progress.waiting_for)
                try:
                    await workflow.wait_condition(
                        lambda: self._confirmation is not None, timeout=settings.confirm_within
                    )
                except TimeoutError:
                    self._confirmation = ConfirmApplyInput(
                        actor_id="rule",
                        confirm=False,
                        reason=f"not confirmed within {describe_duration(settings.confirm_within)}",
                    )
                assert self._confirmation is not None
                progress.waiting_for = ""
                if not self._confirmation.confirm:
                    who = self._confirmation.actor_id
                    not_applied = f"aborted by {who}: {self._confirmation.reason}"
        if plan.removals:
            verb = "would remove (dry run)" if settings.dry_run else "removing"
            await self._phase(
                Phase.APPLYING if not_applied is None else Phase.ABORTED,
                f"{verb} {plan.removals} item(s)" if not_applied is None else not_applied,
            )
            limit = asyncio.Semaphore(APPLY_CONCURRENCY)

            async def one(batch: int) -> dict[str, int]:
                async with limit:
                    result = await workflow.execute_activity(
                        review_activity.apply_batch,
                        ApplyBatchInput(
                            campaign_id=progress.campaign_id,
                            review_name=input.definition.name,
                            batch=batch,
                            dry_run=settings.dry_run,
                            not_applied_reason=not_applied,
                        ),
                        **REVIEW_BULK,
                    )
                return result.applied

            # Every batch's answer counts all it holds, those applied as decided included.
            progress.applied = {}
            for applied in await asyncio.gather(*(one(b) for b in plan.batches)):
                for key, n in applied.items():
                    progress.applied[key] = progress.applied.get(key, 0) + n
        if plan.protected:
            key = ApplyState.NOT_APPLIED.value
            progress.applied[key] = progress.applied.get(key, 0) + plan.protected
        progress.finished_at = workflow.now()
        final = Phase.ABORTED if not_applied is not None else Phase.COMPLETED
        await self._phase(final, self._summary())

    def _summary(self) -> str:
        progress = self._require()
        applied = ", ".join(f"{k} {n}" for k, n in sorted(progress.applied.items())) or "none"
        dry = "dry run: " if progress.dry_run else ""
        return f"{dry}{progress.items} item(s) reviewed; {progress.removals} denied; applied: {applied}"

    async def _apply_as_decided(self, input: CampaignInput) -> None:
        """Remove denials as they are made, while the share removed stays within the cap; what
        would pass it waits for the end, where the cap pauses the campaign as usual."""
        progress = self._require()
        settings = input.definition.apply
        limit = int(settings.max_removal_share * progress.items)
        while True:
            await workflow.wait_condition(lambda: bool(self._denied_now) or self._stage_over)
            if not self._denied_now:
                return
            room = max(limit - self._removed_now, 0)
            now, self._denied_now = self._denied_now[:room], []
            if not now:
                continue  # over the cap: left for the end
            planned = await workflow.execute_activity(
                review_activity.plan_items,
                PlanItemsInput(campaign_id=progress.campaign_id, item_ids=now),
                **REVIEW_STEP,
            )
            self._removed_now += planned.planned
            if planned.batch is None:
                continue
            workflow.set_current_details(f"removing {planned.planned} item(s) as decided")
            result = await workflow.execute_activity(
                review_activity.apply_batch,
                ApplyBatchInput(
                    campaign_id=progress.campaign_id,
                    review_name=input.definition.name,
                    batch=planned.batch,
                    dry_run=settings.dry_run,
                ),
                **REVIEW_BULK,
            )
            for key, n in result.applied.items():
                progress.applied[key] = progress.applied.get(key, 0) + n

    @workflow.signal(name=ReviewContract.DENIED_NOW)
    def denied_now(self, input: DeniedNow) -> None:
        self._denied_now.extend(i for i in input.item_ids if i not in self._denied_now)

    # ---- operators -------------------------------------------------------------------------------

    @workflow.update(name=ReviewContract.CONFIRM_APPLY)
    def confirm_apply(self, input: ConfirmApplyInput) -> CampaignProgress:
        self._confirmation = input
        return self._require()

    @confirm_apply.validator
    def _validate_confirm(self, input: ConfirmApplyInput) -> None:
        progress = self._progress
        if progress is None or progress.phase is not Phase.AWAITING_CONFIRMATION:
            phase = progress.phase.value if progress else "starting"
            raise ApplicationError(
                f"nothing waits for confirmation: the campaign is {phase}",
                type=DecisionRefusal.CLOSED,
            )
        if self._confirmation is not None:
            raise ApplicationError("already answered", type=DecisionRefusal.CLOSED)

    @workflow.update(name=ReviewContract.END_STAGE)
    def end_stage(self, input: EndStageInput) -> CampaignProgress:
        self._end_stage = input
        return self._require()

    @end_stage.validator
    def _validate_end_stage(self, input: EndStageInput) -> None:
        progress = self._progress
        if progress is None or progress.phase is not Phase.REVIEWING or not self._batches:
            raise ApplicationError("no review stage is open", type=DecisionRefusal.CLOSED)
        if self._end_stage is not None:
            raise ApplicationError("the stage is already ending", type=DecisionRefusal.CLOSED)

    @workflow.query(name=ReviewContract.PROGRESS)
    def progress(self) -> CampaignProgress:
        return self._require()

    # ---- plumbing --------------------------------------------------------------------------------

    def _require(self) -> CampaignProgress:
        if self._progress is None:
            raise ApplicationError("the campaign has not started yet")
        return self._progress

    async def _phase(self, phase: Phase, details: str) -> None:
        progress = self._require()
        progress.phase = phase
        workflow.set_current_details(details)
        if self._search_attributes:
            workflow.upsert_search_attributes(
                [REVIEW_ID.value_set(progress.review_id), CAMPAIGN_PHASE.value_set(phase.value)]
            )
        await self._record()

    async def _record(self) -> None:
        await workflow.execute_activity(
            review_activity.record_campaign,
            RecordCampaignInput(progress=self._require()),
            **REVIEW_STEP,
        )
