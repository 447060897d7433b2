"""What is being decided, as the approval engine needs to know it: whom the approver sources name,
who may never decide, and how approvers are asked.

An access request is one subject; a role activation (the role's approvers, the person activating
may not approve) or an item of an access review (one subject per item, its reviewers) are others.
The engine words nothing about the subject itself: mails come from `ask_mail`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field


class ApproverContext(BaseModel):
    """Whom a subject's approver sources name, and who may never decide on it."""

    # Where `manager` (and from there `second_level_manager`) starts: the subject person's manager.
    manager_id: str | None = None
    owners: list[str] = Field(default_factory=list)  # whom `owner` names
    # The subject's own people: never asked, and refused should they try to decide.
    own_people: list[str] = Field(default_factory=list)


class AskKind(StrEnum):
    ASK = "ask"  # the stage opened
    REMINDER = "reminder"  # the deadline nears (the stage's, or the fallback approvers')
    ESCALATION = "escalation"  # an escalation level or the fallback brought approvers in


class StageAsk(BaseModel):
    """A mail to approvers about a stage waiting for them; the subject words it."""

    kind: AskKind
    stage_name: str
    needs: str  # "the first decision", "everyone's approval", "2 approvals"
    deadline: datetime  # the current one (the fallback approvers' once they are asked)


class Mail(BaseModel):
    subject: str
    html: str


class ApprovalSubject(Protocol):
    """What is decided. Pure: the host builds one for each pass over the stages."""

    def approver_context(self) -> ApproverContext: ...

    def own_refusal(self) -> str:
        """Why one of the subject's own people may not decide, in the subject's words."""
        ...

    def ask_mail(self, ask: StageAsk) -> Mail:
        """The mail asking approvers to decide: what is decided, by when, and how to decide."""
        ...
