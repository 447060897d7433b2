"""The identity entity: one long-lived workflow per person, `identity-{employee_id}` (DESIGN.md rule 2).

HR events arrive by signal-with-start and are applied one at a time, in arrival order; each transition
runs as its own child workflow so an operator can read it on its own in Temporal UI.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from domain.events import EventType, HrEvent
    from domain.identity import (
        AccessItem,
        AppliedEvent,
        EventOutcome,
        IdentityContract,
        IdentityState,
        IdentityWorkflowInput,
        LifecycleStage,
        ScheduledChange,
    )
    from domain.joiner import JoinerContract, JoinerInput, JoinerResult, joiner_workflow_id
    from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE, TRANSITION_TYPE


@workflow.defn(name=IdentityContract.WORKFLOW)
class IdentityWorkflow:
    @workflow.init
    def __init__(self, input: IdentityWorkflowInput) -> None:
        self._input = input
        self._state = input.state or IdentityState(employee_id=input.employee_id)
        self._seen = set(self._state.seen_event_ids)
        self._queue: list[HrEvent] = list(input.pending)

    @workflow.signal(name=IdentityContract.SIGNAL_HR_EVENT)
    def hr_event(self, event: HrEvent) -> None:
        # event_id is the idempotency key: a repeat is acknowledged (the signal is in history) but
        # applied once, whether the first copy is still queued or long done.
        if event.event_id in self._seen:
            self._log(event, EventOutcome.DUPLICATE, "event_id already received")
            return
        self._seen.add(event.event_id)
        self._queue.append(event)
        self._show()

    @workflow.query(name=IdentityContract.QUERY_DETAILS)
    def details(self) -> IdentityState:
        return self._snapshot()

    @workflow.run
    async def run(self, input: IdentityWorkflowInput) -> None:
        # EmployeeId and LifecycleStage are set when the intake starts this workflow (and carried
        # over by continue-as-new); they are written again only when the stage changes.
        while True:
            await workflow.wait_condition(lambda: bool(self._queue))
            event = self._queue.pop(0)
            await self._apply(event)
            self._show()
            if workflow.info().is_continue_as_new_suggested():
                # Signals may still be landing: let their handlers finish so nothing is dropped.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    IdentityWorkflowInput(
                        employee_id=input.employee_id,
                        state=self._snapshot(),
                        pending=self._queue,
                        record_search_attributes=input.record_search_attributes,
                        history_limit=input.history_limit,
                    )
                )

    async def _apply(self, event: HrEvent) -> None:
        if event.type is EventType.HIRE:
            await self._hire(event)
        else:
            # Movers and leavers arrive with the full lifecycle work; until then they are kept on record.
            self._log(event, EventOutcome.IGNORED, f"{event.type.value} events are not handled yet")

    async def _hire(self, event: HrEvent) -> None:
        stage = self._state.stage
        if stage not in (LifecycleStage.NONE, LifecycleStage.DELETED):
            self._log(event, EventOutcome.IGNORED, f"already hired (stage {stage.value})")
            return
        worker = event.worker
        child_id = joiner_workflow_id(worker.employee_id, event.event_id)
        self._state.worker = worker
        self._state.hire_date = event.effective_at
        self._state.running_transition = child_id
        if event.effective_at > workflow.now():
            self._set_stage(LifecycleStage.PRE_HIRE)
            self._state.scheduled = [
                ScheduledChange(at=event.effective_at, what="enable account (start date)")
            ]
        self._show()
        try:
            result: JoinerResult = await workflow.execute_child_workflow(
                JoinerContract.WORKFLOW,
                JoinerInput(
                    employee_id=worker.employee_id,
                    event_id=event.event_id,
                    worker=worker,
                    start_at=event.effective_at,
                ),
                id=child_id,
                result_type=JoinerResult,
                static_summary=(
                    f"Joiner {worker.employee_id}: {worker.department or 'no department'}, "
                    f"starts {event.effective_at:%Y-%m-%d}"
                ),
                search_attributes=self._child_search_attributes("joiner"),
                task_timeout=timedelta(seconds=30),
            )
        except ChildWorkflowError as err:
            self._state.running_transition = None
            self._state.scheduled = []
            self._log(event, EventOutcome.FAILED, f"joiner failed: {err.cause or err}", child_id)
            return
        self._state.running_transition = None
        self._state.scheduled = []
        self._state.graph_user_id = result.user_id
        self._state.user_principal_name = result.user_principal_name
        self._state.access = [
            AccessItem(kind="graph_group", target=g.group, rule=g.rule) for g in result.groups
        ] + [
            AccessItem(kind="scim_app", target=a.app, rule=a.rule, roles=a.roles)
            for a in result.apps
        ]
        self._set_stage(LifecycleStage.ACTIVE)
        reason = "; ".join(result.warnings)
        self._log(event, EventOutcome.APPLIED, reason, child_id)

    # ---- bookkeeping ----------------------------------------------------------------------------

    def _log(
        self, event: HrEvent, outcome: EventOutcome, reason: str = "", transition: str | None = None
    ) -> None:
        self._state.history.append(
            AppliedEvent(
                event_id=event.event_id,
                type=event.type.value,
                effective_at=event.effective_at,
                received_at=workflow.now(),
                outcome=outcome,
                reason=reason,
                transition_workflow_id=transition,
            )
        )
        del self._state.history[: -self._input.history_limit]

    def _set_stage(self, stage: LifecycleStage) -> None:
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

    def _snapshot(self) -> IdentityState:
        state = self._state.model_copy(deep=True)
        state.seen_event_ids = sorted(self._seen)
        return state

    def _show(self) -> None:
        parts = [f"stage {self._state.stage.value}"]
        if self._state.running_transition:
            parts.append(f"running {self._state.running_transition}")
        if self._queue:
            parts.append(f"{len(self._queue)} event(s) queued")
        for change in self._state.scheduled:
            parts.append(f"{change.what} at {change.at:%Y-%m-%d %H:%M} UTC")
        workflow.set_current_details("; ".join(parts))
