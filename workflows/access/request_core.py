"""An access request's state and shared steps: its story and record, status and search
attributes, notices, closing, and what the approval engine asks of its host."""

from __future__ import annotations

from datetime import datetime
from html import escape

from temporalio import workflow

from workflows.access.request_story import RequestStory
from workflows.approval import ApprovalEngine, ApprovalResult

with workflow.unsafe.imports_passed_through():
    from domain.access.approval import AccessRequestSubject
    from domain.access.request import (
        AccessPlan,
        AccessRequestInput,
        Beneficiary,
        BeneficiaryLeft,
        CancelInput,
        ExtendInput,
        RequestStatus,
        RequestView,
        RevokeInput,
        StoryEntry,
        StoryKind,
    )
    from domain.approval.contract import (
        SYSTEM,
        StageView,
    )


class RequestCore(RequestStory):
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

    # ---- what the shared story steps need (RequestStory) ----------------------------------------

    def _person_id(self) -> str:
        return self._in.beneficiary_id

    def _package_key(self) -> str:
        return self._in.package_id

    def _until(self) -> datetime | None:
        return self._expires_at

    def _mail_sender(self) -> str:
        return self.plan.mail_sender if self._plan else ""

    def _records_search_attributes(self) -> bool:
        return self._in.record_search_attributes

    # ---- helpers --------------------------------------------------------------------------------

    def _interrupted(self) -> bool:
        # A revoke can only come once access is granted: it ends an extension's approval too.
        return self._cancel is not None or self._left is not None or self._revoke is not None

    def _is_admin(self, employee_id: str, token_admin: bool) -> bool:
        return token_admin or (self._plan is not None and employee_id in self._plan.administrators)

    def _resource_keys(self) -> list[str]:
        return [r.key for r in self.plan.resources]

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
