"""The identity entity: one long-lived workflow per person, `identity-{employee_id}` (docs/architecture.md, rule 2).

HR events arrive by signal-with-start and are applied by effective time. A terminate (or update) dated
in the future waits here, on a timer that every new signal interrupts, so later events can still
arrive and correct it; a hire starts its joiner at once (the joiner waits for the pre-hire day
itself). Each transition (joiner, mover, leaver, retention, the end of a mover's grace period) runs
as its own child workflow, one at a time, concurrently with this event loop, so an operator can read
it on its own in Temporal UI.

This module holds the event loop and the handlers; each transition's bookkeeping lives beside it
(identity_hire, identity_move, identity_leave, on the shared state of identity_core), and access
requests' reservations in identity_access.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.lifecycle import identity_access, identity_suspend
from workflows.lifecycle.identity_hire import HireSteps
from workflows.lifecycle.identity_leave import LeaveSteps
from workflows.lifecycle.identity_move import MoveSteps

with workflow.unsafe.imports_passed_through():
    from domain.access.request import AccessRequestContract, BeneficiaryLeft
    from domain.holdings import Release
    from domain.lifecycle import ledger
    from domain.lifecycle.events import EventType, HrEvent, event_digest
    from domain.lifecycle.identity import (
        AccessRequestChanged,
        EventOutcome,
        IdentityContract,
        IdentityState,
        IdentityWorkflowInput,
        LifecycleStage,
        ReleaseAccessInput,
        ReserveAccessInput,
        ReserveAccessResult,
        RestoreIdentityInput,
        RestoreIdentityResult,
        SuspendIdentityInput,
        SuspendIdentityResult,
    )


# Within the release activity's 30 s attempt, so the request's call does not time out meanwhile.
RELEASE_WAITS_FOR_TRANSITION = timedelta(seconds=20)


@workflow.defn(name=IdentityContract.WORKFLOW)
class IdentityWorkflow(HireSteps, MoveSteps, LeaveSteps):
    @workflow.init
    def __init__(self, input: IdentityWorkflowInput) -> None:
        self._input = input
        self._state = input.state or IdentityState(employee_id=input.employee_id)
        if self._state.stage is LifecycleStage.SUSPENDED:
            # Carried over from a query's snapshot: the stage underneath a suspension is active.
            self._state.stage = LifecycleStage.ACTIVE
        # Every event_id received, with its content digest ("" for ids received before digests
        # were kept): the one record of what has been seen.
        self._digests: dict[str, str] = {
            **dict.fromkeys(self._state.seen_event_ids, ""),
            **self._state.event_digests,
        }
        # Derived views are rebuilt by each query, never carried from one run to the next.
        self._state.seen_event_ids = []
        self._state.event_digests = {}
        self._state.scheduled = []
        self._state.holdings = []
        # A state from a release before app_accounts: the accounts its grants hold exist.
        ledger.remember_app_accounts(self._state)
        # Received, not yet applied; kept in arrival order, applied in effective-time order.
        self._pending: list[HrEvent] = list(input.pending)
        # Bumped by every signal and every transition that ends: wakes the event loop.
        self._wakes = 0
        # The transition running now (at most one), as a task awaiting its child workflow, and
        # its kind and child workflow id.
        self._child: asyncio.Task[None] | None = None
        self._running: tuple[str, str] | None = None
        # While a joiner runs: its hire, what the identity was before it, and a withdrawal.
        self._hire: HrEvent | None = None
        self._before_hire: IdentityState | None = None
        self._withdrawn_by: HrEvent | None = None
        # Access requests to tell that the person left (sent by the event loop, not a handler).
        self._tell_left: list[str] = []

    @workflow.signal(name=IdentityContract.SIGNAL_HR_EVENT)
    def hr_event(self, event: HrEvent) -> None:
        # event_id is the idempotency key: a repeat is acknowledged (the signal is in history) but
        # applied once, whether the first copy is still pending or long done. The same id with
        # other content is not a repeat: it is logged as a conflict and not applied either.
        digest = event_digest(event)
        if event.event_id in self._digests:
            first = self._digests[event.event_id]
            if first and first != digest:
                self._log(
                    event,
                    EventOutcome.CONFLICT,
                    "event_id already received with different content: not applied "
                    "(an event_id names one event; send a new one with a new id)",
                )
            else:
                self._log(event, EventOutcome.DUPLICATE, "event_id already received")
            return
        self._digests[event.event_id] = digest
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

    @workflow.update(name=IdentityContract.UPDATE_RELEASE_ACCESS)
    async def release_access(self, ask: ReleaseAccessInput) -> Release:
        # Decided here, where every grant of the person is known: a resource another grant
        # holds stays (the ledger, domain/holdings.py). A transition already running (a move
        # granting the same group, say) finishes first, for a while; none starts until the
        # request says it closed (_release_hold).
        if self._child is not None:
            try:
                await workflow.wait_condition(
                    lambda: self._child is None,
                    timeout=RELEASE_WAITS_FOR_TRANSITION,
                    timeout_summary="a transition ends before access is released",
                )
            except TimeoutError:
                pass  # a long one (a manager awaited): the removal goes ahead
        result = ledger.release_package(self._state, ask, workflow.now())
        self._wakes += 1
        return result

    @workflow.update(name=IdentityContract.UPDATE_SUSPEND)
    def suspend(self, ask: SuspendIdentityInput) -> SuspendIdentityResult:
        result = identity_suspend.suspend(self._state, ask)
        self._upsert_search_attributes()
        self._wakes += 1
        self._show()
        return result

    @suspend.validator
    def _may_suspend(self, ask: SuspendIdentityInput) -> None:
        refusal = identity_suspend.suspend_refusal(self._state)
        if refusal is not None:
            raise ApplicationError(refusal, type="NotHired")

    @workflow.update(name=IdentityContract.UPDATE_RESTORE)
    def restore(self, ask: RestoreIdentityInput) -> RestoreIdentityResult:
        result = identity_suspend.restore(self._state, ask)
        self._upsert_search_attributes()
        self._wakes += 1
        self._show()
        return result

    @workflow.signal(name=IdentityContract.SIGNAL_ACCESS_REQUEST_CHANGED)
    def access_request_changed(self, change: AccessRequestChanged) -> None:
        identity_access.apply_change(self._state, change)
        if change.status == "granted":
            ledger.remember_app_accounts(self._state)
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
        if self._release_hold() is not None:
            return False  # a request is removing access: no transition may add it meanwhile
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

    def _release_hold(self) -> datetime | None:
        """Until when transitions wait for a request that is removing access (the ledger said
        what it may remove; a mover adding one of those meanwhile would lose it). Bounded, so a
        request that never says it closed cannot stop the identity."""
        return ledger.release_hold_until(self._state, workflow.now())

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
        hold = self._release_hold()
        if self._child is None and hold is not None:
            deadline = hold
        elif self._child is None:
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

    async def _tell_requests_left(self) -> None:
        """Tell each access request of a person who left: pending ones are cancelled, granted
        ones removed. A request that closed meanwhile is simply gone."""
        while self._tell_left:
            request_id = self._tell_left.pop(0)
            # The leave is part of the state, so it survives continue-as-new.
            state = self._state
            left = BeneficiaryLeft(
                event_id=state.leave_event_id or "unknown",
                effective_at=state.leave_date or workflow.now(),
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
