"""An access request as an approval subject: whom its stages' approver sources name, who may not
decide on it (its requester and beneficiary), and the mails its approvers get."""

from __future__ import annotations

from html import escape

from pydantic import BaseModel, Field

from domain.approval.subject import ApproverContext, AskKind, Mail, StageAsk

_ASKS = {
    AskKind.ASK: "Decision needed",
    AskKind.REMINDER: "Reminder: decision needed",
    AskKind.ESCALATION: "Escalated: decision needed",
}


class AccessRequestSubject(BaseModel):
    """One pass over a request's stages (the request's, or an extension's)."""

    request_id: str  # the workflow id: what approvers name to decide
    package_name: str
    requester_id: str
    beneficiary_id: str
    justification: str = ""
    manager_id: str | None = None  # the beneficiary's
    owners: list[str] = Field(default_factory=list)  # the package's, else its catalog's

    def approver_context(self) -> ApproverContext:
        return ApproverContext(
            manager_id=self.manager_id,
            owners=self.owners,
            own_people=[self.requester_id, self.beneficiary_id],
        )

    def own_refusal(self) -> str:
        return "you cannot decide on a request for your own access or one you made"

    def ask_mail(self, ask: StageAsk) -> Mail:
        return Mail(
            subject=f"{_ASKS[ask.kind]}: {self.package_name} for {self.beneficiary_id}",
            html=f"<p>{self.requester_id} asks for <b>{escape(self.package_name)}</b> for "
            f"{self.beneficiary_id}: {escape(self.justification or '(no justification)')}</p>"
            f"<p>{ask.stage_name} needs {ask.needs} by {ask.deadline:%Y-%m-%d %H:%M} UTC. "
            f"Decide with <code>tenure requests approve {self.request_id}</code> (or deny).</p>",
        )
