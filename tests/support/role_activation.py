"""A role activation (as PIM would run it) on the approval engine: the engine's second kind of
subject, to show it needs nothing of access requests. The role's approvers decide; the person
activating may not. Activities resolve approvers from a fixed directory and keep the mails."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity, workflow

from workflows.approval import ApprovalEngine, ApprovalHost

with workflow.unsafe.imports_passed_through():
    from domain.approval.contract import (
        Decision,
        ResolveApproversInput,
        ResolvedApprovers,
        StageView,
    )
    from domain.approval.stages import ApprovalStage, ApproverKind
    from domain.approval.subject import ApproverContext, AskKind, Mail, StageAsk

ROLE_ACTIVATION = "TestRoleActivation"
RESOLVE = "test.role.resolve_approvers"
NOTIFY = "test.role.notify"
_QUICK = {"start_to_close_timeout": timedelta(seconds=10)}


class RoleActivationSubject(BaseModel):
    activation_id: str
    role: str
    person_id: str
    reason: str
    manager_id: str | None = None
    role_owners: list[str] = Field(default_factory=list)

    def approver_context(self) -> ApproverContext:
        return ApproverContext(
            manager_id=self.manager_id, owners=self.role_owners, own_people=[self.person_id]
        )

    def own_refusal(self) -> str:
        return "you cannot approve your own role activation"

    def ask_mail(self, ask: StageAsk) -> Mail:
        verb = {
            AskKind.ASK: "Approve",
            AskKind.REMINDER: "Still waiting",
            AskKind.ESCALATION: "Now yours",
        }
        return Mail(
            subject=f"{verb[ask.kind]}: activate {self.role} for {self.person_id}",
            html=f"<p>{self.person_id} wants the <b>{escape(self.role)}</b> role: "
            f"{escape(self.reason)}</p><p>{ask.stage_name}: {ask.needs} before "
            f"{ask.deadline:%Y-%m-%d %H:%M} UTC (<code>tenure pim approve {self.activation_id}"
            "</code>).</p>",
        )


class ActivationInput(BaseModel):
    subject: RoleActivationSubject
    stages: list[ApprovalStage]


class ActivationDecision(BaseModel):
    actor: str
    decision: Decision = Decision.APPROVE


class Line(BaseModel):
    kind: str
    actor: str
    text: str
    at: datetime


class ActivationView(BaseModel):
    result: str | None = None
    waiting_on: StageView | None = None
    stages: list[StageView] = Field(default_factory=list)
    story: list[Line] = Field(default_factory=list)


class Notice(BaseModel):
    to: list[str]
    subject: str
    html: str


@workflow.defn(name=ROLE_ACTIVATION)
class RoleActivationWorkflow(ApprovalHost):
    @workflow.init
    def __init__(self, input: ActivationInput) -> None:
        self._engine = ApprovalEngine(self)
        self._view = ActivationView()
        self._wakes = 0
        self._done = False

    @workflow.run
    async def run(self, input: ActivationInput) -> ActivationView:
        result = await self._engine.run(input.subject, input.stages, "activation", None)
        self._view.result = result.value
        # Stay open (the role is active) so decisions after the outcome meet the validator.
        await workflow.wait_condition(lambda: self._done)
        return self._view

    @workflow.update(name="decide")
    def decide(self, input: ActivationDecision) -> str:
        message = self._engine.decide(input.actor, input.decision, "")
        self._wakes += 1
        return message

    @decide.validator
    def _may_decide(self, input: ActivationDecision) -> None:
        self._engine.validate_decision(input.actor)

    @workflow.signal(name="done")
    def done(self) -> None:
        self._done = True

    @workflow.query(name="details")
    def details(self) -> ActivationView:
        return self._view.model_copy(update={"waiting_on": self._engine.view})

    # ---- ApprovalHost -----------------------------------------------------------------------

    def closed_refusal(self) -> str:
        return f"the activation takes no decisions ({self._view.result or 'starting'})"

    def interrupted(self, hard_stop: datetime | None) -> bool:
        return False

    def stage_opened(self, view: StageView) -> None:
        self._view.stages.append(view)

    def tell(
        self, kind: Any, actor: str, text: str, at: datetime | None = None, **data: Any
    ) -> None:
        self._view.story.append(Line(kind=kind, actor=actor, text=text, at=at or workflow.now()))

    async def sleep_until(self, at: datetime | None, what: str) -> bool:
        wakes = self._wakes
        timeout = None if at is None else max(at - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(lambda: self._wakes != wakes, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def record(self) -> None:
        pass  # the query is this host's only record

    async def resolve_approvers(self, input: ResolveApproversInput) -> ResolvedApprovers:
        return await workflow.execute_activity(
            RESOLVE, input, result_type=ResolvedApprovers, **_QUICK
        )

    async def notify(self, to: list[str], subject: str, html: str) -> None:
        await workflow.execute_activity(NOTIFY, Notice(to=to, subject=subject, html=html), **_QUICK)


class RoleDirectory:
    """Approver sources against a fixed organisation; mails are kept, not sent."""

    def __init__(self, second_level: dict[str, str]) -> None:
        self._second_level = second_level
        self.mails: list[Notice] = []

    @activity.defn(name=RESOLVE)
    async def resolve_approvers(self, input: ResolveApproversInput) -> ResolvedApprovers:
        found: list[str] = []
        manager = input.beneficiary_manager_id
        for source in input.sources:
            ids = {
                ApproverKind.MANAGER: [manager] if manager else [],
                ApproverKind.SECOND_LEVEL_MANAGER: (
                    [self._second_level[manager]] if manager in self._second_level else []
                ),
                ApproverKind.PEOPLE: source.people,
                ApproverKind.OWNER: input.owners,
            }.get(source.kind, [])
            found += [i for i in ids if i not in found and i not in input.exclude]
        return ResolvedApprovers(employee_ids=found)

    @activity.defn(name=NOTIFY)
    async def notify(self, input: Notice) -> None:
        self.mails.append(input)

    def mails_to(self, employee_id: str) -> list[Notice]:
        return [m for m in self.mails if employee_id in m.to]
