"""An access request's state and shared steps: its story and record, status and search
attributes, notices, closing, and what the approval engine asks of its host."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.approval import ApprovalEngine, ApprovalHost, ApprovalResult

with workflow.unsafe.imports_passed_through():
    from domain.access.approval import AccessRequestSubject
    from domain.access.request import (
        AccessPlan,
        AccessRequestInput,
        Beneficiary,
        BeneficiaryLeft,
        CancelInput,
        ExtendInput,
        NotifyInput,
        NotifyResult,
        RecordRequestInput,
        RequestStatus,
        RequestView,
        RevokeInput,
        StoryEntry,
        StoryKind,
        UpdateAnswer,
    )
    from domain.approval.contract import (
        SYSTEM,
        ResolveApproversInput,
        ResolvedApprovers,
        StageView,
    )
    from domain.lifecycle.events import identity_workflow_id
    from domain.lifecycle.identity import (
        AccessRequestChanged,
        IdentityContract,
    )
    from domain.search_attributes import ACCESS_PACKAGE, EMPLOYEE_ID, REQUEST_STATUS
    from domain.stubs import access as access_activity
    from domain.stubs import record as record_activity
    from workflows.steps.retry import NOTICE, PROVISIONING


# Histories from before it replay without the catch-up `record` in `sleep_until`.
RECORD_BEFORE_SLEEP_PATCH = "record-before-sleep"


class RequestCore(ApprovalHost):
    """State and shared steps of an access request (its attributes are set by the workflow's
    __init__); also the approval engine's host."""

    _in: AccessRequestInput
    _status: RequestStatus
    _story: list[StoryEntry]
    _recorded: int
    _recorded_status: RequestStatus | None
    _plan: AccessPlan | None
    _person: Beneficiary | None
    _reserved: bool
    _approval: ApprovalEngine
    _stages: list[StageView]
    _granted_at: datetime | None
    _expires_at: datetime | None
    _closed_at: datetime | None
    _cancel: CancelInput | None
    _revoke: RevokeInput | None
    _left: BeneficiaryLeft | None
    _extension: ExtendInput | None
    _extensions: int
    _wakes: int

    async def _approve(self, round: str, hard_stop: datetime | None) -> ApprovalResult:
        plan = self.plan
        if plan.policy.stages and round == "request":
            self._set_status(RequestStatus.PENDING_APPROVAL)
        worker = self._person.worker if self._person else None
        subject = AccessRequestSubject(
            request_id=workflow.info().workflow_id,
            package_name=plan.display_name,
            requester_id=self._in.requester_id,
            beneficiary_id=self._in.beneficiary_id,
            justification=self._in.justification,
            manager_id=worker.manager_id if worker else None,
            owners=plan.owners,
        )
        return await self._approval.run(subject, plan.policy.stages, round, hard_stop)

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
                f"<p>Your request for {escape(self._plan.display_name)} is {status.value}: "
                f"{escape(text)}.</p>",
            )
        await self.record()
        self._show()
        return self._view()

    @property
    def plan(self) -> AccessPlan:
        assert self._plan is not None
        return self._plan

    # ---- what the approval engine and the lifecycle need (ApprovalHost) -------------------------

    def closed_refusal(self) -> str:
        return f"request is not waiting for a decision (status {self._status.value})"

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

    async def resolve_approvers(self, input: ResolveApproversInput) -> ResolvedApprovers:
        return await workflow.execute_activity(
            access_activity.resolve_approvers,
            input,
            **PROVISIONING,
        )

    async def notify(self, to: list[str], subject: str, html: str) -> NotifyResult | None:
        recipients = list(dict.fromkeys(to))
        if not recipients:
            return None
        try:
            return await workflow.execute_activity(
                access_activity.notify,
                NotifyInput(
                    sender=self.plan.mail_sender if self._plan else "",
                    to_employee_ids=recipients,
                    subject=subject,
                    html_body=html,
                ),
                **NOTICE,
            )
        except ActivityError as err:
            # A mail is a courtesy: the decision flow never waits on a mailbox.
            workflow.logger.warning("notice %r not sent: %s", subject, error_cause(err))
            return None

    def _unrecorded(self) -> bool:
        return self._recorded != len(self._story) or self._recorded_status is not self._status

    async def record(self) -> None:
        if not self._unrecorded():
            return
        view = self._view()
        await workflow.execute_activity(
            record_activity.record_request, RecordRequestInput(view=view), **PROVISIONING
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
            waiting_on=self._approval.view,
            stages=[s.model_copy() for s in self._stages],
            granted_at=self._granted_at,
            expires_at=self._expires_at,
            closed_at=self._closed_at,
            story=list(self._story),
            updated_at=workflow.now(),
        )

    def _show(self) -> None:
        stage = self._approval.describe()
        if stage is not None:
            text = stage
        elif self._status is RequestStatus.GRANTED:
            text = "granted" + (
                f" until {self._expires_at:%Y-%m-%d %H:%M} UTC" if self._expires_at else ", no end"
            )
        else:
            text = self._status.value.replace("_", " ")
        workflow.set_current_details(f"{self._in.package_id} for {self._in.beneficiary_id}: {text}")


def error_cause(err: BaseException) -> str:
    cause = err.__cause__ or getattr(err, "cause", None)
    return str(cause or err)
