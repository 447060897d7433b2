"""One security incident about one person: `incident-{incident_id}` (the id is the SIEM's, so a
replayed report reaches this same run and changes nothing).

It resolves whom the report names and at once disables sign-in, revokes sessions and removes
their active roles from Graph. Meanwhile it suspends them through their identity entity (which
sets their package grants aside and lists their PIM runs, atomically with everything else about
the person), then ends every activation run, suspends every eligibility, tells the manager and
the security contacts, and keeps each step in the record. It then waits, for as long as it
takes, for an administrator's restore: sign-in comes back (unless a leave came meanwhile), with
what is still valid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.access.request_story import error_cause

with workflow.unsafe.imports_passed_through():
    from domain.access.request import NotifyInput, Refusal
    from domain.lifecycle.identity import LifecycleStage, SuspendIdentityResult
    from domain.pim.activation import EligibilityContract, PimContract, Restored, Suspended
    from domain.provisioning import SetAccountEnabledInput, UserIdInput
    from domain.search_attributes import EMPLOYEE_ID
    from domain.security.incident import (
        CutOffInput,
        CutOffResult,
        IncidentAck,
        IncidentContract,
        IncidentInput,
        IncidentStatus,
        IncidentStep,
        IncidentView,
        RecordIncidentInput,
        ResolvePersonInput,
        RestoreAsk,
        RestorePersonInput,
        SecurityContacts,
        SuspendPersonInput,
    )
    from domain.stubs import access as access_activity
    from domain.stubs import graph as graph_activity
    from domain.stubs import security as security_activity
    from workflows.steps.retry import NOTICE, POLICY_LOOKUP, PROVISIONING, URGENT_LOCAL


A = TypeVar("A")
R = TypeVar("R")

# Runs that cut sign-in, sessions and roles off from Graph and the record at once, alongside the
# identity's bookkeeping, as local activities (before it: regular activities, the identity
# first, then sign-in, then each PIM run told in turn, the roles left to their own ends).
CUT_OFF_AT_ONCE_PATCH = "incident-cut-off-at-once"
# Runs that cut off before anything else, the identity's bookkeeping then following as a regular
# activity: its update waits on the identity queue, and as a local activity it held the run's
# first task open (and the SIEM's 202) until that queue got to it, past the task's timeout in a
# burst of hires.
CUT_OFF_FIRST_PATCH = "incident-cut-off-first"


@workflow.defn(name=IncidentContract.WORKFLOW)
class IncidentWorkflow:
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        report = input.report
        self._view = IncidentView(
            incident_id=report.incident_id,
            employee_id="",
            user=report.user,
            severity=report.severity,
            title=report.title,
            source=report.source,
            status=IncidentStatus.RECEIVED,
            received_at=input.received_at,
            updated_at=input.received_at,
        )
        self._resolved = False
        self._acks = 0
        self._restore: RestoreAsk | None = None
        self._contacts = SecurityContacts()
        self._at_once = False
        self._cut_off_first = False

    # ---- the SIEM's call and the administrator's ------------------------------------------------

    @workflow.update(name=IncidentContract.UPDATE_ACKNOWLEDGE)
    async def acknowledge(self) -> IncidentAck:
        self._acks += 1
        replay = self._acks > 1
        await workflow.wait_condition(lambda: self._resolved)
        view = self._view
        if view.status is IncidentStatus.REJECTED:
            message = view.steps[-1].text
        elif replay:
            message = "incident already received: nothing changed"
        else:
            message = f"suspending {view.employee_id}"
        return IncidentAck(
            incident_id=view.incident_id,
            employee_id=view.employee_id or None,
            status=view.status,
            replay=replay,
            message=message,
        )

    @workflow.update(name=IncidentContract.UPDATE_RESTORE)
    async def restore(self, ask: RestoreAsk) -> IncidentView:
        """Answers once the suspension is lifted (sign-in back, eligibilities told)."""
        self._restore = ask
        await workflow.wait_condition(
            lambda: self._view.status in (IncidentStatus.RESTORED, IncidentStatus.FAILED)
        )
        return self._view

    @restore.validator
    def _may_restore(self, ask: RestoreAsk) -> None:
        if not (ask.is_admin or ask.actor_id in self._contacts.administrators):
            raise ApplicationError(
                "only an administrator may lift a suspension", type=Refusal.NOT_ALLOWED
            )
        if self._view.status is not IncidentStatus.SUSPENDED or self._restore is not None:
            raise ApplicationError(
                f"nothing to restore (incident {self._view.status.value})", type=Refusal.CLOSED
            )

    @workflow.query(name=IncidentContract.QUERY_DETAILS)
    def details(self) -> IncidentView:
        return self._view

    # ---- the response ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentView:
        report = input.report
        self._show()
        self._at_once = workflow.patched(CUT_OFF_AT_ONCE_PATCH)
        self._cut_off_first = self._at_once and workflow.patched(CUT_OFF_FIRST_PATCH)
        person = await self._act(
            security_activity.resolve_person, ResolvePersonInput(user=report.user)
        )
        if person.employee_id is None:
            self._step("rejected", f"not applied: {person.how}")
            self._view.status = IncidentStatus.REJECTED
            self._resolved = True
            await self._record()
            return self._view
        employee_id = person.employee_id
        self._view.employee_id = employee_id
        self._view.status = IncidentStatus.SUSPENDING
        if input.record_search_attributes:
            workflow.upsert_search_attributes([EMPLOYEE_ID.value_set(employee_id)])
        self._step("resolved", f"{report.user} is {employee_id} (by {person.how})")
        self._resolved = True
        try:
            await self._suspend(employee_id)
        except (ActivityError, ApplicationError) as err:
            self._step("failed", f"suspension failed: {error_cause(err)}")
            self._view.status = IncidentStatus.FAILED
            await self._record()
            raise
        await workflow.wait_condition(lambda: self._restore is not None)
        await self._lift(employee_id)
        return self._view

    async def _suspend(self, employee_id: str) -> None:
        if not self._at_once:
            return await self._suspend_in_turn(employee_id)
        now = workflow.now()
        incident_id = self._view.incident_id
        suspend = SuspendPersonInput(employee_id=employee_id, incident_id=incident_id, at=now)
        # The identity's bookkeeping and Graph's cut-off at once: the cut-off reads Graph and the
        # record only, so a busy identity queue (a burst of hires) never delays it.
        cut_off = self._act(
            security_activity.cut_off,
            CutOffInput(employee_id=employee_id, incident_id=incident_id),
        )
        settings = workflow.execute_local_activity(
            security_activity.security_settings, **POLICY_LOOKUP
        )
        if self._cut_off_first:
            holding = workflow.start_activity(
                security_activity.suspend_identity, suspend, **PROVISIONING
            )
            cut, self._contacts = await asyncio.gather(cut_off, settings)
            self._cut_off_steps(cut)
            held = await holding
            self._suspended_step(held)
        else:
            held, cut, self._contacts = await asyncio.gather(
                self._act(security_activity.suspend_identity, suspend), cut_off, settings
            )
            self._suspended_step(held)
            self._cut_off_steps(cut)
        suspended = Suspended(incident_id=incident_id, at=now)
        runs = [*held.activations, *held.eligibilities]
        await asyncio.gather(
            *(self._tell(run_id, PimContract.SIGNAL_SUSPENDED, suspended) for run_id in runs)
        )
        await self._suspended(held)

    def _cut_off_steps(self, cut: CutOffResult) -> None:
        if cut.graph_user_id is None:
            self._step("no_account", "no Graph account: nothing to disable")
        else:
            self._step("disabled_sign_in", "sign-in disabled (accountEnabled false)")
            self._step("revoked_sessions", "sign-in sessions revoked")
        for run_id in cut.roles_removed:
            self._step("removed_role", f"the role of {run_id} removed from Graph", run=run_id)

    async def _suspend_in_turn(self, employee_id: str) -> None:
        """Runs from before the cut-off at once: the identity first, then Graph, then each run."""
        now = workflow.now()
        held, self._contacts = await asyncio.gather(
            self._act(
                security_activity.suspend_identity,
                SuspendPersonInput(
                    employee_id=employee_id, incident_id=self._view.incident_id, at=now
                ),
            ),
            workflow.execute_local_activity(security_activity.security_settings, **POLICY_LOOKUP),
        )
        self._suspended_step(held)
        suspended = Suspended(incident_id=self._view.incident_id, at=now)
        await self._cut_off(held)
        for run_id in [*held.activations, *held.eligibilities]:
            await self._tell(run_id, PimContract.SIGNAL_SUSPENDED, suspended)
        await self._suspended(held)

    def _suspended_step(self, held: SuspendIdentityResult) -> None:
        if held.already and held.held_by != self._view.incident_id:
            self._step("already_suspended", f"already suspended by incident {held.held_by}")
        else:
            self._step("suspended_identity", f"{held.employee_id} is suspended")

    async def _suspended(self, held: SuspendIdentityResult) -> None:
        for run_id in held.activations:
            self._step("ended_activation", f"ending PIM activation {run_id}", run=run_id)
        for run_id in held.eligibilities:
            self._step("suspended_eligibility", f"suspending eligibility {run_id}", run=run_id)
        for run_id in held.packages:
            self._step("suspended_grant", f"package grant {run_id} set aside", run=run_id)
        self._view.status = IncidentStatus.SUSPENDED
        self._view.suspended_at = workflow.now()
        await self._record()
        await self._notify(held)

    async def _cut_off(self, held: SuspendIdentityResult) -> None:
        if held.graph_user_id is None:
            self._step("no_account", "no Graph account: nothing to disable")
            return
        user = held.graph_user_id
        await asyncio.gather(
            self._act(
                graph_activity.set_account_enabled,
                SetAccountEnabledInput(user_id=user, enabled=False),
            ),
            self._act(graph_activity.revoke_sign_in_sessions, UserIdInput(user_id=user)),
        )
        self._step("disabled_sign_in", "sign-in disabled (accountEnabled false)")
        self._step("revoked_sessions", "sign-in sessions revoked")

    async def _notify(self, held: SuspendIdentityResult) -> None:
        view = self._view
        to = [*([held.manager_id] if held.manager_id else []), *self._contacts.contacts]
        if not to:
            return
        try:
            await workflow.execute_activity(
                access_activity.notify,
                NotifyInput(
                    sender=self._contacts.mail_sender,
                    to_employee_ids=list(dict.fromkeys(to)),
                    subject=f"Security incident {view.incident_id}: {view.employee_id} suspended",
                    html_body=f"<p>{escape(view.source)} reported <b>{escape(view.title)}</b> "
                    f"({view.severity.value}) about {view.employee_id}. Sign-in is disabled, "
                    "sessions are revoked, privileged roles ended and grants suspended. An "
                    f"administrator lifts it with <code>tenure security restore "
                    f"{view.incident_id}</code>.</p>",
                ),
                **NOTICE,
            )
            self._step("notified", f"told {', '.join(dict.fromkeys(to))}")
        except ActivityError as err:
            self._step("not_notified", f"notice not sent: {error_cause(err)}")
        await self._record()

    async def _lift(self, employee_id: str) -> None:
        ask = self._restore
        assert ask is not None
        result = await workflow.execute_activity(
            security_activity.restore_identity,
            RestorePersonInput(
                employee_id=employee_id, incident_id=self._view.incident_id, by=ask.actor_id
            ),
            **PROVISIONING,
        )
        self._step(
            "restore_requested",
            f"restored by {ask.actor_id}: {ask.reason or 'no reason'}",
            actor=ask.actor_id,
        )
        if result.stage is LifecycleStage.ACTIVE and result.graph_user_id:
            await workflow.execute_activity(
                graph_activity.set_account_enabled,
                SetAccountEnabledInput(user_id=result.graph_user_id, enabled=True),
                **PROVISIONING,
            )
            self._step("enabled_sign_in", "sign-in enabled again")
        else:
            self._step(
                "stays_disabled", f"sign-in stays off: {employee_id} is {result.stage.value}"
            )
        restored = Restored(incident_id=self._view.incident_id, by=ask.actor_id, at=workflow.now())
        for run_id in result.eligibilities:
            await self._tell(run_id, EligibilityContract.SIGNAL_RESTORED, restored)
            self._step("restored_eligibility", f"eligibility {run_id} back", run=run_id)
        for run_id in result.packages:
            self._step("restored_grant", f"package grant {run_id} counts again", run=run_id)
        self._view.status = IncidentStatus.RESTORED
        self._view.restored_at = workflow.now()
        self._view.restored_by = ask.actor_id
        await self._record()

    # ---- helpers --------------------------------------------------------------------------------

    async def _act(self, activity: Callable[[A], Awaitable[R]], arg: A) -> R:
        """A step of the response: a local activity in runs that cut off at once (no task-queue
        round trip per step), a regular one in runs from before."""
        if self._at_once:
            return await workflow.execute_local_activity(activity, arg, **URGENT_LOCAL)
        return await workflow.execute_activity(activity, arg, **PROVISIONING)

    async def _tell(self, run_id: str, signal: str, arg: Any) -> None:
        try:
            await workflow.get_external_workflow_handle(run_id).signal(signal, arg)
        except ApplicationError as err:
            # A run that closed meanwhile has nothing left to end.
            workflow.logger.info("%s not told (%s): %s", run_id, signal, err)

    def _step(self, kind: str, text: str, actor: str = "system", **data: Any) -> None:
        view = self._view
        view.steps.append(
            IncidentStep(
                seq=len(view.steps) + 1,
                at=workflow.now(),
                kind=kind,
                text=text,
                actor=actor,
                data=data,
            )
        )
        view.updated_at = workflow.now()
        self._show()

    async def _record(self) -> None:
        await workflow.execute_activity(
            security_activity.record_incident,
            RecordIncidentInput(view=self._view.model_copy(deep=True)),
            **PROVISIONING,
        )

    def _show(self) -> None:
        view = self._view
        who = view.employee_id or view.user
        workflow.set_current_details(
            f"incident {view.incident_id} ({view.severity.value}) about {who}: {view.status.value}"
            + (
                " — waiting for an administrator's restore"
                if view.status is IncidentStatus.SUSPENDED
                else ""
            )
        )
