"""The bodies the access endpoints take and the answers they give (besides the workflow's own)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.access.request import RequestStatus, RequestView
from domain.approval.contract import Decision, StageView
from domain.inbound import ApiTimestamp, api_text, free_text
from domain.policy.values import EmployeeId

# What people type: line breaks allowed, control and bidirectional characters refused.
Justification = Annotated[str, free_text(2000)]
Answer = Annotated[str, api_text(4000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewAccessRequest(_Body):
    """A request for an access package. The requester is the caller (from the token)."""

    package_id: Annotated[str, api_text(64, name=True)] = Field(
        min_length=1, max_length=64, examples=["accounts-payable"]
    )
    beneficiary_id: EmployeeId | None = Field(
        None,
        description="Who would hold the access; absent means the caller. Requesting for someone "
        "else is allowed only where the package lets managers request for their reports.",
        examples=["E1002"],
    )
    justification: Justification = Field("", max_length=2000)
    answers: dict[Annotated[str, api_text(64, name=True)], Answer] = Field(
        default_factory=dict,
        description="Answers to the package's questions, by question id.",
        examples=[{"ticket": "CHG-1234", "environment": "eu"}],
    )
    requested_end: ApiTimestamp | None = Field(
        None,
        description="When the access should end, for packages whose end the requester chooses "
        "(within the policy's maximum); must carry a timezone.",
    )


class DecisionBody(_Body):
    decision: Decision
    comment: Justification = Field("", max_length=2000)


class ExtensionBody(_Body):
    new_end: ApiTimestamp = Field(description="The new end of the access, with a timezone.")
    justification: Justification = Field("", max_length=2000)


class CancelBody(_Body):
    reason: Justification = Field("", max_length=2000)


class RevokeBody(_Body):
    reason: Annotated[str, free_text(2000)] = Field(min_length=1, max_length=2000)


class SubmittedRequest(BaseModel):
    request_id: str
    status: RequestStatus
    links: dict[str, str] = Field(description="Where to read and act on the request.")


class RequestSummary(BaseModel):
    """A request in a list: who, what, where it stands; its full story is at its own URL."""

    request_id: str
    package_id: str
    package_name: str
    beneficiary_id: str
    requester_id: str
    status: RequestStatus
    submitted_at: datetime
    waiting_on: StageView | None = None
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    closed_at: datetime | None = None
    updated_at: datetime

    @classmethod
    def of(cls, view: RequestView) -> RequestSummary:
        return cls.model_validate(view.model_dump(include=set(cls.model_fields)))


class RequestList(BaseModel):
    requests: list[RequestSummary]
    count: int
