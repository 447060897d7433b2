"""What PIM runs share (an activation, an eligibility) beyond the story steps every run kept
as a request has (workflows/access/request_story.py): whose run it is, the handlers both take
(a decision of the approval engine, a refused attempt, a leave, the details query), and the
notice to the person and whom the role names."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.access.request_story import RequestStory

with workflow.unsafe.imports_passed_through():
    from domain.access.request import (
        BeneficiaryLeft,
        DecideInput,
        RefusedAttempt,
        RequestView,
        UpdateAnswer,
    )
    from domain.approval.contract import ResolveApproversInput
    from domain.pim.activation import PimContract, ResolvedRole


class PimRunCore(RequestStory):
    """State, handlers and steps every PIM run has; the workflow's __init__ sets the attributes.
    An eligibility's run takes the same handler names as an activation's (EligibilityContract)."""

    _employee_id: str
    _package_id: str  # pim:<role> or pim-eligible:<role>
    _record_search_attributes: bool
    _role: ResolvedRole | None
    _manager: str | None
    _ends_at: datetime | None
    _left: BeneficiaryLeft | None

    def _ending(self) -> bool:
        """The run is being withdrawn (its own reasons): open stages close."""
        raise NotImplementedError

    # ---- handlers both kinds of run take --------------------------------------------------------

    @workflow.update(name=PimContract.UPDATE_DECIDE)
    def decide(self, input: DecideInput) -> UpdateAnswer:
        message = self._approval.decide(input.actor.employee_id, input.decision, input.comment)
        self._wakes += 1
        return self._answer(message)

    @decide.validator
    def _may_decide(self, input: DecideInput) -> None:
        self._approval.validate_decision(input.actor.employee_id)

    @workflow.signal(name=PimContract.SIGNAL_BENEFICIARY_LEFT)
    def beneficiary_left(self, left: BeneficiaryLeft) -> None:
        if self._left is None:
            self._left = left
            self._wakes += 1

    @workflow.signal(name=PimContract.SIGNAL_REFUSED_ATTEMPT)
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

    @workflow.query(name=PimContract.QUERY_DETAILS)
    def details(self) -> RequestView:
        return self._view()

    # ---- what the shared story steps and the approval engine need -------------------------------

    def _person_id(self) -> str:
        return self._employee_id

    def _package_key(self) -> str:
        return self._package_id

    def _until(self) -> datetime | None:
        return self._ends_at

    def _mail_sender(self) -> str:
        return self._role.mail_sender if self._role else ""

    def _records_search_attributes(self) -> bool:
        return self._record_search_attributes

    def closed_refusal(self) -> str:
        return f"nothing here waits for a decision (status {self._status.value})"

    def interrupted(self, hard_stop: datetime | None) -> bool:
        if self._ending():
            return True
        return hard_stop is not None and workflow.now() >= hard_stop

    # ---- shared steps ---------------------------------------------------------------------------

    async def _notify_all(self, subject: str, html: str) -> None:
        """The person, and whom the role names to be told of every activation."""
        role = self._role
        assert role is not None
        told = [self._employee_id]
        if role.role.notify:
            found = await self.resolve_approvers(
                ResolveApproversInput(
                    sources=role.role.notify, beneficiary_manager_id=self._manager, owners=[]
                )
            )
            told += found.employee_ids
        await self.notify(told, subject, html)
