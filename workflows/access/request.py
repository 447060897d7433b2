"""One access request, from asking to removal: `access-request-{beneficiary}-{package}-{key}`.

It checks eligibility and answers, registers with the beneficiary's identity entity (which refuses
an SoD conflict with anything held or pending, atomically per person), walks the approval stages on
durable timers, grants idempotently, and holds the grant until it expires, is revoked, or the person
leaves. Approvers act through Updates whose validators refuse what rule 5 of docs/architecture.md lists; every
step is written to the request's story, which an activity copies to the access record store.

This module holds the handlers and the path to a decision; the granted access's life is in
access_grant, the shared state and steps in access_request_core; the stages run on the approval
engine (workflows/approval), which also refuses decisions it must not take.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.access.grant import GrantSteps
from workflows.access.request_story import error_cause
from workflows.approval import ApprovalEngine, ApprovalResult

with workflow.unsafe.imports_passed_through():
    from domain.access.request import (
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
        Refusal,
        RefusedAttempt,
        RequestStatus,
        RequestView,
        ReserveInput,
        RevokeInput,
        StoryEntry,
        UpdateAnswer,
    )
    from domain.access.rules import (
        answer_errors,
        eligibility_refusal,
        extension_refusal,
        requested_end_error,
    )
    from domain.access.sod import package_keys
    from domain.approval.contract import SYSTEM, StageView
    from domain.lifecycle.identity import (
        ReserveAccessInput,
    )
    from domain.stubs import access as access_activity
    from workflows.steps.retry import POLICY_LOOKUP, PROVISIONING


@workflow.defn(name=AccessRequestContract.WORKFLOW)
class AccessRequestWorkflow(GrantSteps):
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
        self._approval = ApprovalEngine(self)
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
        message = self._approval.decide(input.actor.employee_id, input.decision, input.comment)
        self._wakes += 1
        return self._answer(message)

    @decide.validator
    def _may_decide(self, input: DecideInput) -> None:
        self._approval.validate_decision(input.actor.employee_id)

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
        # The removal line that follows names what went: the ledger may keep some of it.
        self.tell(
            "revoked",
            input.actor.employee_id,
            f"revoked: {input.reason or 'no reason'}",
            resources=[],
        )
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
                access_activity.resolve_access_plan,
                AccessPlanInput(package_id=input.package_id),
                **POLICY_LOOKUP,
            )
        except ActivityError as err:
            return await self._finish(RequestStatus.DENIED, "denied", f"{error_cause(err)}")
        await self.record()

        refusal = await self._check_request()
        if refusal is not None:
            return await self._finish(RequestStatus.DENIED, "denied", refusal)
        if self._interrupted():
            return await self._close_unfinished()

        result = await self._approve("request", hard_stop=None)
        if result is not ApprovalResult.APPROVED:
            if result is ApprovalResult.DENIED:
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
            access_activity.load_beneficiary,
            BeneficiaryInput(employee_id=input.beneficiary_id),
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
            access_activity.reserve,
            ReserveInput(
                beneficiary_id=input.beneficiary_id,
                reservation=ReserveAccessInput(
                    request_id=workflow.info().workflow_id,
                    package_id=plan.package_id,
                    keys=keys,
                    groups=[r.group for r in plan.resources if r.group],
                    apps=sorted({r.app for r in plan.resources if r.app}),
                    resources=[r.ref for r in plan.resources],
                    sod_rules=plan.sod_rules,
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
        self.tell("sod", SYSTEM, "no separation-of-duties conflict", rules=len(plan.sod_rules))
        return None
