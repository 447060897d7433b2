"""A role activation as an approval subject: the role's approvers decide, the person activating
never does, and the mail says what is asked for, for how long and why."""

from __future__ import annotations

from html import escape

from pydantic import BaseModel

from domain.approval.subject import ApproverContext, AskKind, Mail, StageAsk

_ASKS = {
    AskKind.ASK: "Role activation needs approval",
    AskKind.REMINDER: "Reminder: role activation needs approval",
    AskKind.ESCALATION: "Escalated: role activation needs approval",
}


class ActivationSubject(BaseModel):
    activation_id: str  # the workflow id: what approvers name to decide
    role_name: str
    employee_id: str
    duration: str  # as people read it ("2 h")
    justification: str = ""
    ticket: str | None = None
    manager_id: str | None = None  # the person's

    def approver_context(self) -> ApproverContext:
        return ApproverContext(manager_id=self.manager_id, own_people=[self.employee_id])

    def own_refusal(self) -> str:
        return "you cannot approve your own role activation"

    def ask_mail(self, ask: StageAsk) -> Mail:
        ticket = f" (ticket {escape(self.ticket)})" if self.ticket else ""
        return Mail(
            subject=f"{_ASKS[ask.kind]}: {self.role_name} for {self.employee_id}",
            html=f"<p>{self.employee_id} asks to activate <b>{escape(self.role_name)}</b> for "
            f"{self.duration}{ticket}: {escape(self.justification or '(no justification)')}</p>"
            f"<p>{ask.stage_name} needs {ask.needs} by {ask.deadline:%Y-%m-%d %H:%M} UTC. "
            f"Decide with <code>tenure pim approve {self.activation_id}</code> (or deny).</p>",
        )


class EligibilityExtensionSubject(BaseModel):
    """A person's ask to stay eligible for a role longer: the role's approvers (or its
    administrators) decide; the person never does."""

    eligibility_id: str
    role_name: str
    employee_id: str
    new_end: str  # as people read it ("2027-03-01 00:00 UTC", "no end")
    justification: str = ""
    manager_id: str | None = None

    def approver_context(self) -> ApproverContext:
        return ApproverContext(manager_id=self.manager_id, own_people=[self.employee_id])

    def own_refusal(self) -> str:
        return "you cannot approve an extension of your own eligibility"

    def ask_mail(self, ask: StageAsk) -> Mail:
        return Mail(
            subject=f"Eligibility extension needs approval: {self.role_name} for {self.employee_id}",
            html=f"<p>{self.employee_id} asks to stay eligible for <b>{escape(self.role_name)}"
            f"</b> until {escape(self.new_end)}: "
            f"{escape(self.justification or '(no justification)')}</p>"
            f"<p>{ask.stage_name} needs {ask.needs} by {ask.deadline:%Y-%m-%d %H:%M} UTC. "
            f"Decide with <code>tenure pim approve {self.eligibility_id}</code> (or deny).</p>",
        )
