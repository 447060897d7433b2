"""One role activation, from asking to its end: `pim-activation-{employee}-{role}-{key}`.

It validates the ask (domain/pim/rules.py) against the role's settings and the eligibility Graph
holds, registers the activation in the person's holdings ledger (the identity entity, which
refuses an SoD conflict and a second activation of the same role), runs the role's approval
stages within its approval window, waits for a scheduled start, activates through Graph with an
expiration (so the role ends even if Tenure is down), and sleeps until the end. Then it asks the
ledger what may go, deactivates, and checks Graph no longer shows the role. Every step is a line
of its story, which the record keeps as a request's (package `pim:{role}`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
        ReleaseInput,
        RequestStatus,
        RequestView,
        ReserveInput,
        StoryEntry,
        StoryKind,
        UpdateAnswer,
    )
    from domain.approval.contract import (
        SYSTEM,
        StageView,
    )
    from domain.holdings import GrantKind, ResourceRef
    from domain.lifecycle.identity import (
        ReleaseAccessInput,
        ReserveAccessInput,
    )
    from domain.pim.activation import (
        ActivationInput,
        DeactivateInput,
        ExtendActivationInput,
        PimContract,
        ResolvedRole,
        ResolveRoleInput,
        Suspended,
        VerifyTicketInput,
        package_key,
    )
    from domain.pim.approval import ActivationSubject
    from domain.pim.graph import (
        ActivateRoleInput,
        ActiveAssignmentInput,
        DeactivateRoleInput,
        EligibilityInput,
    )
    from domain.pim.rules import Eligibility, activation_refusal, activation_window
    from domain.policy.values import describe_duration
    from domain.stubs import access as access_activity
    from domain.stubs import pim as pim_activity
    from domain.stubs import pim_graph
    from workflows.steps.retry import POLICY_LOOKUP, PROVISIONING

# How often the end checks Graph again for a role that is still shown after removal.
VERIFY_ATTEMPTS = 5
VERIFY_PAUSE = timedelta(seconds=2)


@workflow.defn(name=PimContract.WORKFLOW)
class PimActivationWorkflow(PimRunCore):
    @workflow.init
    def __init__(self, input: ActivationInput) -> None:
        self._in = input
        self._ask = input.ask
        self._employee_id = input.ask.employee_id
        self._package_id = package_key(input.ask.role_id)
        self._record_search_attributes = input.record_search_attributes
        self._status = RequestStatus.SUBMITTED
        self._story: list[StoryEntry] = []
        self._recorded = 0
        self._recorded_status: RequestStatus | None = None
        self._role: ResolvedRole | None = None
        self._principal: str | None = None
        self._manager: str | None = None
        self._reserved = False
        self._approval = ApprovalEngine(self)
        self._stages: list[StageView] = []
        self._starts_at: datetime | None = None
        self._granted_at: datetime | None = None
        self._ends_at: datetime | None = None
        self._eligible_until: datetime | None = None
        self._closed_at: datetime | None = None
        self._deactivate: DeactivateInput | None = None
        self._extend: ExtendActivationInput | None = None
        self._left: BeneficiaryLeft | None = None
        self._suspended: Suspended | None = None
        self._wakes = 0

    # ---- updates --------------------------------------------------------------------------------

    @workflow.update(name=PimContract.UPDATE_DEACTIVATE)
    def deactivate(self, input: DeactivateInput) -> UpdateAnswer:
        self._deactivate = input
        self.tell(
            "deactivate_requested",
            input.actor.employee_id,
            f"asked to end it: {input.reason or 'no reason'}",
        )
        self._wakes += 1
        active = self._status is RequestStatus.GRANTED
        return self._answer("ending the activation" if active else "withdrawn; nothing was active")

    @deactivate.validator
    def _may_deactivate(self, input: DeactivateInput) -> None:
        actor = input.actor
        admins = self._role.administrators if self._role else []
        if actor.employee_id != self._ask.employee_id and not (
            actor.is_admin or actor.employee_id in admins
        ):
            raise ApplicationError(
                "only the person holding the role or an administrator may end it",
                type=Refusal.NOT_ALLOWED,
            )
        if self._status.final or self._ending():
            raise ApplicationError(
                f"the activation is already ending or over (status {self._status.value})",
                type=Refusal.CLOSED,
            )

    @workflow.update(name=PimContract.UPDATE_EXTEND)
    def extend(self, input: ExtendActivationInput) -> UpdateAnswer:
        end = self._extended_end(input)
        self._extend = input
        self.tell(
            "extension_requested",
            input.actor.employee_id,
            f"asked to extend to {end:%Y-%m-%d %H:%M} UTC: {input.justification or 'no reason'}",
            new_end=end.isoformat(),
        )
        self._wakes += 1
        return self._answer(f"extending to {end:%Y-%m-%d %H:%M} UTC")

    @extend.validator
    def _may_extend(self, input: ExtendActivationInput) -> None:
        if input.actor.employee_id != self._ask.employee_id:
            raise ApplicationError(
                "only the person holding the role may extend it", type=Refusal.NOT_ALLOWED
            )
        if self._status is not RequestStatus.GRANTED or self._ending() or self._extend:
            raise ApplicationError(
                f"only an active activation can be extended (status {self._status.value})",
                type=Refusal.CLOSED,
            )
        role = self._role
        assert role is not None and self._starts_at is not None and self._ends_at is not None
        if (input.duration is None) == (input.new_end is None):
            raise ApplicationError("give either a duration or a new end", type=Refusal.INVALID)
        end = self._extended_end(input)
        longest = self._starts_at + role.role.max_activation
        if end <= self._ends_at:
            raise ApplicationError(
                f"the new end must be later than the current one, "
                f"{self._ends_at:%Y-%m-%d %H:%M} UTC",
                type=Refusal.INVALID,
            )
        if end > longest:
            raise ApplicationError(
                f"{role.role.display_name} may be active for at most "
                f"{describe_duration(role.role.max_activation)}: the latest end is "
                f"{longest:%Y-%m-%d %H:%M} UTC",
                type=Refusal.INVALID,
            )
        if self._eligible_until is not None and end > self._eligible_until:
            raise ApplicationError(
                f"the eligibility ends {self._eligible_until:%Y-%m-%d %H:%M} UTC",
                type=Refusal.INVALID,
            )

    # ---- signals and query ----------------------------------------------------------------------

    @workflow.signal(name=PimContract.SIGNAL_SUSPENDED)
    def suspended(self, suspended: Suspended) -> None:
        if self._suspended is None:
            self._suspended = suspended
            self._wakes += 1

    # ---- the activation's life ------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ActivationInput) -> RequestView:
        ask = input.ask
        self.tell(
            "submitted",
            ask.employee_id,
            f"{ask.employee_id} asked to activate {ask.role_id}"
            + (f" for {describe_duration(ask.duration)}" if ask.duration else ""),
            justification=ask.justification,
            ticket=ask.ticket,
            mfa=ask.mfa,
            start=ask.start.isoformat() if ask.start else None,
        )
        self._set_search_attributes()
        try:
            self._role = await workflow.execute_local_activity(
                pim_activity.resolve_pim_role,
                ResolveRoleInput(role_id=ask.role_id),
                **POLICY_LOOKUP,
            )
        except ActivityError as err:
            return await self._finish(RequestStatus.DENIED, "denied", error_cause(err))
        refusal = await self._check()
        if refusal is not None:
            return await self._finish(RequestStatus.DENIED, "denied", refusal)
        await self.record()

        result = await self._approve()
        if result is not ApprovalResult.APPROVED:
            if result is ApprovalResult.DENIED:
                return await self._finish(RequestStatus.DENIED, "denied", "approval denied")
            return await self._close_unfinished("the approval window passed")
        if not await self._wait_for_start():
            return await self._close_unfinished("withdrawn before its start")
        if not await self._activate():
            return self._view()
        return await self._hold()

    async def _check(self) -> str | None:
        """The person, their eligibility in Graph, the ticket, the role's rules, then the ledger
        (SoD and a second activation of the role, atomically with their other grants)."""
        role, ask = self._role, self._ask
        assert role is not None
        person = await workflow.execute_activity(
            access_activity.load_beneficiary,
            BeneficiaryInput(employee_id=ask.employee_id),
            **PROVISIONING,
        )
        if not person.known or person.stage != "active" or not person.graph_user_id:
            reason = (
                f"{ask.employee_id} is not an active person Tenure knows (stage {person.stage})"
            )
            self.tell("eligibility", SYSTEM, reason)
            return reason
        self._principal = person.graph_user_id
        self._manager = person.worker.manager_id if person.worker else None
        found = await workflow.execute_activity(
            pim_graph.eligibility,
            EligibilityInput(principal_id=person.graph_user_id, target=role.target),
            **PROVISIONING,
        )
        eligibility = (
            Eligibility(
                employee_id=ask.employee_id,
                role_id=ask.role_id,
                starts_at=found.start,
                ends_at=found.end,
            )
            if found is not None
            else None
        )
        self._eligible_until = eligibility.ends_at if eligibility else None
        refused = activation_refusal(role.role, ask, eligibility, workflow.now())
        if refused is None and role.role.ticket.verify and ask.ticket:
            verdict = await workflow.execute_activity(
                pim_activity.verify_ticket,
                VerifyTicketInput(
                    ticket=ask.ticket.strip(), role_id=ask.role_id, employee_id=ask.employee_id
                ),
                **PROVISIONING,
            )
            if not verdict.valid:
                self.tell("eligibility", SYSTEM, verdict.reason, code="ticket_unknown")
                return verdict.reason
        if refused is not None:
            self.tell("eligibility", SYSTEM, refused.reason, code=refused.code.value)
            return refused.reason
        self.tell(
            "eligibility",
            SYSTEM,
            f"{ask.employee_id} is eligible for {role.role.display_name}"
            + (f" until {self._eligible_until:%Y-%m-%d %H:%M} UTC" if self._eligible_until else ""),
        )
        resource = role.target.resource
        reserved = await workflow.execute_activity(
            access_activity.reserve,
            ReserveInput(
                beneficiary_id=ask.employee_id,
                reservation=ReserveAccessInput(
                    request_id=workflow.info().workflow_id,
                    package_id=package_key(role.role_id),
                    keys=[package_key(role.role_id), resource.key],
                    resources=[resource],
                    sod_rules=role.sod_rules,
                    grant_kind=GrantKind.PIM,
                ),
            ),
            **PROVISIONING,
        )
        if not reserved.accepted:
            conflict = reserved.conflict
            self.tell(
                "sod" if conflict else "eligibility",
                SYSTEM,
                reserved.reason,
                **({"rule": conflict.rule, "held": conflict.held} if conflict else {}),
            )
            return reserved.reason
        self._reserved = True
        self.tell("sod", SYSTEM, "no separation-of-duties conflict", rules=len(role.sod_rules))
        return None

    async def _approve(self) -> ApprovalResult:
        role = self._role
        assert role is not None
        approval = role.role.approval
        if approval is None:
            return await self._approval.run(self._subject(), [], "activation", None)
        self._set_status(RequestStatus.PENDING_APPROVAL)
        # The window runs from the ask, whatever the stages' own deadlines say.
        hard_stop = self._in.submitted_at + approval.window
        return await self._approval.run(self._subject(), approval.stages, "activation", hard_stop)

    async def _wait_for_start(self) -> bool:
        start = self._ask.start
        while start is not None and workflow.now() < start:
            if self._status is not RequestStatus.SCHEDULED:
                self._set_status(RequestStatus.SCHEDULED)
                self.tell(
                    "scheduled",
                    SYSTEM,
                    f"starts {start:%Y-%m-%d %H:%M} UTC",
                    start=start.isoformat(),
                )
                await self.record()
            if self._ending():
                return False
            await self.sleep_until(start, "activation starts")
        return not self._ending()

    async def _activate(self) -> bool:
        role, ask = self._role, self._ask
        assert role is not None and self._principal is not None
        self._set_status(RequestStatus.GRANTING)
        now = workflow.now()
        # The length asked for counts from when it really starts (after approval, say).
        start, end = activation_window(role.role, ask.model_copy(update={"start": now}), now)
        if self._eligible_until is not None and end > self._eligible_until:
            end = self._eligible_until
        try:
            await workflow.execute_activity(
                pim_graph.activate_role,
                ActivateRoleInput(
                    principal_id=self._principal,
                    target=role.target,
                    end=end,
                    justification=ask.justification[:400],
                    ticket=ask.ticket,
                    activation_id=workflow.info().workflow_id,
                ),
                **PROVISIONING,
            )
        except ActivityError as err:
            await self._finish(
                RequestStatus.FAILED, "failed", f"activation failed: {error_cause(err)}"
            )
            return False
        self._starts_at, self._granted_at, self._ends_at = start, now, end
        self._set_status(RequestStatus.GRANTED)
        key = role.target.resource.key
        self.tell(
            "granted",
            SYSTEM,
            f"activated {role.role.display_name} ({key}) until {end:%Y-%m-%d %H:%M} UTC",
            resources=[key],
            until=end.isoformat(),
        )
        await self._tell_identity("granted")
        await self._notify_all(
            f"Role activated: {role.role.display_name} for {ask.employee_id}",
            f"<p>{ask.employee_id} activated <b>{escape(role.role.display_name)}</b> until "
            f"{end:%Y-%m-%d %H:%M} UTC: {escape(ask.justification or '(no justification)')}</p>",
        )
        await self.record()
        return True

    async def _hold(self) -> RequestView:
        while True:
            if self._suspended is not None:
                return await self._end(
                    RequestStatus.REVOKED, f"incident {self._suspended.incident_id}"
                )
            if self._left is not None:
                return await self._end(RequestStatus.REVOKED, "the person left")
            if self._deactivate is not None:
                who = self._deactivate.actor.employee_id
                return await self._end(RequestStatus.REVOKED, f"deactivated by {who}")
            if self._extend is not None:
                await self._apply_extension()
                continue
            end = self._ends_at
            assert end is not None
            if workflow.now() >= end:
                return await self._end(RequestStatus.EXPIRED, "its time ran out")
            await self.sleep_until(end, "activation ends")
            await self.record()

    async def _apply_extension(self) -> None:
        role, ask = self._role, self._extend
        assert role is not None and ask is not None and self._principal is not None
        end = self._extended_end(ask)
        self._extend = None
        await workflow.execute_activity(
            pim_graph.activate_role,
            ActivateRoleInput(
                principal_id=self._principal,
                target=role.target,
                end=end,
                justification=(ask.justification or self._ask.justification)[:400],
                ticket=self._ask.ticket,
                activation_id=workflow.info().workflow_id,
            ),
            **PROVISIONING,
        )
        self._ends_at = end
        self.tell(
            "extended",
            ask.actor.employee_id,
            f"extended to {end:%Y-%m-%d %H:%M} UTC",
            until=end.isoformat(),
            resources=[role.target.resource.key],
        )
        await self._tell_identity("granted")
        await self.record()

    async def _end(self, status: RequestStatus, why: str) -> RequestView:
        """Ask the ledger what may go, remove it from Graph, and check it is gone."""
        role = self._role
        assert role is not None and self._principal is not None
        resource = role.target.resource
        release = await workflow.execute_activity(
            access_activity.release,
            ReleaseInput(
                beneficiary_id=self._ask.employee_id,
                release=ReleaseAccessInput(
                    request_id=workflow.info().workflow_id, resources=[resource]
                ),
            ),
            **PROVISIONING,
        )
        removed: list[ResourceRef] = list(release.remove)
        try:
            if removed:
                await self._remove_and_verify(why)
        except ActivityError as err:
            return await self._finish(
                RequestStatus.FAILED, "failed", f"deactivation failed: {error_cause(err)}"
            )
        except ApplicationError as err:
            return await self._finish(RequestStatus.FAILED, "failed", str(err))
        keys = [r.key for r in removed]
        kept = [
            f"{h.resource.key} ({', '.join(g.describe() for g in h.grants)})" for h in release.kept
        ]
        text = f"removed {', '.join(keys) or 'nothing'}: {why}"
        if kept:
            text += f"; kept, still granted by something else: {', '.join(kept)}"
        self.tell("removed", SYSTEM, text, resources=keys, reason=why)
        await self._notify_all(
            f"Role activation ended: {role.role.display_name} for {self._ask.employee_id}",
            f"<p>{escape(role.role.display_name)} is no longer active for "
            f"{self._ask.employee_id}: {escape(why)}.</p>",
        )
        return await self._finish(status, None, why)

    async def _remove_and_verify(self, why: str) -> None:
        role = self._role
        assert role is not None and self._principal is not None
        for attempt in range(1, VERIFY_ATTEMPTS + 1):
            await workflow.execute_activity(
                pim_graph.deactivate_role,
                DeactivateRoleInput(principal_id=self._principal, target=role.target, reason=why),
                **PROVISIONING,
            )
            still = await workflow.execute_activity(
                pim_graph.active_assignment,
                ActiveAssignmentInput(principal_id=self._principal, target=role.target),
                **PROVISIONING,
            )
            if still is None:
                self.tell("verified", SYSTEM, f"Graph no longer shows {role.target.describe()}")
                return
            workflow.logger.warning("role still shown after removal (attempt %d)", attempt)
            await workflow.sleep(VERIFY_PAUSE)
        raise ApplicationError(
            f"Graph still shows {role.target.describe()} after {VERIFY_ATTEMPTS} removals"
        )

    # ---- closing --------------------------------------------------------------------------------

    async def _close_unfinished(self, otherwise: str) -> RequestView:
        if self._suspended is not None:
            why = f"cancelled: incident {self._suspended.incident_id}"
        elif self._left is not None:
            why = "cancelled: the person left"
        elif self._deactivate is not None:
            why = f"withdrawn by {self._deactivate.actor.employee_id}"
        else:
            return await self._finish(RequestStatus.DENIED, "denied", otherwise)
        return await self._finish(RequestStatus.CANCELLED, "cancelled", why)

    async def _finish(
        self, status: RequestStatus, kind: StoryKind | None, text: str
    ) -> RequestView:
        self._set_status(status)
        self._closed_at = workflow.now()
        if kind is not None:
            self.tell(kind, SYSTEM, text)
        if self._reserved:
            await self._tell_identity("closed")
        if status in (RequestStatus.DENIED, RequestStatus.FAILED, RequestStatus.CANCELLED):
            name = self._role.role.display_name if self._role else self._ask.role_id
            await self.notify(
                [self._ask.employee_id],
                f"Role activation {status.value}: {name}",
                f"<p>Your activation of {escape(name)} is {status.value}: {escape(text)}.</p>",
            )
        await self.record()
        self._show()
        return self._view()

    # ---- helpers --------------------------------------------------------------------------------

    def _ending(self) -> bool:
        return self._deactivate is not None or self._left is not None or self._suspended is not None

    def _extended_end(self, ask: ExtendActivationInput) -> datetime:
        assert self._starts_at is not None
        if ask.new_end is not None:
            return ask.new_end
        assert ask.duration is not None
        return self._starts_at + ask.duration

    def _subject(self) -> ActivationSubject:
        role, ask = self._role, self._ask
        assert role is not None
        return ActivationSubject(
            activation_id=workflow.info().workflow_id,
            role_name=role.role.display_name,
            employee_id=ask.employee_id,
            duration=describe_duration(ask.duration or role.role.default_activation),
            justification=ask.justification,
            ticket=ask.ticket,
            manager_id=self._manager,
        )

    def _view(self) -> RequestView:
        role = self._role
        return RequestView(
            request_id=workflow.info().workflow_id,
            package_id=package_key(self._ask.role_id),
            package_name=role.role.display_name if role else self._ask.role_id,
            beneficiary_id=self._ask.employee_id,
            requester_id=self._ask.employee_id,
            status=self._status,
            justification=self._ask.justification,
            answers={"ticket": self._ask.ticket} if self._ask.ticket else {},
            submitted_at=self._in.submitted_at,
            resources=[role.target.resource.key] if role else [],
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
        elif self._status is RequestStatus.GRANTED and self._ends_at is not None:
            text = f"active until {self._ends_at:%Y-%m-%d %H:%M} UTC"
        elif self._status is RequestStatus.SCHEDULED and self._ask.start is not None:
            text = f"starts {self._ask.start:%Y-%m-%d %H:%M} UTC"
        else:
            text = self._status.value.replace("_", " ")
        workflow.set_current_details(f"{self._ask.role_id} for {self._ask.employee_id}: {text}")
