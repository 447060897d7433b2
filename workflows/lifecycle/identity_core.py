"""The identity entity's shared state and bookkeeping: logging outcomes, stage and search
attributes, what is scheduled, starting a transition, and copying access changes to the record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ChildWorkflowError

from workflows.lifecycle import identity_suspend

with workflow.unsafe.imports_passed_through():
    from domain.audit import AccessChange, RecordAccessChangesInput
    from domain.lifecycle import ledger
    from domain.lifecycle.events import HrEvent
    from domain.lifecycle.identity import (
        AppliedEvent,
        EventOutcome,
        IdentityState,
        IdentityWorkflowInput,
        LifecycleStage,
        ScheduledChange,
    )
    from domain.provisioning import SetAccountEnabledInput
    from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE, TRANSITION_TYPE
    from domain.stubs import graph as graph_activity
    from domain.stubs import record as record_activity
    from workflows.steps.retry import PROVISIONING, RECORD_LOCAL

CHILD_TASK_TIMEOUT = timedelta(seconds=30)
R = TypeVar("R")
# Mark runs that copy their access changes to the access record: first as an activity (added with
# access requests), then as a local activity, which spares the server a task per transition.
ACCESS_RECORD_PATCH = "access-record"
ACCESS_RECORD_LOCAL_PATCH = "access-record-local"
# Mark runs whose rehires and moves leave sign-in off while an incident holds the person (before
# it, they turned it back on until the restore).
SUSPENSION_HOLDS_SIGN_IN_PATCH = "suspension-holds-sign-in"


class IdentityCore:
    """State and bookkeeping every part of the identity entity shares (set up by its __init__)."""

    _input: IdentityWorkflowInput
    _state: IdentityState
    _digests: dict[str, str]
    _pending: list[HrEvent]
    _wakes: int
    _child: asyncio.Task[None] | None
    _running: tuple[str, str] | None  # (kind, child workflow id) of the running transition
    _hire: HrEvent | None
    _before_hire: IdentityState | None
    _withdrawn_by: HrEvent | None
    _tell_left: list[str]

    @property
    def _child_kind(self) -> str | None:
        return self._running[0] if self._running else None

    async def _record_access_changes(self, changes: list[AccessChange]) -> None:
        """Copy access changes to the access record. The markers keep older histories replaying:
        without either, the copy did not exist; with the first only, it was a (remote) activity."""
        if not changes:
            return
        record = RecordAccessChangesInput(changes=changes)
        if workflow.patched(ACCESS_RECORD_LOCAL_PATCH):
            # A local write in the worker's own store: a local activity, at least once.
            await workflow.execute_local_activity(
                record_activity.record_access_changes, record, **RECORD_LOCAL
            )
        elif workflow.patched(ACCESS_RECORD_PATCH):
            await workflow.execute_activity(
                record_activity.record_access_changes, record, **PROVISIONING
            )

    def _sign_in_held_by(self) -> str | None:
        """The incident holding the person, told to a rehire or a move so it leaves sign-in off."""
        suspension = self._state.suspension
        if suspension is None or not workflow.patched(SUSPENSION_HOLDS_SIGN_IN_PATCH):
            return None
        return suspension.incident_id

    async def _keep_sign_in_held(self, told: str | None) -> str | None:
        """After a rehire or a move, make sign-in what the suspension says now: a suspension
        that began while it ran (so it was not told) may have seen sign-in turned back on, and
        one lifted while it ran may have seen the restore's sign-in turned off again by it. Says
        which incident holds the person, if one does."""
        suspension, user_id = self._state.suspension, self._state.graph_user_id
        if suspension is None:
            if told is not None and user_id and self._state.stage is LifecycleStage.ACTIVE:
                await self._set_sign_in(user_id, enabled=True)
            return None
        if told is None and user_id:
            if not workflow.patched(SUSPENSION_HOLDS_SIGN_IN_PATCH):
                return None
            await self._set_sign_in(user_id, enabled=False)
        return suspension.incident_id

    async def _set_sign_in(self, user_id: str, *, enabled: bool) -> None:
        await workflow.execute_activity(
            graph_activity.set_account_enabled,
            SetAccountEnabledInput(user_id=user_id, enabled=enabled),
            **PROVISIONING,
        )

    async def _run_child(
        self,
        name: str,
        arg: Any,
        result_type: type[R],
        *,
        child_id: str,
        summary: str,
        transition: str,
        on_failure: Callable[[str], None],
    ) -> R | None:
        """Run one transition's child workflow to its end: its result, or None once `on_failure`
        has been told why it failed (the child already retried what could be retried)."""
        try:
            return await workflow.execute_child_workflow(
                name,
                arg,
                id=child_id,
                result_type=result_type,
                static_summary=summary,
                search_attributes=self._child_search_attributes(transition),
                task_timeout=CHILD_TASK_TIMEOUT,
            )
        except ChildWorkflowError as err:
            on_failure(str(err.cause or err))
            return None

    def _start(self, kind: str, child_id: str, work: Coroutine[Any, Any, None]) -> None:
        async def run_and_wake() -> None:
            try:
                await work
            finally:
                self._child = None
                self._running = None
                self._wakes += 1

        self._running = (kind, child_id)
        self._child = asyncio.create_task(run_and_wake())

    # ---- bookkeeping ----------------------------------------------------------------------------

    def _log(
        self, event: HrEvent, outcome: EventOutcome, reason: str = "", transition: str | None = None
    ) -> None:
        self._record(
            event.event_id, event.type.value, event.effective_at, outcome, reason, transition
        )

    def _record(
        self,
        event_id: str,
        type: str,
        effective_at: datetime,
        outcome: EventOutcome,
        reason: str = "",
        transition: str | None = None,
    ) -> None:
        self._state.history.append(
            AppliedEvent(
                event_id=event_id,
                type=type,
                effective_at=effective_at,
                received_at=workflow.now(),
                outcome=outcome,
                reason=reason,
                transition_workflow_id=transition,
            )
        )
        del self._state.history[: -self._input.history_limit]

    def _set_stage(self, stage: LifecycleStage) -> None:
        if stage is not self._state.stage:
            self._state.stage = stage
            self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        if self._input.record_search_attributes:
            workflow.upsert_search_attributes(
                [
                    EMPLOYEE_ID.value_set(self._state.employee_id),
                    LIFECYCLE_STAGE.value_set(identity_suspend.shown_stage(self._state).value),
                ]
            )

    def _child_search_attributes(self, transition: str) -> TypedSearchAttributes | None:
        if not self._input.record_search_attributes:
            return None
        return TypedSearchAttributes(
            [
                SearchAttributePair(EMPLOYEE_ID, self._state.employee_id),
                SearchAttributePair(TRANSITION_TYPE, transition),
            ]
        )

    def _schedule(self) -> list[ScheduledChange]:
        now = workflow.now()
        changes = [
            ScheduledChange(at=e.effective_at, what=f"{e.type.value} {e.event_id}")
            for e in self._pending
            if e.effective_at > now
        ]
        if self._hire is not None and self._hire.effective_at > now:
            changes.append(
                ScheduledChange(at=self._hire.effective_at, what="enable account (start date)")
            )
        for removal in self._state.pending_removals:
            changes.append(
                ScheduledChange(
                    at=removal.due_at,
                    what=f"remove {removal.target} (grace period after {removal.event_id})",
                )
            )
        if self._state.retention_due_at is not None:
            changes.append(
                ScheduledChange(
                    at=self._state.retention_due_at, what="delete accounts (retention over)"
                )
            )
        return sorted(changes, key=lambda c: c.at)

    def _snapshot(self) -> IdentityState:
        state = self._state.model_copy(deep=True)
        state.seen_event_ids = sorted(self._digests)
        state.event_digests = {k: v for k, v in self._digests.items() if v}
        state.scheduled = self._schedule()
        state.running_transition = self._running[1] if self._running else None
        state.holdings = ledger.identity_holdings(state)
        state.stage = identity_suspend.shown_stage(state)
        return state

    def _show(self) -> None:
        parts = [f"stage {identity_suspend.shown_stage(self._state).value}"]
        if self._running:
            parts.append(f"running {self._running[1]}")
        if self._pending:
            parts.append(f"{len(self._pending)} event(s) pending")
        for change in self._schedule():
            parts.append(f"{change.what} at {change.at:%Y-%m-%d %H:%M} UTC")
        workflow.set_current_details("; ".join(parts))
