"""The identity entity's leaves: the leaver on the leave date, and deletion after retention."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.lifecycle.identity_core import IdentityCore

with workflow.unsafe.imports_passed_through():
    from domain.holdings import ResourceKind, app_account, group
    from domain.lifecycle import ledger
    from domain.lifecycle.events import HrEvent, WorkerRecord
    from domain.lifecycle.identity import (
        EventOutcome,
        LifecycleStage,
    )
    from domain.lifecycle.leaver import (
        LeaverContract,
        LeaverInput,
        LeaverResult,
        RetentionContract,
        RetentionInput,
        RetentionResult,
        leaver_workflow_id,
        retention_workflow_id,
    )
    from domain.lifecycle.record import removals


class LeaveSteps(IdentityCore):
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
        result = await self._run_child(
            LeaverContract.WORKFLOW,
            LeaverInput(
                employee_id=state.employee_id,
                event_id=event.event_id,
                display_name=worker.display_name,
                user_id=state.graph_user_id,
                leave_at=event.effective_at,
                # Whatever holds it, a leaver keeps nothing: every group held, every account.
                groups=ledger.held_targets(state, ResourceKind.GRAPH_GROUP),
                apps=ledger.all_app_accounts(state),
                manager_id=worker.manager_id,
            ),
            LeaverResult,
            child_id=child_id,
            summary=f"Leaver {state.employee_id}: leaves {event.effective_at:%Y-%m-%d}",
            transition="leaver",
            on_failure=lambda why: self._log(
                event, EventOutcome.FAILED, f"leaver failed: {why}", child_id
            ),
        )
        if result is None:
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
                [group(g) for g in result.groups_removed]
                + [app_account(a) for a in result.apps_deactivated],
                {"type": "leaver", "reason": f"left {event.effective_at:%Y-%m-%d}"},
            )
        )
        # Pending requests are cancelled and granted packages removed by their own workflows.
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

        def failed(why: str) -> None:
            # Not retried from here (the child already retried what could be): an operator or
            # the orphan sweep finishes it. The identity stays disabled.
            state.retention_due_at = None
            self._record(
                leave_event, "retention", due, EventOutcome.FAILED, f"deletion failed: {why}"
            )

        result = await self._run_child(
            RetentionContract.WORKFLOW,
            RetentionInput(
                employee_id=state.employee_id,
                user_id=state.graph_user_id,
                # Every account Tenure made for the person, birthright or package.
                apps=ledger.all_app_accounts(state),
            ),
            RetentionResult,
            child_id=child_id,
            summary=f"Retention over for {state.employee_id}: delete the accounts",
            transition="retention",
            on_failure=failed,
        )
        if result is None:
            return
        state.retention_due_at = None
        state.graph_user_id = None
        state.user_principal_name = None
        state.access = []
        state.app_accounts = []
        self._set_stage(LifecycleStage.DELETED)
        self._record(
            leave_event,
            "retention",
            due,
            EventOutcome.APPLIED,
            "retention period over: Graph user and app accounts deleted",
            child_id,
        )
