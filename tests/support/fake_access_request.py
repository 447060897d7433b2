"""A stand-in for the access request workflow, registered under its name, for the API's tests.

It honours the contract the API relies on (`domain.access.request`): the updates with validators
that refuse with `Refusal` types, the refused-attempt signal and the `details` query. Its rules are
deliberately small: one stage whose only approver is `FAKE_APPROVER`; an approval grants (the run
stays open while access is held), a denial or cancellation closes it; only an administrator revokes;
an extension may move the end at most `FAKE_EXTENSION_LIMIT` past the submission.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.access.request import (
        AccessRequestContract,
        AccessRequestInput,
        CancelInput,
        DecideInput,
        ExtendInput,
        Refusal,
        RefusedAttempt,
        RequestStatus,
        RequestView,
        RevokeInput,
        StoryEntry,
        StoryKind,
        UpdateAnswer,
    )
    from domain.approval.contract import Decision, StageView

FAKE_APPROVER = "E0900"
FAKE_EXTENSION_LIMIT = timedelta(days=60)


@workflow.defn(name=AccessRequestContract.WORKFLOW)
class FakeAccessRequestWorkflow:
    @workflow.init
    def __init__(self, input: AccessRequestInput) -> None:
        at = input.submitted_at
        stage = StageView(
            index=0,
            name="manager",
            round="request",
            require="first",
            approvers=[FAKE_APPROVER],
            opened_at=at,
            deadline=at + timedelta(days=3),
        )
        self._view = RequestView(
            request_id=input.request_id,
            package_id=input.package_id,
            package_name=f"Package {input.package_id}",
            beneficiary_id=input.beneficiary_id,
            requester_id=input.requester_id,
            status=RequestStatus.PENDING_APPROVAL,
            justification=input.justification,
            answers=input.answers,
            submitted_at=at,
            waiting_on=stage,
            stages=[stage],
            updated_at=at,
        )
        self._tell("submitted", input.requester_id, "asked for the package")

    @workflow.run
    async def run(self, input: AccessRequestInput) -> str:
        await workflow.wait_condition(
            lambda: self._view.status.final and workflow.all_handlers_finished()
        )
        return self._view.status.value

    @workflow.query(name=AccessRequestContract.QUERY_DETAILS)
    def details(self) -> RequestView:
        return self._view

    @workflow.signal(name=AccessRequestContract.SIGNAL_REFUSED_ATTEMPT)
    def refused_attempt(self, attempt: RefusedAttempt) -> None:
        self._tell(
            "refused_attempt",
            attempt.actor.employee_id,
            f"{attempt.action} refused: {attempt.reason}",
            action=attempt.action,
            reason=attempt.reason,
            at=attempt.at.isoformat(),
        )

    # ---- decide ----------------------------------------------------------------------------------

    @workflow.update(name=AccessRequestContract.UPDATE_DECIDE)
    def decide(self, input: DecideInput) -> UpdateAnswer:
        approve = input.decision is Decision.APPROVE
        self._tell(
            "decision",
            input.actor.employee_id,
            "approved" if approve else "denied",
            stage="manager",
            decision=input.decision.value,
            comment=input.comment,
        )
        self._close_stage("approved" if approve else "denied", input.actor.employee_id)
        return self._set(RequestStatus.GRANTED if approve else RequestStatus.DENIED)

    @decide.validator
    def _may_decide(self, input: DecideInput) -> None:
        who = input.actor.employee_id
        if not self._view.status.open:
            raise ApplicationError(
                f"request is {self._view.status.value}: it takes no decisions", type=Refusal.CLOSED
            )
        if who == self._view.requester_id:
            raise ApplicationError(
                f"{who} cannot decide their own request", type=Refusal.NOT_ALLOWED
            )
        if who not in self._view.stages[0].approvers:
            raise ApplicationError(
                f"{who} is not an approver of stage 'manager'", type=Refusal.NOT_ALLOWED
            )

    # ---- cancel, revoke, extend ------------------------------------------------------------------

    @workflow.update(name=AccessRequestContract.UPDATE_CANCEL)
    def cancel(self, input: CancelInput) -> UpdateAnswer:
        self._tell("cancelled", input.actor.employee_id, "cancelled", reason=input.reason)
        self._close_stage("cancelled", None)
        return self._set(RequestStatus.CANCELLED)

    @cancel.validator
    def _may_cancel(self, input: CancelInput) -> None:
        if input.actor.employee_id != self._view.requester_id:
            raise ApplicationError(
                "only the requester may cancel a request", type=Refusal.NOT_ALLOWED
            )
        if not self._view.status.open:
            raise ApplicationError(
                f"request is {self._view.status.value}: nothing to cancel", type=Refusal.CLOSED
            )

    @workflow.update(name=AccessRequestContract.UPDATE_REVOKE)
    def revoke(self, input: RevokeInput) -> UpdateAnswer:
        self._tell("revoked", input.actor.employee_id, "access revoked", reason=input.reason)
        return self._set(RequestStatus.REVOKED)

    @revoke.validator
    def _may_revoke(self, input: RevokeInput) -> None:
        if not input.actor.is_admin:
            raise ApplicationError(
                f"{input.actor.employee_id} is not an administrator: only administrators revoke",
                type=Refusal.NOT_ALLOWED,
            )
        if self._view.status is not RequestStatus.GRANTED:
            raise ApplicationError(
                f"request is {self._view.status.value}: no access to revoke", type=Refusal.CLOSED
            )

    @workflow.update(name=AccessRequestContract.UPDATE_EXTEND)
    def extend(self, input: ExtendInput) -> UpdateAnswer:
        self._view.expires_at = input.new_end
        self._tell(
            "extended", input.actor.employee_id, "access extended", until=input.new_end.isoformat()
        )
        return self._set(RequestStatus.GRANTED)

    @extend.validator
    def _may_extend(self, input: ExtendInput) -> None:
        if input.actor.employee_id not in (self._view.requester_id, self._view.beneficiary_id):
            raise ApplicationError(
                "only the requester or the beneficiary may ask to extend", type=Refusal.NOT_ALLOWED
            )
        if self._view.status is not RequestStatus.GRANTED:
            raise ApplicationError(
                f"request is {self._view.status.value}: no access to extend", type=Refusal.CLOSED
            )
        if input.new_end - self._view.submitted_at > FAKE_EXTENSION_LIMIT:
            raise ApplicationError(
                "new_end: an extension moves the end at most 60d", type=Refusal.INVALID
            )

    # ---- plumbing --------------------------------------------------------------------------------

    def _set(self, status: RequestStatus) -> UpdateAnswer:
        self._view.status = status
        self._view.updated_at = workflow.now()
        if status is RequestStatus.GRANTED and self._view.granted_at is None:
            self._view.granted_at = workflow.now()
        if status.final:
            self._view.closed_at = workflow.now()
        return UpdateAnswer(
            request_id=self._view.request_id, status=status, message=f"request {status.value}"
        )

    def _close_stage(self, outcome: str, by: str | None) -> None:
        stage = self._view.stages[0]
        if by is not None and outcome == "approved":
            stage.approved_by.append(by)
        elif by is not None and outcome == "denied":
            stage.denied_by.append(by)
        stage.outcome = outcome
        self._view.waiting_on = None

    def _tell(self, kind: StoryKind, actor: str, text: str, **data: Any) -> None:
        at = workflow.now() if self._view.story else self._view.submitted_at
        self._view.story.append(
            StoryEntry(
                seq=len(self._view.story) + 1, at=at, kind=kind, actor=actor, text=text, data=data
            )
        )
