"""An access request as an approval subject: its approvers' mails keep the wording running requests
have always sent, and its requester and beneficiary are its own people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest

from domain.access.approval import AccessRequestSubject
from domain.access.request import StoryKind
from domain.approval.contract import ApprovalStoryKind
from domain.approval.subject import AskKind, StageAsk

DEADLINE = datetime(2027, 1, 14, 22, 10, 30, tzinfo=UTC)
SUBJECT = AccessRequestSubject(
    request_id="access-request-E2-reports-9c7b8593b2",
    package_name="Reports & <Ledger>",
    requester_id="M1",
    beneficiary_id="E2",
    justification="",
    manager_id="M1",
    owners=["OWNER"],
)


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        (AskKind.ASK, "Decision needed"),
        (AskKind.REMINDER, "Reminder: decision needed"),
        (AskKind.ESCALATION, "Escalated: decision needed"),
    ],
)
def test_ask_mail_of_each_kind(kind: AskKind, prefix: str) -> None:
    ask = StageAsk(kind=kind, stage_name="manager", needs="2 approvals", deadline=DEADLINE)
    mail = SUBJECT.ask_mail(ask)
    assert mail.subject == f"{prefix}: Reports & <Ledger> for E2"
    assert mail.html == (
        "<p>M1 asks for <b>Reports &amp; &lt;Ledger&gt;</b> for E2: (no justification)</p>"
        "<p>manager needs 2 approvals by 2027-01-14 22:10 UTC. Decide with "
        "<code>tenure requests approve access-request-E2-reports-9c7b8593b2</code> (or deny).</p>"
    )


def test_requester_and_beneficiary_are_its_own_people() -> None:
    context = SUBJECT.approver_context()
    assert context.own_people == ["M1", "E2"]
    assert (context.manager_id, context.owners) == ("M1", ["OWNER"])
    assert SUBJECT.own_refusal() == (
        "you cannot decide on a request for your own access or one you made"
    )


def test_the_request_story_takes_every_line_the_engine_writes() -> None:
    # A story entry of a kind the request does not know would fail the workflow task.
    assert set(get_args(ApprovalStoryKind)) <= set(get_args(StoryKind))
