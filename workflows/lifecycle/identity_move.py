"""The identity entity's updates: the mover, and removals after a move's grace period."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.lifecycle.identity_core import IdentityCore

with workflow.unsafe.imports_passed_through():
    from domain.audit import AccessChange
    from domain.detective.sod_contract import StartCheckInput
    from domain.holdings import ResourceKind, app_account, group
    from domain.lifecycle import ledger
    from domain.lifecycle.events import HrEvent, WorkerRecord, event_digest
    from domain.lifecycle.identity import (
        AccessItem,
        EventOutcome,
        LifecycleStage,
        PendingRemoval,
    )
    from domain.lifecycle.mover import (
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
    from domain.lifecycle.record import birthright_grants, removals
    from domain.stubs import sod as sod_activity
    from workflows.steps.retry import NOTICE


# Runs that start an SoD check of the person after a move that added access.
SOD_CHECK_AFTER_MOVE_PATCH = "sod-check-after-move"


class MoveSteps(IdentityCore):
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
        held_by = self._sign_in_held_by()
        result = await self._run_child(
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
                **ledger.mover_package_holdings(state),
                sign_in_held_by=held_by,
            ),
            MoverResult,
            child_id=child_id,
            summary=f"{'Mover' if is_move(changes) else 'Record update'} {state.employee_id}: {what}",
            transition="mover",
            # The stored record stays the old one, so the next update is compared with it.
            on_failure=lambda why: self._log(
                event, EventOutcome.FAILED, f"mover failed: {why}", child_id
            ),
        )
        if result is None:
            return
        cancelled = {(p.kind, p.target) for p in result.cancelled}
        state.worker = record
        state.record_as_of = event.effective_at
        old_access = state.access
        state.access = result.access
        # An app the new attributes grant is an account to delete at retention, even if a
        # later move takes it away again.
        ledger.remember_app_accounts(state)
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
        if held := await self._keep_sign_in_held(held_by):
            notes.append(f"sign-in stays off: incident {held} holds the person")
        self._log(event, EventOutcome.APPLIED, "; ".join(notes + result.warnings), child_id)
        if result.added and workflow.patched(SOD_CHECK_AFTER_MOVE_PATCH):
            await self._check_sod(event)

    async def _check_sod(self, event: HrEvent) -> None:
        """Access a move added may complete an SoD pair with something already held: check the
        person now (the scheduled scan would find it, but a day later)."""
        try:
            await workflow.execute_activity(
                sod_activity.start_check,
                StartCheckInput(
                    employee_id=self._state.employee_id,
                    reason=f"move {event.event_id}",
                    key=event_digest(event)[:12],
                    task_queue=workflow.info().task_queue,
                ),
                # Minutes, not the provisioning day: the person's next event waits on this.
                **NOTICE,
            )
        except ActivityError as err:
            # The move stands; the scheduled scan still checks this person.
            workflow.logger.warning("SoD check after %s not started: %s", event.event_id, err)

    def _mover_changes(self, event: HrEvent, old: list[AccessItem]) -> list[AccessChange]:
        """Birthright a move added, and what it removed from the directory (not what a grace
        period keeps, nor what a package also grants)."""
        state, now = self._state, workflow.now()
        before = {(a.kind, a.target, tuple(a.roles)) for a in old}
        after = {(a.kind, a.target) for a in state.access}
        kept = ledger.package_held(state)
        added = [a for a in state.access if (a.kind, a.target, tuple(a.roles)) not in before]
        gone = [
            resource
            for a in old
            if (a.kind, a.target) not in after
            for resource in ledger.item_resources(a)[:1]
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
        # Access the person also holds through a package stays.
        kept = ledger.package_held(state)
        to_remove = [p for p in due if ledger.pending_resource(p) not in kept]
        result = await self._run_child(
            GraceRemovalContract.WORKFLOW,
            GraceRemovalInput(
                employee_id=state.employee_id,
                user_id=state.graph_user_id,
                groups=[p.target for p in to_remove if p.kind == ResourceKind.GRAPH_GROUP],
                apps=[p.target for p in to_remove if p.kind == ResourceKind.SCIM_ACCOUNT],
            ),
            GraceRemovalResult,
            child_id=child_id,
            summary=(
                f"Grace period over for {state.employee_id}: remove access "
                f"the move {first.event_id} took away"
            ),
            transition="mover",
            on_failure=lambda why: self._record(
                first.event_id,
                "grace_removal",
                first.due_at,
                EventOutcome.FAILED,
                f"removal after the grace period failed: {why}",
                child_id,
            ),
        )
        if result is None:
            return
        gone = {group(g) for g in result.groups_removed} | {
            app_account(a) for a in result.apps_deactivated
        }
        state.access = [a for a in state.access if ledger.item_resources(a)[0] not in gone]
        removed = result.groups_removed + result.apps_deactivated
        await self._record_access_changes(
            removals(
                state.employee_id,
                f"{first.event_id}:grace",
                workflow.now(),
                [group(g) for g in result.groups_removed]
                + [app_account(a) for a in result.apps_deactivated],
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
