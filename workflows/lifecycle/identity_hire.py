"""The identity entity's hires: the joiner (and rehire), and a hire withdrawn before its start."""

from __future__ import annotations

import asyncio

from temporalio import workflow

from workflows.lifecycle.identity_core import IdentityCore

with workflow.unsafe.imports_passed_through():
    from domain.holdings import ResourceKind
    from domain.lifecycle import ledger
    from domain.lifecycle.events import EventType, HrEvent
    from domain.lifecycle.identity import (
        AccessItem,
        EventOutcome,
        LifecycleStage,
    )
    from domain.lifecycle.joiner import (
        JoinerContract,
        JoinerInput,
        JoinerResult,
        joiner_workflow_id,
    )
    from domain.lifecycle.record import birthright_grants


class HireSteps(IdentityCore):
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
        failure: list[str] = []
        held_by = self._sign_in_held_by()
        try:
            result = await self._run_child(
                JoinerContract.WORKFLOW,
                JoinerInput(
                    employee_id=worker.employee_id,
                    event_id=event.event_id,
                    worker=worker,
                    start_at=event.effective_at,
                    rehire=rehire,
                    existing_apps=(
                        ledger.held_targets(self._state, ResourceKind.SCIM_ACCOUNT)
                        if rehire
                        else []
                    ),
                    sign_in_held_by=held_by,
                ),
                JoinerResult,
                child_id=child_id,
                summary=(
                    f"{'Rehire' if rehire else 'Joiner'} {worker.employee_id}: "
                    f"{worker.department or 'no department'}, starts {event.effective_at:%Y-%m-%d}"
                ),
                transition="joiner",
                on_failure=failure.append,
            )
        except asyncio.CancelledError:
            result = None
            failure.append("cancelled")
        if result is None:
            self._hire = None
            if self._withdrawn_by is not None:
                self._withdrawn(event, child_id, rehire)
            else:
                self._log(event, EventOutcome.FAILED, f"joiner failed: {failure[0]}", child_id)
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
            AccessItem(kind=ResourceKind.GRAPH_GROUP, target=g.group, rule=g.rule)
            for g in result.groups
        ] + [
            AccessItem(kind=ResourceKind.SCIM_ACCOUNT, target=a.app, rule=a.rule, roles=a.roles)
            for a in result.apps
        ]
        ledger.remember_app_accounts(self._state)
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
        if held := await self._keep_sign_in_held(held_by):
            notes.append(f"sign-in stays off: incident {held} holds the person")
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
