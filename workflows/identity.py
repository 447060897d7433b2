"""The identity entity: one long-lived workflow per person, `identity-{employee_id}` (DESIGN.md rule 2).

HR events arrive by signal-with-start and are applied by effective time. A terminate (or update) dated
in the future waits here, on a timer that every new signal interrupts, so later events can still
arrive and correct it; a hire starts its joiner at once (the joiner waits for the pre-hire day
itself). Each transition (joiner, mover, leaver, retention, the end of a mover's grace period) runs
as its own child workflow, one at a time, concurrently with this event loop, so an operator can read
it on its own in Temporal UI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, ChildWorkflowError

from workflows import identity_access

with workflow.unsafe.imports_passed_through():
    from domain.access_request import AccessRequestContract, BeneficiaryLeft
    from domain.audit import AccessChange, AuditActivityNames, RecordAccessChangesInput
    from domain.events import EventType, HrEvent, WorkerRecord
    from domain.identity import (
        AccessItem,
        AccessRequestChanged,
        AppliedEvent,
        EventOutcome,
        IdentityContract,
        IdentityState,
        IdentityWorkflowInput,
        LifecycleStage,
        PendingRemoval,
        ReserveAccessInput,
        ReserveAccessResult,
        ScheduledChange,
    )
    from domain.joiner import JoinerContract, JoinerInput, JoinerResult, joiner_workflow_id
    from domain.leaver import (
        LeaverContract,
        LeaverInput,
        LeaverResult,
        RetentionContract,
        RetentionInput,
        RetentionResult,
        leaver_workflow_id,
        retention_workflow_id,
    )
    from domain.lifecycle_record import birthright_grants, item_resources, removals
    from domain.mover import (
        GraceRemovalContract,
        GraceRemovalInput,
        GraceRemovalResult,
        MoverContract,
        MoverInput,
        MoverResult,
        changed_fields,
        grace_removal_workflow_id,
        is_move,
        merged_record,
        mover_workflow_id,
    )
    from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE, TRANSITION_TYPE
    from workflows.retry import PROVISIONING

CHILD_TASK_TIMEOUT = timedelta(seconds=30)
# Marks runs that copy their access changes to the access record (added with access requests).
ACCESS_RECORD_PATCH = "access-record"


@workflow.defn(name=IdentityContract.WORKFLOW)
class IdentityWorkflow:
    @workflow.init
    def __init__(self, input: IdentityWorkflowInput) -> None:
        self._input = input
        self._state = input.state or IdentityState(employee_id=input.employee_id)
        self._seen = set(self._state.seen_event_ids)
        # Received, not yet applied; kept in arrival order, applied in effective-time order.
        self._pending: list[HrEvent] = list(input.pending)
        # Bumped by every signal and every transition that ends: wakes the event loop.
        self._wakes = 0
        # The transition running now (at most one), as a task awaiting its child workflow.
        self._child: asyncio.Task[None] | None = None
        self._child_kind: str | None = None
        # While a joiner runs: its hire, what the identity was before it, and a withdrawal.
        self._hire: HrEvent | None = None
        self._before_hire: IdentityState | None = None
        self._withdrawn_by: HrEvent | None = None
        # Access requests to tell that the person left (sent by the event loop, not a handler).
        self._tell_left: list[str] = []
        self._left_event: HrEvent | None = None

    @workflow.signal(name=IdentityContract.SIGNAL_HR_EVENT)
    def hr_event(self, event: HrEvent) -> None:
        # event_id is the idempotency key: a repeat is acknowledged (the signal is in history) but
        # applied once, whether the first copy is still pending or long done.
        if event.event_id in self._seen:
            self._log(event, EventOutcome.DUPLICATE, "event_id already received")
            return
        self._seen.add(event.event_id)
        if event.type is EventType.TERMINATE:
            self._supersede_terminates(event)
        self._pending.append(event)
        if self._held(event):
            self._log(
                event,
                EventOutcome.HELD,
                "not hired yet: held, and applied once a hire has been applied",
            )
        self._wakes += 1
        self._show()

    @workflow.query(name=IdentityContract.QUERY_DETAILS)
    def details(self) -> IdentityState:
        return self._snapshot()

    @workflow.update(name=IdentityContract.UPDATE_RESERVE_ACCESS)
    def reserve_access(self, request: ReserveAccessInput) -> ReserveAccessResult:
        result = identity_access.reserve(self._state, request)
        self._wakes += 1
        return result

    @reserve_access.validator
    def _reserve_allowed(self, request: ReserveAccessInput) -> None:
        known = any(h.request_id == request.request_id for h in self._state.packages)
        refusal = None if known else identity_access.reserve_refusal(self._state)
        if refusal is not None:
            raise ApplicationError(refusal, type="NotActive")

    @workflow.signal(name=IdentityContract.SIGNAL_ACCESS_REQUEST_CHANGED)
    def access_request_changed(self, change: AccessRequestChanged) -> None:
        identity_access.apply_change(self._state, change)
        # A grant that lands while (or after) the person leaves is taken back at once.
        if change.status == "granted" and self._state.stage in (
            LifecycleStage.DISABLED,
            LifecycleStage.DELETED,
        ):
            self._tell_left.append(change.request_id)
        self._wakes += 1

    @workflow.run
    async def run(self, input: IdentityWorkflowInput) -> None:
        # EmployeeId and LifecycleStage are set when the intake starts this workflow (and carried
        # over by continue-as-new); they are written again only when the stage changes.
        while True:
            await self._tell_requests_left()
            if not self._step():
                await self._idle()
            self._show()
            # Continue-as-new only between transitions: a child's result reaches only the run that
            # started it, so a run with a child in flight keeps going until the child closes.
            if (
                self._child is None
                and not self._tell_left
                and workflow.info().is_continue_as_new_suggested()
            ):
                # Signals may still be landing: let their handlers finish so nothing is dropped.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    IdentityWorkflowInput(
                        employee_id=input.employee_id,
                        state=self._snapshot(),
                        pending=self._pending,
                        record_search_attributes=input.record_search_attributes,
                        history_limit=input.history_limit,
                    )
                )

    # ---- the event loop -------------------------------------------------------------------------

    def _step(self) -> bool:
        """Do the next thing that is due, if any; False when everything waits."""
        withdrawal = self._withdrawing_terminate()
        if withdrawal is not None:
            self._pending.remove(withdrawal)
            self._withdrawn_by = withdrawal
            assert self._child is not None
            self._child.cancel()
            return True
        if self._child is not None:
            return False  # one transition at a time: the next event waits for this one
        event = self._next_ready()
        due = self._state.retention_due_at
        if due is not None and due <= workflow.now():
            if event is None or event.effective_at > due:
                self._start_retention()
                return True
        removal = self._next_removal_at()
        if removal is not None and removal <= workflow.now():
            if event is None or event.effective_at > removal:
                self._start_grace_removal()
                return True
        if event is None:
            return False
        self._pending.remove(event)
        if event.type is EventType.HIRE:
            self._apply_hire(event)
        elif event.type is EventType.TERMINATE:
            self._apply_terminate(event)
        else:
            self._apply_update(event)
        return True

    def _held(self, event: HrEvent) -> bool:
        # A terminate for someone never hired waits for a hire (posted later, perhaps dated
        # earlier) instead of being thrown away: the same events in any order end the same.
        return event.type is EventType.TERMINATE and self._state.stage is LifecycleStage.NONE

    def _next_event(self) -> HrEvent | None:
        # Earliest effective time first; equal times in arrival order (min keeps the first).
        candidates = (e for e in self._pending if not self._held(e))
        return min(candidates, key=lambda e: e.effective_at, default=None)

    def _next_ready(self) -> HrEvent | None:
        event = self._next_event()
        if event is None:
            return None
        # A hire that can start a joiner starts it at once (the joiner waits for the pre-hire day
        # itself). Other events wait for their effective time, and so does everything dated after
        # them; so does a hire for someone hired today, since a leave may still come before it.
        if event.effective_at <= workflow.now():
            return event
        hired = self._state.stage in (LifecycleStage.PRE_HIRE, LifecycleStage.ACTIVE)
        return event if event.type is EventType.HIRE and not hired else None

    def _withdrawing_terminate(self) -> HrEvent | None:
        """A terminate dated no later than the start of the hire whose joiner is running."""
        if self._child_kind != "joiner" or self._hire is None or self._withdrawn_by is not None:
            return None
        start = self._hire.effective_at
        return next(
            (e for e in self._pending if e.type is EventType.TERMINATE and e.effective_at <= start),
            None,
        )

    async def _idle(self) -> None:
        """Sleep until a signal arrives, a transition ends, or the next dated thing falls due."""
        wakes = self._wakes
        deadline: datetime | None = None
        if self._child is None:
            event = self._next_event()
            candidates = [
                self._state.retention_due_at,
                event.effective_at if event else None,
                self._next_removal_at(),
            ]
            deadline = min((c for c in candidates if c is not None), default=None)
        timeout = None if deadline is None else max(deadline - workflow.now(), timedelta(0))
        if self._tell_left:
            return
        try:
            await workflow.wait_condition(
                lambda: self._wakes != wakes,
                timeout=timeout,
                timeout_summary=None if deadline is None else f"next change {deadline:%Y-%m-%d}",
            )
        except TimeoutError:
            pass  # something fell due

    async def _record_access_changes(self, changes: list[AccessChange]) -> None:
        """Copy access changes to the access record. Histories recorded before the record
        existed replay without this activity, hence the patch marker."""
        if not changes or not workflow.patched(ACCESS_RECORD_PATCH):
            return
        await workflow.execute_activity(
            AuditActivityNames.RECORD_ACCESS_CHANGES,
            RecordAccessChangesInput(changes=changes),
            **PROVISIONING,
        )

    async def _tell_requests_left(self) -> None:
        """Tell each access request of a person who left: pending ones are cancelled, granted
        ones removed. A request that closed meanwhile is simply gone."""
        while self._tell_left:
            request_id = self._tell_left.pop(0)
            event = self._left_event
            left = BeneficiaryLeft(
                event_id=event.event_id if event else "unknown",
                effective_at=event.effective_at if event else workflow.now(),
            )
            try:
                await workflow.get_external_workflow_handle(request_id).signal(
                    AccessRequestContract.SIGNAL_BENEFICIARY_LEFT, left
                )
            except ApplicationError as err:
                workflow.logger.info("access request %s not told of the leave: %s", request_id, err)

    def _supersede_terminates(self, newer: HrEvent) -> None:
        # HR corrects a leave date by sending another terminate: the newer one replaces a pending
        # one, unless a hire lies between the two dates (leave, rehire, leave again).
        for older in [e for e in self._pending if e.type is EventType.TERMINATE]:
            low, high = sorted((older.effective_at, newer.effective_at))
            if any(
                e.type is EventType.HIRE and low < e.effective_at <= high for e in self._pending
            ):
                continue
            self._pending.remove(older)
            self._log(
                older,
                EventOutcome.IGNORED,
                f"superseded by terminate {newer.event_id} (leave {newer.effective_at:%Y-%m-%d})",
            )

    def _start(self, kind: str, child_id: str, work: Coroutine[Any, Any, None]) -> None:
        async def run_and_wake() -> None:
            try:
                await work
            finally:
                self._child = None
                self._child_kind = None
                self._state.running_transition = None
                self._wakes += 1

        self._child_kind = kind
        self._state.running_transition = child_id
        self._child = asyncio.create_task(run_and_wake())

    # ---- hire (joiner, rehire) ------------------------------------------------------------------

    def _apply_hire(self, event: HrEvent) -> None:
        stage = self._state.stage
        if stage in (LifecycleStage.PRE_HIRE, LifecycleStage.ACTIVE):
            self._log(event, EventOutcome.IGNORED, f"already hired (stage {stage.value})")
            return
        # A disabled identity inside retention is a rehire: the same accounts are re-enabled (the
        # joiner finds them by employeeId) and the pending deletion is cancelled. After deletion
        # (or never hired), the joiner creates fresh accounts.
        rehire = stage is LifecycleStage.DISABLED
        self._before_hire = self._state.model_copy(deep=True)
        self._hire = event
        self._state.worker = event.worker
        self._state.record_as_of = event.effective_at
        self._state.hire_date = event.effective_at
        self._state.retention_due_at = None
        if event.effective_at > workflow.now():
            self._set_stage(LifecycleStage.PRE_HIRE)
        child_id = joiner_workflow_id(event.worker.employee_id, event.event_id)
        self._start("joiner", child_id, self._run_joiner(event, child_id, rehire))

    async def _run_joiner(self, event: HrEvent, child_id: str, rehire: bool) -> None:
        worker = event.worker
        try:
            result: JoinerResult = await workflow.execute_child_workflow(
                JoinerContract.WORKFLOW,
                JoinerInput(
                    employee_id=worker.employee_id,
                    event_id=event.event_id,
                    worker=worker,
                    start_at=event.effective_at,
                    rehire=rehire,
                    existing_apps=(
                        [a.target for a in self._state.access if a.kind == "scim_app"]
                        if rehire
                        else []
                    ),
                ),
                id=child_id,
                result_type=JoinerResult,
                static_summary=(
                    f"{'Rehire' if rehire else 'Joiner'} {worker.employee_id}: "
                    f"{worker.department or 'no department'}, starts {event.effective_at:%Y-%m-%d}"
                ),
                search_attributes=self._child_search_attributes("joiner"),
                task_timeout=CHILD_TASK_TIMEOUT,
            )
        except (ChildWorkflowError, asyncio.CancelledError) as err:
            self._hire = None
            if self._withdrawn_by is not None:
                self._withdrawn(event, child_id, rehire)
            else:
                cause = err.cause if isinstance(err, ChildWorkflowError) else None
                self._log(event, EventOutcome.FAILED, f"joiner failed: {cause or err}", child_id)
            return
        self._hire = None
        if self._withdrawn_by is not None:
            # The joiner finished before the cancellation reached it: the person is provisioned,
            # so the terminate is a leave like any other and goes back to wait for its date.
            self._pending.append(self._withdrawn_by)
            self._withdrawn_by = None
        self._state.graph_user_id = result.user_id
        self._state.user_principal_name = result.user_principal_name
        self._state.access = [
            AccessItem(kind="graph_group", target=g.group, rule=g.rule) for g in result.groups
        ] + [
            AccessItem(kind="scim_app", target=a.app, rule=a.rule, roles=a.roles)
            for a in result.apps
        ]
        self._state.leave_event_id = None
        self._state.leave_date = None
        self._set_stage(LifecycleStage.ACTIVE)
        await self._record_access_changes(
            birthright_grants(
                self._state.employee_id,
                event.event_id,
                "rehire" if rehire else "hire",
                workflow.now(),
                self._state.access,
            )
        )
        notes = ["rehire: earlier accounts re-enabled, deletion cancelled"] if rehire else []
        if event.type is EventType.UPDATE:
            notes.append("initial load: first event for this identity, applied as a hire")
        self._log(event, EventOutcome.APPLIED, "; ".join(notes + result.warnings), child_id)

    def _withdrawn(self, hire: HrEvent, child_id: str, rehire: bool) -> None:
        terminate, self._withdrawn_by = self._withdrawn_by, None
        assert terminate is not None and self._before_hire is not None
        # Back to what the identity was before the hire (never hired, deleted, or disabled with
        # its retention period running on), keeping the log and the events received since.
        before = self._before_hire
        self._state.worker = before.worker
        self._state.hire_date = before.hire_date
        self._state.retention_due_at = before.retention_due_at
        self._set_stage(before.stage)
        self._log(
            hire,
            EventOutcome.IGNORED,
            f"withdrawn before its start date by terminate {terminate.event_id}",
            child_id,
        )
        undone = (
            "earlier accounts disabled again, retention continues"
            if rehire
            else "the accounts it had created are deleted"
        )
        self._log(
            terminate,
            EventOutcome.APPLIED,
            f"hire {hire.event_id} withdrawn before its start date: joiner cancelled, {undone}",
            child_id,
        )

    # ---- update (mover) -------------------------------------------------------------------------

    def _apply_update(self, event: HrEvent) -> None:
        state = self._state
        stage = state.stage
        if stage is LifecycleStage.NONE:
            # The first Tenure hears of this person (an initial load from HR): a hire, at once.
            self._apply_hire(event)
            return
        if state.record_as_of is not None and event.effective_at < state.record_as_of:
            # Arrived late, after a newer record was applied: applying it would undo that one.
            self._log(
                event,
                EventOutcome.IGNORED,
                f"stale: the record effective {state.record_as_of:%Y-%m-%d %H:%M} UTC is newer",
            )
            return
        record = merged_record(state.worker, event.worker)
        if stage is not LifecycleStage.ACTIVE or state.graph_user_id is None:
            # Nobody to move: the record is kept (a rehire brings its own), no access changes.
            state.worker = record
            state.record_as_of = event.effective_at
            reason = {
                LifecycleStage.PRE_HIRE: "the hire did not complete",
                LifecycleStage.DISABLED: "left",
                LifecycleStage.DELETED: "left and deleted",
            }.get(stage, f"stage {stage.value}")
            self._log(
                event, EventOutcome.IGNORED, f"not active ({reason}): record kept, access unchanged"
            )
            return
        if not changed_fields(state.worker, record):
            state.worker = record
            state.record_as_of = event.effective_at
            self._log(event, EventOutcome.APPLIED, "no change")
            return
        child_id = mover_workflow_id(state.employee_id, event.event_id)
        self._start("mover", child_id, self._run_mover(event, record, child_id))

    async def _run_mover(self, event: HrEvent, record: WorkerRecord, child_id: str) -> None:
        state = self._state
        assert state.graph_user_id is not None
        changes = changed_fields(state.worker, record)
        what = ", ".join(c.field for c in changes)
        try:
            result: MoverResult = await workflow.execute_child_workflow(
                MoverContract.WORKFLOW,
                MoverInput(
                    employee_id=state.employee_id,
                    event_id=event.event_id,
                    old_worker=state.worker,
                    worker=record,
                    user_id=state.graph_user_id,
                    user_principal_name=state.user_principal_name or "",
                    hire_date=state.hire_date or event.effective_at,
                    access=state.access,
                    pending_removals=state.pending_removals,
                    package_groups=identity_access.package_groups(state),
                    package_apps=identity_access.package_apps(state),
                ),
                id=child_id,
                result_type=MoverResult,
                static_summary=(
                    f"{'Mover' if is_move(changes) else 'Record update'} "
                    f"{state.employee_id}: {what}"
                ),
                search_attributes=self._child_search_attributes("mover"),
                task_timeout=CHILD_TASK_TIMEOUT,
            )
        except ChildWorkflowError as err:
            # The stored record stays the old one, so the next update is compared with it.
            self._log(event, EventOutcome.FAILED, f"mover failed: {err.cause or err}", child_id)
            return
        cancelled = {(p.kind, p.target) for p in result.cancelled}
        state.worker = record
        state.record_as_of = event.effective_at
        old_access = state.access
        state.access = result.access
        await self._record_access_changes(self._mover_changes(event, old_access))
        state.pending_removals = [
            p for p in state.pending_removals if (p.kind, p.target) not in cancelled
        ] + result.deferred
        notes = [
            ("moved: " if is_move(result.changes) else "record updated: ")
            + "; ".join(f"{c.field} {c.old} -> {c.new}" for c in result.changes)
        ]
        if result.added:
            notes.append(f"added {', '.join(result.added)}")
        if result.removed:
            notes.append(f"removed {', '.join(result.removed)}")
        for p in result.deferred:
            notes.append(f"{p.target} kept until {p.due_at:%Y-%m-%d %H:%M} UTC (grace period)")
        if result.cancelled:
            notes.append(
                f"pending removal cancelled: {', '.join(p.target for p in result.cancelled)}"
            )
        if result.managers_mailed:
            notes.append(f"told {', '.join(result.managers_mailed)}")
        self._log(event, EventOutcome.APPLIED, "; ".join(notes + result.warnings), child_id)

    def _mover_changes(self, event: HrEvent, old: list[AccessItem]) -> list[AccessChange]:
        """Birthright a move added, and what it removed from the directory (not what a grace
        period keeps, nor what a package also grants)."""
        state, now = self._state, workflow.now()
        before = {(a.kind, a.target, tuple(a.roles)) for a in old}
        after = {(a.kind, a.target) for a in state.access}
        kept = {f"group:{g}" for g in identity_access.package_groups(state)} | {
            f"app:{a}" for a in identity_access.package_apps(state)
        }
        added = [a for a in state.access if (a.kind, a.target, tuple(a.roles)) not in before]
        gone = [
            resource
            for a in old
            if (a.kind, a.target) not in after
            for resource in item_resources(a)[:1]
            if resource not in kept
        ]
        return birthright_grants(state.employee_id, event.event_id, "move", now, added) + removals(
            state.employee_id,
            event.event_id,
            now,
            gone,
            {"type": "mover", "reason": "the new record no longer implies it"},
        )

    def _next_removal_at(self) -> datetime | None:
        return min((p.due_at for p in self._state.pending_removals), default=None)

    def _start_grace_removal(self) -> None:
        state = self._state
        now = workflow.now()
        due = sorted((p for p in state.pending_removals if p.due_at <= now), key=lambda p: p.due_at)
        first = due[0]
        child_id = grace_removal_workflow_id(state.employee_id, first.event_id, first.due_at)
        self._start("grace_removal", child_id, self._run_grace_removal(due, child_id))

    async def _run_grace_removal(self, due: list[PendingRemoval], child_id: str) -> None:
        state = self._state
        first = due[0]
        # Whatever the outcome, these removals are settled: a failure is left to an operator
        # rather than retried here for ever.
        state.pending_removals = [p for p in state.pending_removals if p not in due]
        if state.stage is not LifecycleStage.ACTIVE or state.graph_user_id is None:
            return
        try:
            result: GraceRemovalResult = await workflow.execute_child_workflow(
                GraceRemovalContract.WORKFLOW,
                GraceRemovalInput(
                    employee_id=state.employee_id,
                    user_id=state.graph_user_id,
                    # Access the person also holds through a package stays.
                    groups=[
                        p.target
                        for p in due
                        if p.kind == "graph_group"
                        and p.target not in identity_access.package_groups(state)
                    ],
                    apps=[
                        p.target
                        for p in due
                        if p.kind == "scim_app"
                        and p.target not in identity_access.package_apps(state)
                    ],
                ),
                id=child_id,
                result_type=GraceRemovalResult,
                static_summary=(
                    f"Grace period over for {state.employee_id}: remove access "
                    f"the move {first.event_id} took away"
                ),
                search_attributes=self._child_search_attributes("mover"),
                task_timeout=CHILD_TASK_TIMEOUT,
            )
        except ChildWorkflowError as err:
            self._record(
                first.event_id,
                "grace_removal",
                first.due_at,
                EventOutcome.FAILED,
                f"removal after the grace period failed: {err.cause or err}",
                child_id,
            )
            return
        gone = {("graph_group", g) for g in result.groups_removed} | {
            ("scim_app", a) for a in result.apps_deactivated
        }
        state.access = [a for a in state.access if (a.kind, a.target) not in gone]
        removed = result.groups_removed + result.apps_deactivated
        await self._record_access_changes(
            removals(
                state.employee_id,
                f"{first.event_id}:grace",
                workflow.now(),
                [f"group:{g}" for g in result.groups_removed]
                + [f"app:{a}" for a in result.apps_deactivated],
                {"type": "mover", "reason": "grace period after a move is over"},
            )
        )
        self._record(
            first.event_id,
            "grace_removal",
            first.due_at,
            EventOutcome.APPLIED,
            "; ".join([f"grace period over: removed {', '.join(removed)}", *result.warnings]),
            child_id,
        )

    # ---- terminate (leaver) and retention -------------------------------------------------------

    def _apply_terminate(self, event: HrEvent) -> None:
        stage = self._state.stage
        if stage is LifecycleStage.NONE:
            self._log(event, EventOutcome.IGNORED, "never hired: nothing to terminate")
            return
        if stage is LifecycleStage.DELETED:
            self._log(event, EventOutcome.IGNORED, "already left and deleted")
            return
        if stage is LifecycleStage.DISABLED:
            left = self._state.leave_date
            self._log(
                event,
                EventOutcome.IGNORED,
                f"already left{f' on {left:%Y-%m-%d}' if left else ''}",
            )
            return
        if self._state.graph_user_id is None:
            self._log(event, EventOutcome.IGNORED, "no account was ever provisioned")
            return
        child_id = leaver_workflow_id(self._state.employee_id, event.event_id)
        self._start("leaver", child_id, self._run_leaver(event, child_id))

    async def _run_leaver(self, event: HrEvent, child_id: str) -> None:
        state = self._state
        assert state.graph_user_id is not None
        worker = state.worker or WorkerRecord(employee_id=state.employee_id)
        try:
            result: LeaverResult = await workflow.execute_child_workflow(
                LeaverContract.WORKFLOW,
                LeaverInput(
                    employee_id=state.employee_id,
                    event_id=event.event_id,
                    display_name=worker.display_name,
                    user_id=state.graph_user_id,
                    leave_at=event.effective_at,
                    # Birthright and requested packages alike: a leaver keeps nothing.
                    groups=sorted(
                        {a.target for a in state.access if a.kind == "graph_group"}
                        | set(identity_access.package_groups(state))
                    ),
                    apps=sorted(
                        {a.target for a in state.access if a.kind == "scim_app"}
                        | set(identity_access.package_apps(state))
                    ),
                    manager_id=worker.manager_id,
                ),
                id=child_id,
                result_type=LeaverResult,
                static_summary=f"Leaver {state.employee_id}: leaves {event.effective_at:%Y-%m-%d}",
                search_attributes=self._child_search_attributes("leaver"),
                task_timeout=CHILD_TASK_TIMEOUT,
            )
        except ChildWorkflowError as err:
            self._log(event, EventOutcome.FAILED, f"leaver failed: {err.cause or err}", child_id)
            return
        state.leave_event_id = event.event_id
        state.leave_date = event.effective_at
        # The leaver removed all access, including any a move was keeping for a grace period.
        state.pending_removals = []
        # Retention counts from the leave date, so a leave caught up late is not kept longer.
        state.retention_due_at = event.effective_at + timedelta(days=result.retention_days)
        self._set_stage(LifecycleStage.DISABLED)
        await self._record_access_changes(
            removals(
                state.employee_id,
                event.event_id,
                workflow.now(),
                [f"group:{g}" for g in result.groups_removed]
                + [f"app:{a}" for a in result.apps_deactivated],
                {"type": "leaver", "reason": f"left {event.effective_at:%Y-%m-%d}"},
            )
        )
        # Pending requests are cancelled and granted packages removed by their own workflows.
        self._left_event = event
        self._tell_left.extend(h.request_id for h in state.packages)
        notes = [
            f"disabled, sessions revoked, {len(result.groups_removed)} groups removed, "
            f"{len(result.apps_deactivated)} app accounts deactivated; "
            f"deletion after {state.retention_due_at:%Y-%m-%d}"
        ]
        self._log(event, EventOutcome.APPLIED, "; ".join(notes + result.warnings), child_id)

    def _start_retention(self) -> None:
        state = self._state
        leave_event = state.leave_event_id or "unknown"
        child_id = retention_workflow_id(state.employee_id, leave_event)
        self._start("retention", child_id, self._run_retention(leave_event, child_id))

    async def _run_retention(self, leave_event: str, child_id: str) -> None:
        state = self._state
        due = state.retention_due_at or workflow.now()
        try:
            await workflow.execute_child_workflow(
                RetentionContract.WORKFLOW,
                RetentionInput(
                    employee_id=state.employee_id,
                    user_id=state.graph_user_id,
                    apps=[a.target for a in state.access if a.kind == "scim_app"],
                ),
                id=child_id,
                result_type=RetentionResult,
                static_summary=f"Retention over for {state.employee_id}: delete the accounts",
                search_attributes=self._child_search_attributes("retention"),
                task_timeout=CHILD_TASK_TIMEOUT,
            )
        except ChildWorkflowError as err:
            # Not retried from here (the child already retried what could be): an operator or the
            # orphan sweep finishes it. The identity stays disabled.
            state.retention_due_at = None
            self._record(
                leave_event, "retention", due, EventOutcome.FAILED, f"deletion failed: {err.cause}"
            )
            return
        state.retention_due_at = None
        state.graph_user_id = None
        state.user_principal_name = None
        state.access = []
        self._set_stage(LifecycleStage.DELETED)
        self._record(
            leave_event,
            "retention",
            due,
            EventOutcome.APPLIED,
            "retention period over: Graph user and app accounts deleted",
            child_id,
        )

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
                    LIFECYCLE_STAGE.value_set(self._state.stage.value),
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
        state.seen_event_ids = sorted(self._seen)
        state.scheduled = self._schedule()
        return state

    def _show(self) -> None:
        self._state.scheduled = self._schedule()
        parts = [f"stage {self._state.stage.value}"]
        if self._state.running_transition:
            parts.append(f"running {self._state.running_transition}")
        if self._pending:
            parts.append(f"{len(self._pending)} event(s) pending")
        for change in self._state.scheduled:
            parts.append(f"{change.what} at {change.at:%Y-%m-%d %H:%M} UTC")
        workflow.set_current_details("; ".join(parts))
