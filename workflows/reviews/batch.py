"""One stage of a review for one batch of items: load them, take the reviewers' decisions as
validated updates, and when the stage ends decide what silence means.

Every accepted decision is in the record before the update returns, so reminders (which read the
record) never reach a reviewer who has finished, and the report never misses a decision.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.approval.contract import DecisionRefusal
    from domain.reviews.campaign import (
        NOT_READY,
        NOT_READY_MESSAGE,
        BatchInput,
        BatchOutcome,
        BulkAnswer,
        BulkDecision,
        DeniedNow,
        EscalateInput,
        LoadBatchInput,
        RecordDecisionsInput,
        ReviewContract,
        ReviewerItemsQuery,
    )
    from domain.reviews.definition import ApplyWhen
    from domain.reviews.items import Outcome, ReviewerItem
    from domain.reviews.rules import (
        apply_bulk,
        close_items,
        decision_refusal,
        outcome_counts,
    )
    from domain.stubs import reviews as review_activity
    from workflows.steps.retry import REVIEW_STEP

# `ApplicationError.type` of a decision sent before the batch has loaded its items (the API
# retries it after a moment).
NOT_READY = "ReviewNotReady"
# Decisions are recorded in chunks of this many items (each a bounded activity payload).
RECORD_CHUNK = 1000


@workflow.defn(name=ReviewContract.BATCH_WORKFLOW)
class ReviewBatchWorkflow:
    def __init__(self) -> None:
        self._items: dict[str, ReviewerItem] = {}
        self._loaded = False
        self._closing = False
        self._input: BatchInput | None = None
        # Record writes in the order decisions were taken, so a later decision is never
        # overwritten by an earlier one whose write finished last.
        self._recording = asyncio.Lock()

    @workflow.run
    async def run(self, input: BatchInput) -> BatchOutcome:
        self._input = input
        stage = input.definition.stages[input.stage]
        items = input.items
        if items is None:
            loaded = await workflow.execute_activity(
                review_activity.load_batch,
                LoadBatchInput(campaign_id=input.campaign_id, stage=input.stage, batch=input.batch),
                **REVIEW_STEP,
            )
            items = loaded.items
        self._items = {i.item_id: i for i in items}
        self._loaded = True
        workflow.set_current_details(self._details())

        while not self._closing:
            timeout = input.ends_at - workflow.now()
            if timeout.total_seconds() <= 0:
                break
            try:
                await workflow.wait_condition(
                    lambda: self._closing or self._history_long(), timeout=timeout
                )
            except TimeoutError:
                break
            if not self._closing and self._history_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    input.model_copy(update={"items": list(self._items.values())})
                )
        self._closing = True
        # Decisions already accepted finish recording before silence is decided.
        await workflow.wait_condition(workflow.all_handlers_finished)

        closed = close_items(
            self._items, stage.no_response, stage.label(input.stage), workflow.now()
        )
        await self._record(closed)
        workflow.set_current_details(self._details())
        return BatchOutcome(batch=input.batch, outcomes=outcome_counts(self._items.values()))

    # ---- decisions -------------------------------------------------------------------------------

    @workflow.update(name=ReviewContract.DECIDE)
    async def decide(self, bulk: BulkDecision) -> BulkAnswer:
        changed = apply_bulk(self._items, bulk, workflow.now())
        handed = self._lock_denials(changed)
        workflow.set_current_details(self._details())
        await self._record(changed)
        if handed:
            # Recorded first: the campaign plans the removal from the record's stage rows.
            parent = workflow.info().parent
            assert parent is not None and self._input is not None
            await workflow.get_external_workflow_handle(parent.workflow_id).signal(
                ReviewContract.DENIED_NOW, DeniedNow(batch=self._input.batch, item_ids=handed)
            )
        return BulkAnswer(decided=len(changed), outcomes=outcome_counts(changed))

    def _lock_denials(self, changed: list[ReviewerItem]) -> list[str]:
        """apply.when decided: denials go to the campaign to remove now, within its cap, and can
        no longer change (locked at once, before another update can run)."""
        assert self._input is not None
        if (
            self._input.definition.apply.when is not ApplyWhen.DECIDED
            or workflow.info().parent is None
        ):
            return []
        denied = [i.item_id for i in changed if i.outcome is Outcome.DENIED]
        for item_id in denied:
            self._items[item_id].locked = True
        return denied

    @decide.validator
    def _validate_decide(self, bulk: BulkDecision) -> None:
        if not self._loaded:
            raise ApplicationError(NOT_READY_MESSAGE, type=NOT_READY)
        if self._closing:
            raise ApplicationError(
                "this review stage has ended: decisions are closed", type=DecisionRefusal.CLOSED
            )
        assert self._input is not None
        reason = decision_refusal(
            self._items,
            bulk,
            self._input.definition.stages[self._input.stage],
            self._input.definition.justification,
        )
        if reason is not None:
            raise ApplicationError(reason, type=DecisionRefusal.NOT_ALLOWED)

    @workflow.signal(name=ReviewContract.ESCALATE)
    def escalate(self, input: EscalateInput) -> None:
        """The fallback reviewers join the undecided items of reviewers who have not started."""
        idle = set(input.not_started)
        for item in self._items.values():
            if item.outcome is None and idle.intersection(item.reviewers):
                extra = [
                    r
                    for r in input.fallback
                    if r not in item.reviewers and r != item.holder_employee_id
                ]
                item.reviewers.extend(extra)

    @workflow.signal(name=ReviewContract.CLOSE)
    def close(self) -> None:
        self._closing = True

    @workflow.query(name=ReviewContract.ITEMS)
    def items(self, query: ReviewerItemsQuery) -> list[ReviewerItem]:
        if not self._loaded:
            # Not "no items": the caller asks again in a moment.
            raise ApplicationError(NOT_READY_MESSAGE, type=NOT_READY)
        return [i for i in self._items.values() if query.reviewer_id in i.reviewers]

    # ---- plumbing ----------------------------------------------------------------------------------

    def _history_long(self) -> bool:
        assert self._input is not None
        return workflow.info().get_current_history_length() > self._input.history_budget

    async def _record(self, changed: list[ReviewerItem]) -> None:
        assert self._input is not None
        async with self._recording:
            await self._record_in_order(changed)

    async def _record_in_order(self, changed: list[ReviewerItem]) -> None:
        assert self._input is not None
        for start in range(0, len(changed), RECORD_CHUNK):
            await workflow.execute_activity(
                review_activity.record_decisions,
                RecordDecisionsInput(
                    campaign_id=self._input.campaign_id,
                    stage=self._input.stage,
                    batch=self._input.batch,
                    items=changed[start : start + RECORD_CHUNK],
                ),
                **REVIEW_STEP,
            )

    def _details(self) -> str:
        decided = sum(1 for i in self._items.values() if i.outcome is not None)
        state = "closed" if self._closing else "open"
        return f"{state}: {decided} of {len(self._items)} item(s) decided"
