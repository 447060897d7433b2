"""What PIM runs share (an activation, an eligibility): the story and its record, notices, the
identity entity, status and search attributes, and what the approval engine asks of its host.

A run keeps its story as an access request does and the record stores it the same way, so the
record's access changes, exports and "waiting for me" lists include PIM runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.access.request_core import error_cause
from workflows.approval import ApprovalEngine, ApprovalHost

with workflow.unsafe.imports_passed_through():
    from domain.access.request import (
        NotifyInput,
        NotifyResult,
        RecordRequestInput,
        RequestStatus,
        RequestView,
        StoryEntry,
        StoryKind,
        UpdateAnswer,
    )
    from domain.approval.contract import ResolveApproversInput, ResolvedApprovers, StageView
    from domain.lifecycle.events import identity_workflow_id
    from domain.lifecycle.identity import AccessRequestChanged, IdentityContract
    from domain.pim.activation import ResolvedRole
    from domain.search_attributes import ACCESS_PACKAGE, EMPLOYEE_ID, REQUEST_STATUS
    from domain.stubs import access as access_activity
    from domain.stubs import record as record_activity
    from workflows.steps.retry import NOTICE, PROVISIONING


class PimRunCore(ApprovalHost):
    """State and steps every PIM run has; the workflow's __init__ sets the attributes."""

    _employee_id: str
    _package_id: str  # pim:<role> or pim-eligible:<role>
    _record_search_attributes: bool
    _role: ResolvedRole | None
    _manager: str | None
    _status: RequestStatus
    _story: list[StoryEntry]
    _recorded: int
    _recorded_status: RequestStatus | None
    _approval: ApprovalEngine
    _stages: list[StageView]
    _ends_at: datetime | None
    _wakes: int

    def _ending(self) -> bool:
        """The run is being withdrawn (its own reasons): open stages close."""
        raise NotImplementedError

    def _view(self) -> RequestView:
        raise NotImplementedError

    def _show(self) -> None:
        raise NotImplementedError

    # ---- what the approval engine needs (ApprovalHost) ------------------------------------------

    def closed_refusal(self) -> str:
        return f"nothing here waits for a decision (status {self._status.value})"

    def interrupted(self, hard_stop: datetime | None) -> bool:
        if self._ending():
            return True
        return hard_stop is not None and workflow.now() >= hard_stop

    def stage_opened(self, view: StageView) -> None:
        self._stages.append(view)
        self._show()

    def tell(
        self, kind: StoryKind, actor: str, text: str, at: datetime | None = None, **data: Any
    ) -> None:
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
        wakes = self._wakes
        if self._unrecorded():
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
            access_activity.resolve_approvers, input, **PROVISIONING
        )

    async def notify(self, to: list[str], subject: str, html: str) -> NotifyResult | None:
        recipients = list(dict.fromkeys(to))
        if not recipients:
            return None
        try:
            return await workflow.execute_activity(
                access_activity.notify,
                NotifyInput(
                    sender=self._role.mail_sender if self._role else "",
                    to_employee_ids=recipients,
                    subject=subject,
                    html_body=html,
                ),
                **NOTICE,
            )
        except ActivityError as err:
            # A mail is a courtesy: no PIM run waits on a mailbox.
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

    async def _notify_all(self, subject: str, html: str) -> None:
        """The person, and whom the role names to be told of every activation."""
        role = self._role
        assert role is not None
        told = [self._employee_id]
        if role.notify:
            found = await self.resolve_approvers(
                ResolveApproversInput(
                    sources=role.notify, beneficiary_manager_id=self._manager, owners=[]
                )
            )
            told += found.employee_ids
        await self.notify(told, subject, html)

    async def _tell_identity(self, status: str) -> None:
        try:
            await workflow.get_external_workflow_handle(
                identity_workflow_id(self._employee_id)
            ).signal(
                IdentityContract.SIGNAL_ACCESS_REQUEST_CHANGED,
                AccessRequestChanged(
                    request_id=workflow.info().workflow_id, status=status, until=self._ends_at
                ),
            )
        except ApplicationError as err:
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
        if self._record_search_attributes:
            workflow.upsert_search_attributes(
                [
                    EMPLOYEE_ID.value_set(self._employee_id),
                    ACCESS_PACKAGE.value_set(self._package_id),
                    REQUEST_STATUS.value_set(self._status.value),
                ]
            )
