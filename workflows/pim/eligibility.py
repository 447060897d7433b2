"""One person's eligibility for one privileged role: `pim-eligibility-{employee}-{role}`.

An administrator assigns it; the run writes it to Graph (roleEligibilityScheduleRequests, or
the group eligibility requests for a privileged group) with its end, so Graph itself forgets it
on time, and registers it with the person's identity entity, so a leave or an incident reaches
it. A week before the end (a day for short ones) the person is reminded; they may ask for an
extension, which the role's approval stages decide (its administrators where it has none); an
administrator's extension applies at once. An incident suspends it (removed from Graph, kept
here); a restore puts it back unless it expired meanwhile.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.access.request_story import error_cause
from workflows.approval import ApprovalEngine, ApprovalResult
from workflows.pim.core import PimRunCore

with workflow.unsafe.imports_passed_through():
    from domain.access.request import (
        BeneficiaryInput,
        BeneficiaryLeft,
        Refusal,
        RequestStatus,
        RequestView,
        ReserveInput,
        StoryEntry,
        StoryKind,
        UpdateAnswer,
    )
    from domain.approval.contract import SYSTEM, StageView
    from domain.approval.stages import ApprovalStage, ApproverKind, ApproverSource
    from domain.holdings import GrantKind
    from domain.lifecycle.identity import ReserveAccessInput
    from domain.pim.activation import (
        EligibilityAssignInput,
        EligibilityContract,
        ExtendEligibilityAsk,
        RemoveEligibilityAsk,
        ResolveRoleInput,
        Restored,
        Suspended,
        eligibility_key,
    )
    from domain.pim.approval import EligibilityExtensionSubject
    from domain.pim.graph import AssignEligibilityInput, RemoveEligibilityInput
    from domain.pim.rules import EligibilityEndRefused, eligibility_end, eligibility_reminder
    from domain.stubs import access as access_activity
    from domain.stubs import pim as pim_activity
    from domain.stubs import pim_graph
    from workflows.steps.retry import POLICY_LOOKUP, PROVISIONING


@workflow.defn(name=EligibilityContract.WORKFLOW)
class PimEligibilityWorkflow(PimRunCore):
    @workflow.init
    def __init__(self, input: EligibilityAssignInput) -> None:
        self._in = input
        self._employee_id = input.employee_id
        self._package_id = eligibility_key(input.role_id)
        self._record_search_attributes = input.record_search_attributes
        self._status = RequestStatus.SUBMITTED
        self._story: list[StoryEntry] = []
        self._recorded = 0
        self._recorded_status: RequestStatus | None = None
        self._role = None
        self._manager: str | None = None
        self._principal: str | None = None
        self._reserved = False
        self._approval = ApprovalEngine(self)
        self._stages: list[StageView] = []
        self._granted_at: datetime | None = None
        self._ends_at: datetime | None = None
        self._closed_at: datetime | None = None
        self._remove: RemoveEligibilityAsk | None = None
        self._extend: ExtendEligibilityAsk | None = None
        self._extensions = 0
        self._left: BeneficiaryLeft | None = None
        self._suspended: Suspended | None = None
        self._restored: Restored | None = None
        self._reminded: set[datetime] = set()
        self._wakes = 0

    # ---- updates --------------------------------------------------------------------------------

    @workflow.update(name=EligibilityContract.UPDATE_REMOVE)
    def remove(self, input: RemoveEligibilityAsk) -> UpdateAnswer:
        self._remove = input
        self.tell(
            "revoked",
            input.actor.employee_id,
            f"eligibility removed: {input.reason or 'no reason'}",
            resources=[],
        )
        self._wakes += 1
        return self._answer("removing the eligibility")

    @remove.validator
    def _may_remove(self, input: RemoveEligibilityAsk) -> None:
        self._require_admin(input.actor.employee_id, input.actor.is_admin, "remove an eligibility")
        if self._status.final or self._remove is not None:
            raise ApplicationError(
                f"nothing to remove (status {self._status.value})", type=Refusal.CLOSED
            )

    @workflow.update(name=EligibilityContract.UPDATE_EXTEND)
    def request_extension(self, input: ExtendEligibilityAsk) -> UpdateAnswer:
        self._extend = input
        end = self._asked_end(input)
        shown = f"{end:%Y-%m-%d %H:%M} UTC" if end else "no end"
        self.tell(
            "extension_requested",
            input.actor.employee_id,
            f"asked to extend the eligibility to {shown}: {input.justification or 'no reason'}",
            new_end=end.isoformat() if end else None,
        )
        self._wakes += 1
        admin = self._is_admin(input.actor.employee_id, input.actor.is_admin)
        return self._answer("extending" if admin else "extension asked; it needs approval")

    @request_extension.validator
    def _may_extend(self, input: ExtendEligibilityAsk) -> None:
        actor = input.actor
        if actor.employee_id != self._employee_id and not self._is_admin(
            actor.employee_id, actor.is_admin
        ):
            raise ApplicationError(
                "only the eligible person or an administrator may extend an eligibility",
                type=Refusal.NOT_ALLOWED,
            )
        if self._status is not RequestStatus.GRANTED or self._ending() or self._extend:
            raise ApplicationError(
                f"only a current eligibility can be extended (status {self._status.value})",
                type=Refusal.CLOSED,
            )
        end = self._asked_end(input)
        if end is not None and self._ends_at is not None and end <= self._ends_at:
            raise ApplicationError(
                f"the new end must be later than {self._ends_at:%Y-%m-%d %H:%M} UTC",
                type=Refusal.INVALID,
            )

    # ---- signals and query ----------------------------------------------------------------------

    @workflow.signal(name=EligibilityContract.SIGNAL_SUSPENDED)
    def suspended(self, suspended: Suspended) -> None:
        self._suspended = suspended
        self._restored = None
        self._wakes += 1

    @workflow.signal(name=EligibilityContract.SIGNAL_RESTORED)
    def restored(self, restored: Restored) -> None:
        if self._suspended is not None:
            self._restored = restored
            self._wakes += 1

    # ---- the eligibility's life -----------------------------------------------------------------

    @workflow.run
    async def run(self, input: EligibilityAssignInput) -> RequestView:
        self.tell(
            "submitted",
            input.actor.employee_id,
            f"{input.actor.employee_id} made {input.employee_id} eligible for {input.role_id}",
            justification=input.justification,
            until=input.until.isoformat() if input.until else None,
            permanent=input.permanent,
        )
        self._set_search_attributes()
        try:
            self._role = await workflow.execute_local_activity(
                pim_activity.resolve_pim_role,
                ResolveRoleInput(role_id=input.role_id),
                **POLICY_LOOKUP,
            )
        except ActivityError as err:
            return await self._finish(RequestStatus.DENIED, "denied", error_cause(err))
        refusal = await self._check()
        if refusal is not None:
            return await self._finish(RequestStatus.DENIED, "denied", refusal)
        if not await self._write(self._ends_at, "granted"):
            return self._view()
        return await self._hold()

    async def _check(self) -> str | None:
        role, input = self._role, self._in
        assert role is not None
        if not self._is_admin(input.actor.employee_id, input.actor.is_admin):
            return "only an administrator may make someone eligible"
        try:
            self._ends_at = eligibility_end(role.role, workflow.now(), input.until, input.permanent)
        except EligibilityEndRefused as err:
            self.tell("eligibility", SYSTEM, str(err))
            return str(err)
        person = await workflow.execute_activity(
            access_activity.load_beneficiary,
            BeneficiaryInput(employee_id=input.employee_id),
            **PROVISIONING,
        )
        if not person.known or person.stage != "active" or not person.graph_user_id:
            return (
                f"{input.employee_id} is not an active person Tenure knows (stage {person.stage})"
            )
        self._principal = person.graph_user_id
        self._manager = person.worker.manager_id if person.worker else None
        reserved = await workflow.execute_activity(
            access_activity.reserve,
            ReserveInput(
                beneficiary_id=input.employee_id,
                reservation=ReserveAccessInput(
                    request_id=workflow.info().workflow_id,
                    package_id=self._package_id,
                    keys=[],
                    grant_kind=GrantKind.PIM_ELIGIBILITY,
                ),
            ),
            **PROVISIONING,
        )
        if not reserved.accepted:
            return reserved.reason
        self._reserved = True
        return None

    async def _write(self, end: datetime | None, kind: StoryKind) -> bool:
        """Put the eligibility in Graph with this end; False when Graph refused for good."""
        role = self._role
        assert role is not None and self._principal is not None
        try:
            await workflow.execute_activity(
                pim_graph.assign_eligibility,
                AssignEligibilityInput(
                    principal_id=self._principal,
                    target=role.target,
                    start=workflow.now(),
                    end=end,
                    justification=f"{self._in.justification[:300]} [{workflow.info().workflow_id}]",
                ),
                **PROVISIONING,
            )
        except ActivityError as err:
            await self._finish(
                RequestStatus.FAILED, "failed", f"eligibility not written: {error_cause(err)}"
            )
            return False
        first = self._granted_at is None
        self._granted_at = self._granted_at or workflow.now()
        self._ends_at = end
        self._set_status(RequestStatus.GRANTED)
        shown = f"until {end:%Y-%m-%d %H:%M} UTC" if end else "with no end"
        key = f"eligible:{role.target.resource.key}"
        self.tell(
            kind,
            SYSTEM,
            f"eligible for {role.role.display_name} {shown}",
            resources=[key],
            until=end.isoformat() if end else None,
        )
        if first:
            await self._tell_identity("granted")
            await self.notify(
                [self._employee_id],
                f"You are eligible for {role.role.display_name}",
                f"<p>You may activate <b>{escape(role.role.display_name)}</b> {shown}, with "
                f"<code>tenure pim activate {role.role_id}</code>.</p>",
            )
        await self.record()
        return True

    async def _hold(self) -> RequestView:
        while True:
            if self._status.final:
                return self._view()  # a write after a restore failed for good
            if self._left is not None:
                return await self._end(RequestStatus.REVOKED, "the person left")
            if self._remove is not None:
                who = self._remove.actor.employee_id
                return await self._end(RequestStatus.REVOKED, f"removed by {who}")
            if self._suspended is not None:
                if not await self._sit_out_suspension():
                    continue
            if self._extend is not None:
                await self._decide_extension()
                continue
            end, now = self._ends_at, workflow.now()
            if end is not None and now >= end:
                return await self._end(RequestStatus.EXPIRED, "it expired")
            remind = self._reminder_due()
            if remind is not None and remind <= now:
                self._reminded.add(remind)
                await self._remind(end)
                continue
            wake = min((t for t in (remind, end) if t is not None), default=None)
            await self.sleep_until(wake, "eligibility ends" if wake == end else "reminder")

    async def _sit_out_suspension(self) -> bool:
        """Out of Graph while the person is suspended; back after a restore unless it expired
        meanwhile. True when the hold goes on as before."""
        suspended = self._suspended
        assert suspended is not None and self._role is not None
        await self._remove_from_graph(f"incident {suspended.incident_id}")
        self.tell(
            "suspended",
            SYSTEM,
            f"suspended by incident {suspended.incident_id}: removed from Graph, kept here",
            resources=[],
        )
        await self.record()
        while self._restored is None and self._left is None and self._remove is None:
            await self.sleep_until(self._ends_at, "a restore or the end")
            if self._ends_at is not None and workflow.now() >= self._ends_at:
                break
        restored, self._suspended, self._restored = self._restored, None, None
        if restored is None or self._left is not None or self._remove is not None:
            return False  # the loop ends it (left, removed, expired), already gone from Graph
        if self._ends_at is not None and workflow.now() >= self._ends_at:
            return False
        return await self._write(self._ends_at, "restored")

    async def _decide_extension(self) -> None:
        role, ask = self._role, self._extend
        assert role is not None and ask is not None
        self._extensions += 1
        approved = True
        if not self._is_admin(ask.actor.employee_id, ask.actor.is_admin):
            stages = role.role.approval.stages if role.role.approval else self._admin_stage()
            result = await self._approval.run(
                self._subject(), stages, f"extension-{self._extensions}", self._ends_at
            )
            approved = result is ApprovalResult.APPROVED
            self.tell(
                "extension_decided",
                SYSTEM,
                "extension approved" if approved else f"extension not granted ({result.value})",
            )
        self._extend = None
        if not approved or self._ending():
            await self.record()
            return
        try:
            end = eligibility_end(role.role, workflow.now(), ask.until, ask.permanent)
        except EligibilityEndRefused as err:
            self.tell("extension_decided", SYSTEM, f"extension not applied: {err}")
            await self.record()
            return
        await self._write(end, "extended")

    async def _remind(self, end: datetime | None) -> None:
        role = self._role
        assert role is not None and end is not None
        self.tell("expiry_reminder", SYSTEM, f"told that the eligibility ends {end:%Y-%m-%d}")
        await self.notify(
            [self._employee_id],
            f"Eligibility ending: {role.role.display_name}",
            f"<p>Your eligibility for {escape(role.role.display_name)} ends "
            f"{end:%Y-%m-%d %H:%M} UTC. Ask for an extension with <code>tenure pim extend-"
            f"eligibility {role.role_id}</code> if you still need it.</p>",
        )
        await self.record()

    async def _end(self, status: RequestStatus, why: str) -> RequestView:
        try:
            await self._remove_from_graph(why)
        except ActivityError as err:
            return await self._finish(
                RequestStatus.FAILED, "failed", f"eligibility not removed: {error_cause(err)}"
            )
        role = self._role
        assert role is not None
        key = f"eligible:{role.target.resource.key}"
        self.tell("removed", SYSTEM, f"no longer eligible: {why}", resources=[key], reason=why)
        await self.notify(
            [self._employee_id],
            f"Eligibility ended: {role.role.display_name}",
            f"<p>You are no longer eligible for {escape(role.role.display_name)}: "
            f"{escape(why)}.</p>",
        )
        return await self._finish(status, None, why)

    async def _remove_from_graph(self, why: str) -> None:
        role = self._role
        assert role is not None and self._principal is not None
        await workflow.execute_activity(
            pim_graph.remove_eligibility,
            RemoveEligibilityInput(principal_id=self._principal, target=role.target, reason=why),
            **PROVISIONING,
        )

    async def _finish(
        self, status: RequestStatus, kind: StoryKind | None, text: str
    ) -> RequestView:
        self._set_status(status)
        self._closed_at = workflow.now()
        if kind is not None:
            self.tell(kind, SYSTEM, text)
        if self._reserved:
            await self._tell_identity("closed")
        await self.record()
        self._show()
        return self._view()

    # ---- helpers --------------------------------------------------------------------------------

    def _ending(self) -> bool:
        return self._left is not None or self._remove is not None or self._suspended is not None

    def _is_admin(self, employee_id: str, token_admin: bool) -> bool:
        admins = self._role.administrators if self._role else []
        return token_admin or employee_id in admins

    def _require_admin(self, employee_id: str, token_admin: bool, what: str) -> None:
        if not self._is_admin(employee_id, token_admin):
            raise ApplicationError(f"only an administrator may {what}", type=Refusal.NOT_ALLOWED)

    def _asked_end(self, ask: ExtendEligibilityAsk) -> datetime | None:
        role = self._role
        assert role is not None
        if ask.permanent:
            return None
        try:
            return eligibility_end(role.role, workflow.now(), ask.until, False)
        except EligibilityEndRefused as err:
            raise ApplicationError(str(err), type=Refusal.INVALID) from None

    def _admin_stage(self) -> list[ApprovalStage]:
        """Where a role has no approval stages, its administrators decide extensions."""
        role = self._role
        assert role is not None
        if not role.administrators:
            return []
        source = ApproverSource(kind=ApproverKind.PEOPLE, people=role.administrators)
        return [ApprovalStage(name="administrators", approvers=[source])]

    def _reminder_due(self) -> datetime | None:
        if self._ends_at is None or self._granted_at is None:
            return None
        at = eligibility_reminder(self._ends_at, self._granted_at)
        return at if at is not None and at not in self._reminded else None

    def _subject(self) -> EligibilityExtensionSubject:
        role, ask = self._role, self._extend
        assert role is not None and ask is not None
        end = self._asked_end(ask)
        return EligibilityExtensionSubject(
            eligibility_id=workflow.info().workflow_id,
            role_name=role.role.display_name,
            employee_id=self._employee_id,
            new_end=f"{end:%Y-%m-%d %H:%M} UTC" if end else "no end",
            justification=ask.justification,
            manager_id=self._manager,
        )

    def _view(self) -> RequestView:
        role = self._role
        return RequestView(
            request_id=workflow.info().workflow_id,
            package_id=self._package_id,
            package_name=f"eligible: {role.role.display_name}" if role else self._package_id,
            beneficiary_id=self._employee_id,
            requester_id=self._in.actor.employee_id,
            status=self._status,
            justification=self._in.justification,
            submitted_at=self._in.submitted_at,
            resources=[f"eligible:{role.target.resource.key}"] if role else [],
            waiting_on=self._approval.view,
            stages=[s.model_copy() for s in self._stages],
            granted_at=self._granted_at,
            expires_at=self._ends_at,
            closed_at=self._closed_at,
            story=list(self._story),
            updated_at=workflow.now(),
        )

    def _show(self) -> None:
        stage = self._approval.describe()
        if stage is not None:
            text = stage
        elif self._suspended is not None:
            text = f"suspended by incident {self._suspended.incident_id}"
        elif self._status is RequestStatus.GRANTED:
            text = (
                f"eligible until {self._ends_at:%Y-%m-%d %H:%M} UTC"
                if self._ends_at
                else "eligible, no end"
            )
        else:
            text = self._status.value.replace("_", " ")
        workflow.set_current_details(f"{self._in.role_id} for {self._employee_id}: {text}")
