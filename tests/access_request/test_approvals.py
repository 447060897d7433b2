"""Access requests on the time-skipping server, on their way to a decision: approval stages, quorum,
escalation, timeouts and reminders, the validator's refusals and refused attempts on the record.

The organisation is hired once (`org`, tests/access_request/conftest.py). Time passes only when a
test sleeps the environment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.access.request import (
    AccessRequestContract,
    Actor,
    RecordRequestInput,
    Refusal,
    RefusedAttempt,
    RequestStatus,
    RequestView,
)
from domain.approval.contract import Decision
from tests.support.access import (
    DAY,
    MINUTE,
    AccessHarness,
    kinds,
    on_time,
    until_request,
    until_status,
    until_stored,
    until_waiting,
    view,
)


async def _refusal(harness: AccessHarness, handle, who: str) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await harness.decide(handle, who)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_two_stage_request_is_approved_then_granted(org: AccessHarness) -> None:
    handle = await org.request("two-stage", "E1")
    first = await until_waiting(handle, 0)
    assert first.waiting_on is not None and first.waiting_on.approvers == ["M1"]
    assert first.status is RequestStatus.PENDING_APPROVAL

    answer = await org.decide(handle, "M1")
    assert "manager is approved" in answer.message
    second = await until_waiting(handle, 1)
    assert second.waiting_on is not None and second.waiting_on.approvers == ["A1"]
    assert ("Reports", "E1") not in org.directory.memberships  # nothing before the last stage

    await org.decide(handle, "A1")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert ("Reports", "E1") in org.directory.memberships
    assert ("ledger", "E1", "reporter") in org.directory.app_roles
    decisions = [(e.actor, e.data["decision"]) for e in kinds(granted, "decision")]
    assert decisions == [("M1", "approve"), ("A1", "approve")]
    assert granted.expires_at == granted.granted_at + timedelta(days=10)
    # The record store has the same story, kept outside Temporal (written after the mails).
    stored = await until_stored(org, handle.id, RequestStatus.GRANTED)
    assert [e.kind for e in stored.story] == [e.kind for e in granted.story]
    # Approvers were asked by mail, and the requester told of the grant.
    assert org.directory.mails_to("M1") and org.directory.mails_to("A1")
    assert any("granted" in c.input.subject for c in org.directory.mails_to("E1"))


async def test_quorum_two_of_three(org: AccessHarness) -> None:
    handle = await org.request("quorum", "E2")
    await until_waiting(handle, 0)
    answer = await org.decide(handle, "Q1")
    assert answer.status is RequestStatus.PENDING_APPROVAL
    assert "still waits" in answer.message
    still = await view(handle)
    assert still.waiting_on is not None and still.waiting_on.approved_by == ["Q1"]

    await org.decide(handle, "Q3")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert ("Quorum Data", "E2") in org.directory.memberships
    assert granted.expires_at is None  # this package never expires
    # The third approver comes too late: the request no longer waits for anyone.
    late = await _refusal(org, handle, "Q2")
    assert late.type == Refusal.CLOSED
    assert late.message == "request is not waiting for a decision (status granted)"


async def test_quorum_denied_once_it_cannot_be_reached(org: AccessHarness) -> None:
    handle = await org.request("quorum", "E12")
    await until_waiting(handle, 0)
    await org.decide(handle, "Q1", Decision.DENY)
    assert (await view(handle)).status is RequestStatus.PENDING_APPROVAL
    await org.decide(handle, "Q2", Decision.DENY)
    denied = await until_status(handle, RequestStatus.DENIED)
    assert ("Quorum Data", "E12") not in org.directory.memberships
    assert denied.stages[0].outcome == "denied"


async def test_validator_refuses_strangers_the_requester_and_repeats(org: AccessHarness) -> None:
    handle = await org.request("quorum", "E3")
    await until_waiting(handle, 0)
    before = await view(handle)

    stranger = await _refusal(org, handle, "A1")
    assert stranger.type == Refusal.NOT_ALLOWED
    assert "not an approver" in stranger.message
    own = await _refusal(org, handle, "E3")
    assert own.type == Refusal.NOT_ALLOWED
    assert own.message == "you cannot decide on a request for your own access or one you made"
    # Nothing changed: no decision, the same stage still waits for the same people.
    after = await view(handle)
    assert kinds(after, "decision") == []
    assert after.waiting_on == before.waiting_on

    await org.decide(handle, "Q1")
    repeat = await _refusal(org, handle, "Q1")
    assert repeat.type == Refusal.NOT_ALLOWED
    assert "already decided" in repeat.message
    assert len(kinds(await view(handle), "decision")) == 1

    # The API reports refused attempts by signal; they join the request's record.
    await handle.signal(
        AccessRequestContract.SIGNAL_REFUSED_ATTEMPT,
        RefusedAttempt(
            actor=Actor(employee_id="A1"),
            action="decide",
            reason=stranger.message,
            at=await org.env.get_current_time(),
        ),
    )
    recorded = await until_request(
        handle, lambda v: bool(kinds(v, "refused_attempt")), "refused attempt recorded"
    )
    attempt = kinds(recorded, "refused_attempt")[0]
    assert attempt.actor == "A1" and "not an approver" in attempt.text


async def test_a_refused_attempt_signalled_while_recording_reaches_the_record(
    org: AccessHarness,
) -> None:
    """The API signals a refused attempt right after the record shows a stage open, i.e. maybe
    while that very record activity still runs: the line must reach the record store then, not
    at the stage's next timer (days later)."""
    signalled: list[str] = []

    async def signal_while_recording(input: RecordRequestInput) -> None:
        current = input.view
        if current.beneficiary_id != "E18" or current.waiting_on is None or signalled:
            return
        signalled.append(current.request_id)
        await org.env.client.get_workflow_handle(current.request_id).signal(
            AccessRequestContract.SIGNAL_REFUSED_ATTEMPT,
            RefusedAttempt(
                actor=Actor(employee_id="A1"),
                action="decide",
                reason="not an approver of this stage",
                at=await org.env.get_current_time(),
            ),
        )

    org.record.hold = signal_while_recording
    try:
        handle = await org.request("quorum", "E18")
        await until_request(
            handle, lambda v: bool(kinds(v, "refused_attempt")), "refused attempt in the story"
        )
    finally:
        org.record.hold = None
    assert signalled == [handle.id]
    stored = await until_stored_with(
        org, handle.id, lambda v: bool(kinds(v, "refused_attempt")), "the refused attempt"
    )
    assert stored.status is RequestStatus.PENDING_APPROVAL


async def until_stored_with(
    org: AccessHarness, request_id: str, check: Callable[[RequestView], bool], what: str
) -> RequestView:
    """The record store's view once `check` holds (polling does not skip time)."""
    for _ in range(200):
        stored = org.store.get_request(request_id)
        if stored is not None and check(stored):
            return stored
        await asyncio.sleep(0.03)
    raise AssertionError(f"record store never had {what} for {request_id}")


async def test_escalation_then_timeout_denies_with_reminders_on_time(org: AccessHarness) -> None:
    handle = await org.request("escalate-deny", "E4")
    opened = (await until_waiting(handle, 0)).stages[0].opened_at

    await org.env.sleep(DAY + MINUTE)
    escalated = await until_request(
        handle, lambda v: bool(kinds(v, "escalated")), "escalated after a day"
    )
    assert escalated.waiting_on is not None
    assert escalated.waiting_on.approvers == ["M1", "ALT1"]  # added, not replaced
    assert on_time(kinds(escalated, "escalated")[0].at, opened + DAY)
    assert org.directory.mails_to("ALT1")

    await org.env.sleep(2 * DAY)
    denied = await until_status(handle, RequestStatus.DENIED)
    # Reminders 2 days and 1 day before the 3-day deadline, to whoever had not decided.
    reminders = [e.at for e in kinds(denied, "reminder")]
    assert len(reminders) == 2
    assert on_time(reminders[0], opened + DAY) and on_time(reminders[1], opened + 2 * DAY)
    timeout = kinds(denied, "timeout")[0]
    assert on_time(timeout.at, opened + 3 * DAY)
    assert "denied by policy" in timeout.text
    assert ("Reports", "E4") not in org.directory.memberships


async def test_timeout_can_approve_by_policy(org: AccessHarness) -> None:
    handle = await org.request("escalate-approve", "E5")
    opened = (await until_waiting(handle, 0)).stages[0].opened_at
    await org.env.sleep(3 * DAY + MINUTE)
    granted = await until_status(handle, RequestStatus.GRANTED)
    timeout = kinds(granted, "timeout")[0]
    assert on_time(timeout.at, opened + 3 * DAY)
    assert "approved by policy (no reviewer)" in timeout.text
    assert kinds(granted, "decision") == []
    assert ("Reports", "E5") in org.directory.memberships


async def test_timeout_escalates_to_fallback_who_decides(org: AccessHarness) -> None:
    handle = await org.request("escalate-fallback", "E6")
    await until_waiting(handle, 0)
    await org.env.sleep(DAY + MINUTE)
    replaced = await until_request(
        handle, lambda v: bool(kinds(v, "escalated")), "escalated to the manager's manager"
    )
    assert replaced.waiting_on is not None and replaced.waiting_on.approvers == ["M0"]
    # The replaced manager can no longer decide.
    assert "escalated" in (await _refusal(org, handle, "M1")).message

    await org.env.sleep(2 * DAY)
    fallback = await until_request(
        handle,
        lambda v: v.waiting_on is not None and v.waiting_on.approvers == ["OWNER"],
        "fallback approvers asked",
    )
    assert "fallback" in kinds(fallback, "timeout")[0].text
    await org.decide(handle, "OWNER")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert [e.actor for e in kinds(granted, "decision")] == ["OWNER"]


async def test_fallback_that_also_times_out_denies(org: AccessHarness) -> None:
    handle = await org.request("escalate-fallback", "E13")
    opened = (await until_waiting(handle, 0)).stages[0].opened_at
    await org.env.sleep(4 * DAY + MINUTE)
    denied = await until_status(handle, RequestStatus.DENIED)
    timeouts = [e.at for e in kinds(denied, "timeout")]
    assert len(timeouts) == 2
    assert on_time(timeouts[0], opened + 3 * DAY)
    # The fallback's day counts from when it was asked.
    assert on_time(timeouts[1], timeouts[0] + DAY)
