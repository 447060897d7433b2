"""Detective separation of duties, remediating: `SodRemediationWorkflow`
(`sod-violation-{rule}-{employee}`) does what the rule says, keeping each step in the record
(`tenure sod violations`):
- notify: the owners (else the access administrators) are told; status notified;
- remove_newest: the newest package or PIM grant whose end mends it is ended; status removed. A
  conflict only birthright holds cannot be mended that way: the owners are told, and the record
  says why;
- exception: the rule's stages (the approval engine) decide on an exception. Approved, it holds
  until `exception_until`, then the person is checked again: still in breach starts another round
  (as the rule then says), else resolved. Denied or timed out, the newest grant goes as above.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.access.request_story import error_cause
from workflows.approval import ApprovalEngine, ApprovalHost, ApprovalResult

with workflow.unsafe.imports_passed_through():
    from domain.access.policy import SodRemediation
    from domain.access.request import DecideInput, NotifyInput, NotifyResult
    from domain.approval.contract import (
        SYSTEM,
        ResolveApproversInput,
        ResolvedApprovers,
        StageView,
    )
    from domain.detective.sod_check import FoundViolation
    from domain.detective.sod_contract import (
        CheckPersonInput,
        RecordViolationsInput,
        RemoveGrantInput,
        ResolveOwnersInput,
        SodContract,
        SodDecisionAnswer,
        SodExceptionSubject,
        SodOwners,
        SodRemediationInput,
        SodStoryLine,
    )
    from domain.detective.sod_violations import SodViolation, ViolationStatus
    from domain.policy.values import describe_duration
    from domain.stubs import access as access_activity
    from domain.stubs import sod as sod_activity
    from workflows.steps.retry import NOTICE, PROVISIONING

# Story lines a remediation carries into its next round (continue-as-new): the record keeps the
# latest state of a violation, and this bounds it however many rounds an exception has.
STORY_KEPT = 50


# ---- remediating -------------------------------------------------------------------------------------


@workflow.defn(name=SodContract.REMEDIATION_WORKFLOW)
class SodRemediationWorkflow(ApprovalHost):
    @workflow.init
    def __init__(self, input: SodRemediationInput) -> None:
        self._in = input
        self._found = input.violation
        self._status = ViolationStatus.OPEN
        self._detected_at = input.detected_at or workflow.now()
        self._exception_until: datetime | None = None
        self._story = list(input.story)
        self._detail: dict[str, Any] = {}
        self._owners = SodOwners(employee_ids=list(input.violation.rule.owners), mail_sender="")
        self._approval = ApprovalEngine(self)
        self._stages: list[StageView] = []
        self._wakes = 0
        self._recorded: tuple[int, ViolationStatus] | None = None
        self._manager = input.manager_id

    # ---- the exception's decisions ---------------------------------------------------------------

    @workflow.update(name=SodContract.UPDATE_DECIDE)
    def decide(self, input: DecideInput) -> SodDecisionAnswer:
        message = self._approval.decide(input.actor.employee_id, input.decision, input.comment)
        self._wakes += 1
        return SodDecisionAnswer(
            violation_id=self._found.violation_id, status=self._status, message=message
        )

    @decide.validator
    def _may_decide(self, input: DecideInput) -> None:
        self._approval.validate_decision(input.actor.employee_id)

    @workflow.query(name=SodContract.QUERY_DETAILS)
    def details(self) -> SodViolation:
        return self._view()

    # ---- the remediation -------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: SodRemediationInput) -> SodViolation:
        found, rule = self._found, self._found.rule
        self._owners = await workflow.execute_activity(
            sod_activity.resolve_owners,
            ResolveOwnersInput(rule=rule.name, owners=list(rule.owners)),
            **PROVISIONING,
        )
        held = " and ".join(found.side_keys)
        if input.round == 1:
            self.tell(
                "found",
                SYSTEM,
                f"{found.employee_id} holds {held}, which rule {rule.name} keeps apart",
                sides=found.side_keys,
            )
        else:
            self.tell(
                "checked",
                SYSTEM,
                f"the exception ended and {found.employee_id} still holds {held}: "
                f"round {input.round} ({rule.remediation.value})",
                sides=found.side_keys,
            )
        await self.record()
        if rule.remediation is SodRemediation.NOTIFY:
            await self._notify_owners("")
        elif rule.remediation is SodRemediation.REMOVE_NEWEST:
            await self._remove("the rule removes the newest grant")
        elif await self._exception_approved():
            await self._hold_exception()
            await self._check_again()  # continues as new while the violation is still held
        else:
            await self._remove("the exception was not approved")
        self._show()
        return self._view()

    async def _notify_owners(self, why: str) -> None:
        """The owners are told; `why` says why nothing else was done, when something should
        have been."""
        found, rule = self._found, self._found.rule
        owners = self._owners.employee_ids
        sent = await self.notify(
            owners,
            f"Separation of duties: {found.employee_id} breaks {rule.name}",
            f"<p>{found.employee_id} holds {escape(' and '.join(found.side_keys))}, which "
            f"separation of duties rule <b>{escape(rule.name)}</b>"
            f"{_about(rule.description)} keeps apart.</p>"
            + _sides_html(found)
            + (f"<p>{escape(why)}.</p>" if why else "")
            + "<p>Remove one of them, or change the rule.</p>",
        )
        self._set_status(ViolationStatus.NOTIFIED)
        told = ", ".join(sent.sent_to) if sent and sent.sent_to else "nobody could be mailed"
        self.tell(
            "notified",
            SYSTEM,
            f"told the owners ({told})" + (f": {why}" if why else ""),
            to=owners,
            reason=why,
        )
        await self.record()

    async def _remove(self, why: str) -> None:
        """End the newest grant whose end mends the violation, checked again first: the grant
        found may have ended, or another come, while an exception was being decided."""
        rule = self._found.rule
        current = await self._current()
        if current is None:
            self._resolve("no longer held when the newest grant was to be removed")
            await self.record()
            return
        self._found = current
        newest = current.newest
        if newest is None:
            self._detail["not_removable"] = current.not_removable
            await self._notify_owners(f"{why}, but nothing can be removed: {current.not_removable}")
            return
        try:
            result = await workflow.execute_activity(
                sod_activity.remove_grant,
                RemoveGrantInput(
                    employee_id=current.employee_id,
                    grant=newest,
                    rule=rule.name,
                    reason=f"separation of duties rule {rule.name}: {why}",
                ),
                **PROVISIONING,
            )
        except ActivityError as err:
            self._detail["removal_failed"] = error_cause(err)
            await self._notify_owners(
                f"{newest.describe()} could not be removed: {error_cause(err)}"
            )
            return
        self._detail["removed"] = newest.model_dump(mode="json")
        self._set_status(ViolationStatus.REMOVED)
        self.tell(
            "removed",
            SYSTEM,
            f"removed {newest.describe()}: {why}"
            + ("" if result.removed else f" (it was already ending: {result.message})"),
            grant=newest.id,
        )
        await self.record()
        await self.notify(
            [current.employee_id, *self._owners.employee_ids],
            f"Separation of duties: {newest.label} removed from {current.employee_id}",
            f"<p>{escape(newest.describe())} was removed from {current.employee_id}: "
            f"separation of duties rule <b>{escape(rule.name)}</b>{_about(rule.description)} "
            f"keeps {escape(' and '.join(current.side_keys))} apart, and {escape(why)}.</p>",
        )

    async def _exception_approved(self) -> bool:
        found, rule = self._found, self._found.rule
        policy = rule.exception_policy
        self._set_status(ViolationStatus.EXCEPTION_PENDING)
        self.tell(
            "exception_requested",
            SYSTEM,
            f"an exception for {describe_duration(policy.duration)} needs approval",
        )
        await self.record()
        subject = SodExceptionSubject(
            workflow_id=workflow.info().workflow_id,
            rule=rule.name,
            description=rule.description,
            employee_id=found.employee_id,
            sides=found.side_keys,
            duration=describe_duration(policy.duration),
            owners=self._owners.employee_ids,
            manager_id=self._manager,
        )
        result = await self._approval.run(
            subject, list(policy.stages), f"exception-{self._in.round}", None
        )
        approved = result is ApprovalResult.APPROVED
        self.tell(
            "exception_decided",
            SYSTEM,
            "exception approved" if approved else f"exception not granted ({result.value})",
        )
        return approved

    async def _hold_exception(self) -> None:
        found, rule = self._found, self._found.rule
        until = workflow.now() + rule.exception_policy.duration
        self._exception_until = until
        self._set_status(ViolationStatus.EXCEPTED)
        self.tell("excepted", SYSTEM, f"excepted until {until:%Y-%m-%d %H:%M} UTC")
        await self.record()
        await self.notify(
            [found.employee_id, *self._owners.employee_ids],
            f"Separation of duties exception: {rule.name} for {found.employee_id}",
            f"<p>{found.employee_id} may hold {escape(' and '.join(found.side_keys))} until "
            f"{until:%Y-%m-%d %H:%M} UTC, by exception to rule <b>{escape(rule.name)}</b>. "
            "It is checked again then.</p>",
        )
        self._show()
        await workflow.sleep(until - workflow.now(), summary=f"exception ends {until:%Y-%m-%d}")

    async def _check_again(self) -> None:
        current = await self._current()
        if current is None:
            self._resolve("no longer held when the exception ended")
            await self.record()
            return
        # Another round, as the rule says now, in a fresh history.
        workflow.continue_as_new(
            SodRemediationInput(
                violation=current,
                manager_id=self._manager,
                round=self._in.round + 1,
                detected_at=self._detected_at,
                story=self._story[-STORY_KEPT:],
            )
        )

    async def _current(self) -> FoundViolation | None:
        """The violation as the person holds it now (None: no longer held, or no longer a rule)."""
        found = self._found
        check = await workflow.execute_activity(
            sod_activity.check_person,
            CheckPersonInput(employee_id=found.employee_id, at=workflow.now()),
            **PROVISIONING,
        )
        self._manager = check.manager_id or self._manager
        return next((f for f in check.found if f.rule.name == found.rule.name), None)

    def _resolve(self, why: str) -> None:
        self._set_status(ViolationStatus.RESOLVED)
        self.tell("resolved", SYSTEM, why)

    # ---- what the approval engine needs (ApprovalHost) -------------------------------------------

    def closed_refusal(self) -> str:
        return f"no exception waits for a decision (status {self._status.value})"

    def interrupted(self, hard_stop: datetime | None) -> bool:
        return hard_stop is not None and workflow.now() >= hard_stop

    def stage_opened(self, view: StageView) -> None:
        self._stages.append(view)
        self._show()

    def tell(
        self, kind: str, actor: str, text: str, at: datetime | None = None, **data: Any
    ) -> None:
        seq = self._story[-1].seq + 1 if self._story else 1
        self._story.append(
            SodStoryLine(
                seq=seq, at=at or workflow.now(), kind=kind, actor=actor, text=text, data=data
            )
        )
        self._show()

    async def sleep_until(self, at: datetime | None, what: str) -> bool:
        wakes = self._wakes
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

    async def record(self) -> None:
        if self._recorded == (len(self._story), self._status):
            return
        view = self._view()
        await workflow.execute_activity(
            sod_activity.record_violations, RecordViolationsInput(violations=[view]), **PROVISIONING
        )
        self._recorded = (len(self._story), view.status)

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
                    sender=self._owners.mail_sender,
                    to_employee_ids=recipients,
                    subject=subject,
                    html_body=html,
                ),
                **NOTICE,
            )
        except ActivityError as err:
            # A mail is a courtesy: the record says what happened whether or not it was read.
            workflow.logger.warning("notice %r not sent: %s", subject, error_cause(err))
            return None

    # ---- views -----------------------------------------------------------------------------------

    def _set_status(self, status: ViolationStatus) -> None:
        self._status = status
        self._show()

    def _view(self) -> SodViolation:
        found, rule = self._found, self._found.rule
        return SodViolation(
            violation_id=found.violation_id,
            rule=rule.name,
            employee_id=found.employee_id,
            sides=[s.model_dump(mode="json") for s in found.sides],
            status=self._status,
            remediation=rule.remediation.value,
            detected_at=self._detected_at,
            updated_at=workflow.now(),
            exception_until=self._exception_until,
            workflow_id=workflow.info().workflow_id,
            detail={
                "description": rule.description,
                "round": self._in.round,
                "newest": found.newest.model_dump(mode="json") if found.newest else None,
                "owners": list(self._owners.employee_ids),
                **self._detail,
                "waiting_on": self._approval.view.model_dump(mode="json")
                if self._approval.view
                else None,
                "stages": [s.model_dump(mode="json") for s in self._stages],
                "story": [line.model_dump(mode="json") for line in self._story],
            },
        )

    def _show(self) -> None:
        stage = self._approval.describe()
        found = self._found
        if stage is not None:
            text = stage
        elif self._status is ViolationStatus.EXCEPTED and self._exception_until is not None:
            text = f"excepted until {self._exception_until:%Y-%m-%d %H:%M} UTC"
        else:
            text = self._status.value.replace("_", " ")
        workflow.set_current_details(f"{found.rule.name} for {found.employee_id}: {text}")


def _about(description: str) -> str:
    return f" ({escape(description)})" if description else ""


def _sides_html(found: FoundViolation) -> str:
    items = "".join(
        f"<li>{escape(s.key)}: {escape(', '.join(g.describe() for g in s.grants))}</li>"
        for s in found.sides
    )
    return f"<ul>{items}</ul>"
