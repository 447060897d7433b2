"""What every run recorded as a request shares (an access request, a role activation, an
eligibility): its story and the record's copy of it, notices, telling the person's identity
entity, status and search attributes, and what the approval engine asks of its host.

A subclass says whose run it is and how it reads (`_person_id`, `_package_key`, `_until`,
`_mail_sender`, `_view`, `_show`, `interrupted`, `closed_refusal`); the steps themselves are
written once here, so their commands are the same in every kind of run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

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
    from domain.search_attributes import ACCESS_PACKAGE, EMPLOYEE_ID, REQUEST_STATUS
    from domain.stubs import access as access_activity
    from domain.stubs import record as record_activity
    from workflows.steps.retry import NOTICE, PROVISIONING


# Histories from before it replay without the catch-up `record` in `sleep_until`.
RECORD_BEFORE_SLEEP_PATCH = "record-before-sleep"


class RequestStory(ApprovalHost):
    """The story-keeping steps of a run recorded as a request; the workflow's __init__ sets the
    attributes."""

    _status: RequestStatus
    _story: list[StoryEntry]
    _recorded: int
    _recorded_status: RequestStatus | None
    _approval: ApprovalEngine
    _stages: list[StageView]
    _wakes: int

    # ---- what a subclass says -------------------------------------------------------------------

    def _person_id(self) -> str:
        """Whose access the run is about (their identity entity is told of it)."""
        raise NotImplementedError

    def _package_key(self) -> str:
        raise NotImplementedError

    def _until(self) -> datetime | None:
        raise NotImplementedError

    def _mail_sender(self) -> str:
        raise NotImplementedError

    def _records_search_attributes(self) -> bool:
        raise NotImplementedError

    def _view(self) -> RequestView:
        raise NotImplementedError

    def _show(self) -> None:
        raise NotImplementedError

    # ---- the approval engine's host -------------------------------------------------------------

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
                    sender=self._mail_sender(),
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

    # ---- shared steps ---------------------------------------------------------------------------

    async def _tell_identity(self, status: str) -> None:
        try:
            await workflow.get_external_workflow_handle(
                identity_workflow_id(self._person_id())
            ).signal(
                IdentityContract.SIGNAL_ACCESS_REQUEST_CHANGED,
                AccessRequestChanged(
                    request_id=workflow.info().workflow_id, status=status, until=self._until()
                ),
            )
        except ApplicationError as err:
            # Only an identity terminated by an operator is gone; the run goes on regardless.
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
        if self._records_search_attributes():
            workflow.upsert_search_attributes(
                [
                    EMPLOYEE_ID.value_set(self._person_id()),
                    ACCESS_PACKAGE.value_set(self._package_key()),
                    REQUEST_STATUS.value_set(self._status.value),
                ]
            )


def error_cause(err: BaseException) -> str:
    cause = err.__cause__ or getattr(err, "cause", None)
    return str(cause or err)
