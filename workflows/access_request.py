"""One access request, from asking to removal: `access-request-{beneficiary}-{package}-{key}`.

It checks eligibility and answers, registers with the beneficiary's identity entity (which refuses
an SoD conflict with anything held or pending, atomically per person), walks the approval stages on
durable timers, grants idempotently, and holds the grant until it expires, is revoked, or the person
leaves. Approvers act through Updates whose validators refuse what DESIGN.md rule 5 lists; every
step is written to the request's story, which an activity copies to the access record store.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.approval_chain import ApprovalChain, ChainHost, ChainResult

with workflow.unsafe.imports_passed_through():
    from domain.access_request import (
        SYSTEM,
        AccessActivityNames,
        AccessPlan,
        AccessPlanInput,
        AccessRequestContract,
        AccessRequestInput,
        Beneficiary,
        BeneficiaryInput,
        BeneficiaryLeft,
        CancelInput,
        DecideInput,
        ExtendInput,
        NotifyInput,
        NotifyResult,
        RecordRequestInput,
        Refusal,
        RefusedAttempt,
        RequestStatus,
        RequestView,
        ReserveInput,
        RevokeInput,
        StageView,
        StoryEntry,
        StoryKind,
        UpdateAnswer,
    )
    from domain.access_rules import (
        answer_errors,
        eligibility_refusal,
        extension_refusal,
        grant_end,
        requested_end_error,
    )
    from domain.approval import decision_refusal, expiry_reminders
    from domain.audit import AuditActivityNames
    from domain.events import identity_workflow_id
    from domain.identity import (
        AccessRequestChanged,
        IdentityContract,
        ReserveAccessInput,
        ReserveAccessResult,
    )
    from domain.provisioning import ActivityNames, EnsureScimUserInput, GroupMembershipInput
    from domain.search_attributes import ACCESS_PACKAGE, EMPLOYEE_ID, REQUEST_STATUS
    from domain.sod import package_keys
    from workflows.retry import NOTICE, PROVISIONING


# Histories from before it replay without the catch-up `record` in `sleep_until`.
RECORD_BEFORE_SLEEP_PATCH = "record-before-sleep"


@workflow.defn(name=AccessRequestContract.WORKFLOW)
class AccessRequestWorkflow(ChainHost):
    @workflow.init
    def __init__(self, input: AccessRequestInput) -> None:
        self._in = input
        self._status = RequestStatus.SUBMITTED
        self._story: list[StoryEntry] = []
        self._recorded = 0  # story lines (and status) the record store has
        self._recorded_status: RequestStatus | None = None
        self._plan: AccessPlan | None = None
        self._person: Beneficiary | None = None
        self._reserved = False
        self._chain: ApprovalChain | None = None  # the stage waiting for decisions, if any
        self._stages: list[StageView] = []
        self._granted_at: datetime | None = None
        self._expires_at: datetime | None = None
        self._closed_at: datetime | None = None
        self._cancel: CancelInput | None = None
        self._revoke: RevokeInput | None = None
        self._left: BeneficiaryLeft | None = None
        self._extension: ExtendInput | None = None
        self._extensions = 0
        self._wakes = 0

    # ---- updates: people acting on the request --------------------------------------------------

    @workflow.update(name=AccessRequestContract.UPDATE_DECIDE)
    def decide(self, input: DecideInput) -> UpdateAnswer:
        assert self._chain is not None
        message = self._chain.decide(input.actor.employee_id, input.decision, input.comment)
        self._wakes += 1
        return self._answer(message)

    @decide.validator
    def _may_decide(self, input: DecideInput) -> None:
        if self._chain is None:
            raise ApplicationError(
                f"request is not waiting for a decision (status {self._status.value})",
                type=Refusal.CLOSED,
            )
        reason = decision_refusal(
            self._chain.tally,
            input.actor.employee_id,
            self._in.requester_id,
            self._in.beneficiary_id,
        )
        if reason is not None:
            raise ApplicationError(reason, type=Refusal.NOT_ALLOWED)

    @workflow.update(name=AccessRequestContract.UPDATE_CANCEL)
    def cancel(self, input: CancelInput) -> UpdateAnswer:
        self._cancel = input
        self.tell("cancelled", input.actor.employee_id, f"cancelled: {input.reason or 'no reason'}")
        self._wakes += 1
        return self._answer("cancelled; nothing was granted")

    @cancel.validator
    def _may_cancel(self, input: CancelInput) -> None:
        actor = input.actor.employee_id
        if actor not in (self._in.requester_id, self._in.beneficiary_id) and not self._is_admin(
            input.actor.employee_id, input.actor.is_admin
        ):
            raise ApplicationError(
                "only the requester, the person it is for, or an administrator may cancel",
                type=Refusal.NOT_ALLOWED,
            )
        if not self._status.open or self._cancel is not None:
            hint = "; ask an administrator to revoke it" if self._status.name == "GRANTED" else ""
            raise ApplicationError(
                f"request can no longer be cancelled (status {self._status.value}){hint}",
                type=Refusal.CLOSED,
            )

    @workflow.update(name=AccessRequestContract.UPDATE_REVOKE)
    def revoke(self, input: RevokeInput) -> UpdateAnswer:
        self._revoke = input
        self.tell("revoked", input.actor.employee_id, f"revoked: {input.reason or 'no reason'}")
        self._wakes += 1
        return self._answer("revoked; the access is being removed")

    @revoke.validator
    def _may_revoke(self, input: RevokeInput) -> None:
        if not self._is_admin(input.actor.employee_id, input.actor.is_admin):
            raise ApplicationError("only an administrator may revoke", type=Refusal.NOT_ALLOWED)
        if self._status not in (RequestStatus.GRANTING, RequestStatus.GRANTED) or self._revoke:
            raise ApplicationError(
                f"nothing to revoke (status {self._status.value})", type=Refusal.CLOSED
            )

    @workflow.update(name=AccessRequestContract.UPDATE_EXTEND)
    def request_extension(self, input: ExtendInput) -> UpdateAnswer:
        self._extension = input
        self.tell(
            "extension_requested",
            input.actor.employee_id,
            f"asked to extend to {input.new_end:%Y-%m-%d %H:%M} UTC: {input.justification}",
            new_end=input.new_end.isoformat(),
        )
        self._wakes += 1
        needs = self._plan is not None and self._plan.policy.expiry.extension.requires_approval
        return self._answer("extension asked; it needs approval" if needs else "extension asked")

    @request_extension.validator
    def _may_extend(self, input: ExtendInput) -> None:
        if input.actor.employee_id not in (self._in.requester_id, self._in.beneficiary_id):
            raise ApplicationError(
                "only the requester or the person holding the access may ask for an extension",
                type=Refusal.NOT_ALLOWED,
            )
        if self._status is not RequestStatus.GRANTED or self._revoke or self._left:
            raise ApplicationError(
                f"only granted access can be extended (status {self._status.value})",
                type=Refusal.CLOSED,
            )
        if self._extension is not None:
            raise ApplicationError("an extension is already waiting", type=Refusal.CLOSED)
        assert self._plan is not None
        reason = extension_refusal(
            self._plan.policy.expiry, self._expires_at, input.new_end, workflow.now()
        )
        if reason is not None:
            raise ApplicationError(reason, type=Refusal.INVALID)

    # ---- signals and query ----------------------------------------------------------------------

    @workflow.signal(name=AccessRequestContract.SIGNAL_REFUSED_ATTEMPT)
    def refused_attempt(self, attempt: RefusedAttempt) -> None:
        self.tell(
            "refused_attempt",
            attempt.actor.employee_id,
            f"{attempt.action} refused: {attempt.reason}",
            action=attempt.action,
            reason=attempt.reason,
            attempted_at=attempt.at.isoformat(),
        )
        self._wakes += 1

    @workflow.signal(name=AccessRequestContract.SIGNAL_BENEFICIARY_LEFT)
    def beneficiary_left(self, left: BeneficiaryLeft) -> None:
        if self._left is None:
            self._left = left
            self._wakes += 1

    @workflow.query(name=AccessRequestContract.QUERY_DETAILS)
    def details(self) -> RequestView:
        return self._view()

    # ---- the request's life ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: AccessRequestInput) -> RequestView:
        self.tell(
            "submitted",
            input.requester_id,
            f"{input.requester_id} asked for {input.package_id} for {input.beneficiary_id}",
            justification=input.justification,
            answers=input.answers,
            requested_end=input.requested_end.isoformat() if input.requested_end else None,
        )
        self._set_search_attributes()
        try:
            self._plan = await workflow.execute_local_activity(
                AccessActivityNames.RESOLVE_ACCESS_PLAN,
                AccessPlanInput(package_id=input.package_id),
                result_type=AccessPlan,
                start_to_close_timeout=timedelta(seconds=10),
            )
        except ActivityError as err:
            return await self._finish(RequestStatus.DENIED, "denied", f"{_cause(err)}")
        await self.record()

        refusal = await self._check_request()
        if refusal is not None:
            return await self._finish(RequestStatus.DENIED, "denied", refusal)
        if self._interrupted():
            return await self._close_unfinished()

        result = await self._approve("request", hard_stop=None)
        if result is not ChainResult.APPROVED:
            if result is ChainResult.DENIED:
                return await self._finish(RequestStatus.DENIED, "denied", "approval denied")
            return await self._close_unfinished()
        if not await self._grant():
            return self._view()
        return await self._hold()

    async def _check_request(self) -> str | None:
        """Eligibility, answers, then SoD (atomically with the person's other requests)."""
        plan, input = self._plan, self._in
        assert plan is not None
        self._person = await workflow.execute_activity(
            AccessActivityNames.LOAD_BENEFICIARY,
            BeneficiaryInput(employee_id=input.beneficiary_id),
            result_type=Beneficiary,
            **PROVISIONING,
        )
        problems = [
            eligibility_refusal(plan.policy.who_may_request, self._person, input.requester_id),
            *answer_errors(plan.policy, input.justification, input.answers),
            requested_end_error(plan.policy.expiry, input.submitted_at, input.requested_end),
        ]
        problems = [p for p in problems if p]
        if problems:
            self.tell("eligibility", SYSTEM, "not eligible: " + "; ".join(problems))
            return "not eligible: " + "; ".join(problems)
        self.tell("eligibility", SYSTEM, f"{input.beneficiary_id} may request this package")

        keys = package_keys(plan.package_id, plan.resources)
        reserved = await workflow.execute_activity(
            AccessActivityNames.RESERVE,
            ReserveInput(
                beneficiary_id=input.beneficiary_id,
                reservation=ReserveAccessInput(
                    request_id=workflow.info().workflow_id,
                    package_id=plan.package_id,
                    keys=keys,
                    groups=[r.group for r in plan.resources if r.group],
                    apps=sorted({r.app for r in plan.resources if r.app}),
                    sod_rules=plan.sod_rules,
                ),
            ),
            result_type=ReserveAccessResult,
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
        self.tell("sod", SYSTEM, "no separation-of-duties conflict", rules=len(plan.sod_rules))
        return None

    async def _approve(self, round: str, hard_stop: datetime | None) -> ChainResult:
        plan = self._plan
        assert plan is not None
        if not plan.policy.stages:
            self.tell("stage_closed", SYSTEM, "no approval required by policy")
            return ChainResult.APPROVED
        if round == "request":
            self._set_status(RequestStatus.PENDING_APPROVAL)
        for index, stage in enumerate(plan.policy.stages):
            self._chain = ApprovalChain(self, stage, index, round, hard_stop)
            try:
                result = await self._chain.run()
            finally:
                self._chain = None
            await self.record()
            if result is not ChainResult.APPROVED:
                return result
        return ChainResult.APPROVED

    async def _grant(self) -> bool:
        plan, person = self._plan, self._person
        assert plan is not None and person is not None
        self._set_status(RequestStatus.GRANTING)
        try:
            await self._apply_resources(present=True)
        except ActivityError as err:
            await self._finish(RequestStatus.FAILED, "failed", f"grant failed: {_cause(err)}")
            return False
        now = workflow.now()
        self._granted_at = now
        self._expires_at = grant_end(
            plan.policy.expiry, now, self._in.requested_end, self._in.submitted_at
        )
        self._set_status(RequestStatus.GRANTED)
        until = self._expires_at.isoformat() if self._expires_at else None
        self.tell(
            "granted",
            SYSTEM,
            f"granted {', '.join(self._resource_keys())}"
            + (f" until {self._expires_at:%Y-%m-%d %H:%M} UTC" if self._expires_at else ", no end"),
            resources=self._resource_keys(),
            until=until,
        )
        await self._tell_identity("granted")
        await self.notify(
            [self._in.requester_id, self._in.beneficiary_id],
            f"Access granted: {plan.display_name}",
            f"<p>{plan.display_name} is granted to {self._in.beneficiary_id}"
            + (f" until {self._expires_at:%Y-%m-%d %H:%M} UTC" if self._expires_at else "")
            + ".</p>",
        )
        await self.record()
        return True

    async def _hold(self) -> RequestView:
        """Keep the grant until it ends: expiry reminders, extensions, revocation, a leaver."""
        plan = self._plan
        assert plan is not None and self._granted_at is not None
        reminded: set[datetime] = set()
        while True:
            if self._left is not None:
                return await self._remove(RequestStatus.REVOKED, "the person left")
            if self._revoke is not None:
                return await self._remove(
                    RequestStatus.REVOKED, f"revoked by {self._revoke.actor.employee_id}"
                )
            if self._extension is not None:
                await self._decide_extension()
                continue
            end = self._expires_at
            now = workflow.now()
            if end is not None and now >= end:
                return await self._remove(RequestStatus.EXPIRED, "expired")
            due = (
                [
                    at
                    for at in expiry_reminders(end, self._granted_at, plan.policy.expiry.reminders)
                    if at not in reminded
                ]
                if end is not None
                else []
            )
            if due and due[0] <= now:
                reminded.add(due[0])
                await self._remind_expiry(end)
                continue
            wake_at = due[0] if due else end
            await self.sleep_until(wake_at, "access ends" if wake_at == end else "expiry reminder")
            await self.record()

    async def _decide_extension(self) -> None:
        plan, ask = self._plan, self._extension
        assert plan is not None and ask is not None
        self._extensions += 1
        approved = True
        if plan.policy.expiry.extension.requires_approval:
            result = await self._approve(
                f"extension-{self._extensions}", hard_stop=self._expires_at
            )
            approved = result is ChainResult.APPROVED
            outcome = {
                ChainResult.APPROVED: "approved",
                ChainResult.DENIED: "denied",
            }.get(result, "not decided before the access ended or was withdrawn")
            self.tell("extension_decided", SYSTEM, f"extension {outcome}", outcome=outcome)
        self._extension = None
        if approved and self._left is None and self._revoke is None:
            self._expires_at = ask.new_end
            self.tell(
                "extended",
                ask.actor.employee_id,
                f"extended to {ask.new_end:%Y-%m-%d %H:%M} UTC",
                until=ask.new_end.isoformat(),
                resources=self._resource_keys(),
            )
            await self._tell_identity("granted")
        await self.notify(
            [self._in.requester_id, self._in.beneficiary_id],
            f"Extension {'approved' if approved else 'refused'}: {plan.display_name}",
            f"<p>Access to {plan.display_name} ends {self._expires_at:%Y-%m-%d %H:%M} UTC.</p>"
            if self._expires_at
            else "<p>The extension was not granted.</p>",
        )
        await self.record()

    async def _remind_expiry(self, end: datetime) -> None:
        plan = self._plan
        assert plan is not None
        self.tell("expiry_reminder", SYSTEM, f"told that access ends {end:%Y-%m-%d %H:%M} UTC")
        extend = (
            " Ask for an extension if you still need it."
            if (plan.policy.expiry.extension.allowed)
            else ""
        )
        await self.notify(
            [self._in.beneficiary_id, self._in.requester_id],
            f"Access ending: {plan.display_name}",
            f"<p>Your access to {plan.display_name} ends {end:%Y-%m-%d %H:%M} UTC.{extend}</p>",
        )
        await self.record()

    async def _remove(self, status: RequestStatus, why: str) -> RequestView:
        try:
            await self._apply_resources(present=False)
        except ActivityError as err:
            return await self._finish(
                RequestStatus.FAILED, "failed", f"removal failed: {_cause(err)}"
            )
        self.tell(
            "removed", SYSTEM, f"removed {', '.join(self._resource_keys())}: {why}",
            resources=self._resource_keys(), reason=why,
        )  # fmt: skip
        return await self._finish(status, None, why)

    async def _close_unfinished(self) -> RequestView:
        if self._left is not None:
            return await self._finish(
                RequestStatus.CANCELLED, "cancelled", "cancelled: the person left"
            )
        if self._cancel is not None:
            return await self._finish(RequestStatus.CANCELLED, None, "cancelled")
        return await self._finish(RequestStatus.DENIED, "denied", "approval did not complete")

    async def _finish(
        self, status: RequestStatus, kind: StoryKind | None, text: str
    ) -> RequestView:
        self._set_status(status)
        self._closed_at = workflow.now()
        if kind is not None:
            self.tell(kind, SYSTEM, text)
        if self._reserved:
            await self._tell_identity("closed")
        if self._plan is not None:
            await self.notify(
                [self._in.requester_id, self._in.beneficiary_id],
                f"Access request {status.value}: {self._plan.display_name}",
                f"<p>Your request for {self._plan.display_name} is {status.value}: {text}.</p>",
            )
        await self.record()
        self._show()
        return self._view()

    # ---- what the chain and the lifecycle need (ChainHost) --------------------------------------

    @property
    def plan(self) -> AccessPlan:
        assert self._plan is not None
        return self._plan

    @property
    def request(self) -> AccessRequestInput:
        return self._in

    @property
    def beneficiary_manager_id(self) -> str | None:
        worker = self._person.worker if self._person else None
        return worker.manager_id if worker else None

    def wakes(self) -> int:
        return self._wakes

    def interrupted(self, hard_stop: datetime | None) -> bool:
        if self._interrupted():
            return True
        return hard_stop is not None and workflow.now() >= hard_stop

    def stage_opened(self, view: StageView) -> None:
        self._stages.append(view)
        self._show()

    def tell(
        self, kind: StoryKind, actor: str, text: str, at: datetime | None = None, **data: Any
    ) -> None:
        """Add a line to the story; `at` when it happened earlier than now (a timer that fired
        before the activity it triggered)."""
        self._story.append(
            StoryEntry(
                seq=len(self._story) + 1,
                at=at or workflow.now(),
                kind=kind,
                actor=actor,
                text=text,
                data=data,
            )
        )
        self._show()

    async def sleep_until(self, at: datetime | None, what: str) -> bool:
        """Wait for `at` or any change; True when something changed first."""
        wakes = self._wakes
        if self._unrecorded() and workflow.patched(RECORD_BEFORE_SLEEP_PATCH):
            # A signal handled while an activity ran (a refused attempt during `record`) added
            # lines no wake will record: record them now, not at the next timer (maybe days away).
            await self.record()
            if self._wakes != wakes:
                return True
        timeout = None if at is None else max(at - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(
                lambda: self._wakes != wakes,
                timeout=timeout,
                timeout_summary=None if at is None else f"{what} {at:%Y-%m-%d %H:%M}",
            )
        except TimeoutError:
            return False
        return True

    async def notify(self, to: list[str], subject: str, html: str) -> NotifyResult | None:
        recipients = list(dict.fromkeys(to))
        if not recipients:
            return None
        try:
            return await workflow.execute_activity(
                AccessActivityNames.NOTIFY,
                NotifyInput(
                    sender=self.plan.mail_sender if self._plan else "",
                    to_employee_ids=recipients,
                    subject=subject,
                    html_body=html,
                ),
                result_type=NotifyResult,
                **NOTICE,
            )
        except ActivityError as err:
            # A mail is a courtesy: the decision flow never waits on a mailbox.
            workflow.logger.warning("notice %r not sent: %s", subject, _cause(err))
            return None

    def _unrecorded(self) -> bool:
        return self._recorded != len(self._story) or self._recorded_status is not self._status

    async def record(self) -> None:
        if not self._unrecorded():
            return
        view = self._view()
        await workflow.execute_activity(
            AuditActivityNames.RECORD_REQUEST, RecordRequestInput(view=view), **PROVISIONING
        )
        self._recorded, self._recorded_status = len(view.story), view.status

    # ---- helpers --------------------------------------------------------------------------------

    def _interrupted(self) -> bool:
        # A revoke can only come once access is granted: it ends an extension's approval too.
        return self._cancel is not None or self._left is not None or self._revoke is not None

    def _is_admin(self, employee_id: str, token_admin: bool) -> bool:
        return token_admin or (self._plan is not None and employee_id in self._plan.administrators)

    def _resource_keys(self) -> list[str]:
        return [r.key for r in self.plan.resources]

    async def _apply_resources(self, present: bool) -> None:
        person = self._person
        assert person is not None and person.graph_user_id and person.worker
        groups = [r.group for r in self.plan.resources if r.group]
        if groups:
            await workflow.execute_activity(
                ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS,
                GroupMembershipInput(user_id=person.graph_user_id, groups=groups, present=present),
                **PROVISIONING,
            )
        roles: dict[str, list[str]] = {}
        for r in self.plan.resources:
            if r.app and r.role:
                roles.setdefault(r.app, []).append(r.role)
        for app, app_roles in roles.items():
            await workflow.execute_activity(
                ActivityNames.SCIM_ENSURE_USER,
                EnsureScimUserInput(
                    app=app,
                    worker=person.worker,
                    user_name=person.user_principal_name or person.employee_id,
                    # Removing a role never reactivates an account a leaver deactivated.
                    active=present or self._left is None,
                    roles=app_roles if present else [],
                    remove_roles=[] if present else app_roles,
                ),
                **PROVISIONING,
            )

    async def _tell_identity(self, status: str) -> None:
        try:
            await workflow.get_external_workflow_handle(
                identity_workflow_id(self._in.beneficiary_id)
            ).signal(
                IdentityContract.SIGNAL_ACCESS_REQUEST_CHANGED,
                AccessRequestChanged(
                    request_id=workflow.info().workflow_id, status=status, until=self._expires_at
                ),
            )
        except ApplicationError as err:
            # Only an identity terminated by an operator is gone; the request goes on regardless.
            workflow.logger.warning("identity not told of %s: %s", status, err)

    def _answer(self, message: str) -> UpdateAnswer:
        return UpdateAnswer(
            request_id=workflow.info().workflow_id, status=self._status, message=message
        )

    def _set_status(self, status: RequestStatus) -> None:
        self._status = status
        self._set_search_attributes()
        self._show()

    def _set_search_attributes(self) -> None:
        if self._in.record_search_attributes:
            workflow.upsert_search_attributes(
                [
                    EMPLOYEE_ID.value_set(self._in.beneficiary_id),
                    ACCESS_PACKAGE.value_set(self._in.package_id),
                    REQUEST_STATUS.value_set(self._status.value),
                ]
            )

    def _view(self) -> RequestView:
        chain = self._chain
        return RequestView(
            request_id=workflow.info().workflow_id,
            package_id=self._in.package_id,
            package_name=self._plan.display_name if self._plan else self._in.package_id,
            beneficiary_id=self._in.beneficiary_id,
            requester_id=self._in.requester_id,
            status=self._status,
            justification=self._in.justification,
            answers=self._in.answers,
            submitted_at=self._in.submitted_at,
            resources=[r.key for r in self._plan.resources] if self._plan else [],
            waiting_on=chain.view if chain is not None else None,
            stages=[s.model_copy() for s in self._stages],
            granted_at=self._granted_at,
            expires_at=self._expires_at,
            closed_at=self._closed_at,
            story=list(self._story),
            updated_at=workflow.now(),
        )

    def _show(self) -> None:
        chain = self._chain
        if chain is not None:
            text = chain.describe()
        elif self._status is RequestStatus.GRANTED:
            text = "granted" + (
                f" until {self._expires_at:%Y-%m-%d %H:%M} UTC" if self._expires_at else ", no end"
            )
        else:
            text = self._status.value.replace("_", " ")
        workflow.set_current_details(f"{self._in.package_id} for {self._in.beneficiary_id}: {text}")


def _cause(err: BaseException) -> str:
    cause = err.__cause__ or getattr(err, "cause", None)
    return str(cause or err)


def static_summary(input: AccessRequestInput) -> str:
    return f"Access request: {input.package_id} for {input.beneficiary_id} by {input.requester_id}"
