"""Access requests on the time-skipping server: approval chains, quorum, escalation, timeouts,
reminders, validators, SoD, expiry, extension and leavers.

One organisation is hired once for the module (identity ids are global in the test namespace); each
test uses its own requesters so their requests and holdings never meet. Time passes only when a test
sleeps the environment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from domain.access_request import (
    AccessRequestContract,
    Actor,
    CancelInput,
    Decision,
    ExtendInput,
    RecordRequestInput,
    Refusal,
    RefusedAttempt,
    RequestStatus,
    RequestView,
    RevokeInput,
    UpdateAnswer,
)
from tests.support.access import (
    AccessHarness,
    access_test_policy,
    access_worker,
    until_request,
    until_status,
    until_waiting,
    view,
)
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import until

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
# M0 runs the company; M1 manages the requesters E1..; the rest are approvers named by the policy.
TOP = ["M0"]
PEERS = ["M1", "A1", "Q1", "Q2", "Q3", "ALT1", "OWNER", "ADMIN"]
REQUESTERS = [f"E{i}" for i in range(1, 19)]


@pytest.fixture(scope="module")
async def org(
    time_skipping_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AccessHarness]:
    store = Path(tmp_path_factory.mktemp("access")) / "record.db"
    async with access_worker(
        time_skipping_env, access_test_policy(), FakeDirectory(), store
    ) as harness:
        await harness.hire("M0")
        for person in PEERS:
            await harness.hire(person, manager_id="M0")
        for person in REQUESTERS:
            await harness.hire(person, manager_id="M1")
        yield harness


def _on_time(actual: datetime, due: datetime) -> bool:
    """Not before it was due, and within the minute (the skipped clock still ticks while the
    worker runs the task)."""
    return due <= actual < due + MINUTE


def _kinds(current: RequestView, kind: str) -> list:
    return [e for e in current.story if e.kind == kind]


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
    decisions = [(e.actor, e.data["decision"]) for e in _kinds(granted, "decision")]
    assert decisions == [("M1", "approve"), ("A1", "approve")]
    assert granted.expires_at == granted.granted_at + timedelta(days=10)
    # The record store has the same story, kept outside Temporal (written after the mails).
    stored = await until_stored(org, handle.id, RequestStatus.GRANTED)
    assert [e.kind for e in stored.story] == [e.kind for e in granted.story]
    # Approvers were asked by mail, and the requester told of the grant.
    assert org.directory.mails_to("M1") and org.directory.mails_to("A1")
    assert any("granted" in c.input.subject for c in org.directory.mails_to("E1"))


async def until_stored(org: AccessHarness, request_id: str, status: RequestStatus) -> RequestView:
    for _ in range(200):
        stored = org.store.get_request(request_id)
        if stored is not None and stored.status is status:
            return stored
        await asyncio.sleep(0.03)
    raise AssertionError(f"record store never had {request_id} {status}")


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
    assert "your own" in stranger.message or "your own" in own.message
    # Nothing changed: no decision, the same stage still waits for the same people.
    after = await view(handle)
    assert _kinds(after, "decision") == []
    assert after.waiting_on == before.waiting_on

    await org.decide(handle, "Q1")
    repeat = await _refusal(org, handle, "Q1")
    assert repeat.type == Refusal.NOT_ALLOWED
    assert "already decided" in repeat.message
    assert len(_kinds(await view(handle), "decision")) == 1

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
        handle, lambda v: bool(_kinds(v, "refused_attempt")), "refused attempt recorded"
    )
    attempt = _kinds(recorded, "refused_attempt")[0]
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
            handle, lambda v: bool(_kinds(v, "refused_attempt")), "refused attempt in the story"
        )
    finally:
        org.record.hold = None
    assert signalled == [handle.id]
    stored = await until_stored_with(
        org, handle.id, lambda v: bool(_kinds(v, "refused_attempt")), "the refused attempt"
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
        handle, lambda v: bool(_kinds(v, "escalated")), "escalated after a day"
    )
    assert escalated.waiting_on is not None
    assert escalated.waiting_on.approvers == ["M1", "ALT1"]  # added, not replaced
    assert _on_time(_kinds(escalated, "escalated")[0].at, opened + DAY)
    assert org.directory.mails_to("ALT1")

    await org.env.sleep(2 * DAY)
    denied = await until_status(handle, RequestStatus.DENIED)
    # Reminders 2 days and 1 day before the 3-day deadline, to whoever had not decided.
    reminders = [e.at for e in _kinds(denied, "reminder")]
    assert len(reminders) == 2
    assert _on_time(reminders[0], opened + DAY) and _on_time(reminders[1], opened + 2 * DAY)
    timeout = _kinds(denied, "timeout")[0]
    assert _on_time(timeout.at, opened + 3 * DAY)
    assert "denied by policy" in timeout.text
    assert ("Reports", "E4") not in org.directory.memberships


async def test_timeout_can_approve_by_policy(org: AccessHarness) -> None:
    handle = await org.request("escalate-approve", "E5")
    opened = (await until_waiting(handle, 0)).stages[0].opened_at
    await org.env.sleep(3 * DAY + MINUTE)
    granted = await until_status(handle, RequestStatus.GRANTED)
    timeout = _kinds(granted, "timeout")[0]
    assert _on_time(timeout.at, opened + 3 * DAY)
    assert "approved by policy (no reviewer)" in timeout.text
    assert _kinds(granted, "decision") == []
    assert ("Reports", "E5") in org.directory.memberships


async def test_timeout_escalates_to_fallback_who_decides(org: AccessHarness) -> None:
    handle = await org.request("escalate-fallback", "E6")
    await until_waiting(handle, 0)
    await org.env.sleep(DAY + MINUTE)
    replaced = await until_request(
        handle, lambda v: bool(_kinds(v, "escalated")), "escalated to the manager's manager"
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
    assert "fallback" in _kinds(fallback, "timeout")[0].text
    await org.decide(handle, "OWNER")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert [e.actor for e in _kinds(granted, "decision")] == ["OWNER"]


async def test_fallback_that_also_times_out_denies(org: AccessHarness) -> None:
    handle = await org.request("escalate-fallback", "E13")
    opened = (await until_waiting(handle, 0)).stages[0].opened_at
    await org.env.sleep(4 * DAY + MINUTE)
    denied = await until_status(handle, RequestStatus.DENIED)
    timeouts = [e.at for e in _kinds(denied, "timeout")]
    assert len(timeouts) == 2
    assert _on_time(timeouts[0], opened + 3 * DAY)
    # The fallback's day counts from when it was asked.
    assert _on_time(timeouts[1], timeouts[0] + DAY)


async def test_sod_conflict_is_denied_at_request_time_both_ways(org: AccessHarness) -> None:
    # E7 holds payables (no approval needed), then asks for receivables.
    payables = await org.request("payables", "E7")
    await until_status(payables, RequestStatus.GRANTED)
    receivables = await org.request("receivables", "E7")
    denied = await until_status(receivables, RequestStatus.DENIED)
    sod = _kinds(denied, "sod")[0]
    assert sod.data["rule"] == "pay-vs-receive"
    assert "package:payables" in sod.text
    assert denied.stages == []  # refused before any approver was asked

    # E8 has receivables pending, then asks for payables: pending counts too.
    pending = await org.request("receivables", "E8")
    await until_waiting(pending, 0)
    second = await org.request("payables", "E8")
    denied_too = await until_status(second, RequestStatus.DENIED)
    assert _kinds(denied_too, "sod")[0].data["rule"] == "pay-vs-receive"
    assert ("Payables", "E8") not in org.directory.memberships


async def test_access_is_removed_exactly_at_expiry(org: AccessHarness) -> None:
    handle = await org.request("payables", "E9")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert granted.expires_at == granted.granted_at + timedelta(days=30)
    await org.env.sleep(timedelta(days=30) - MINUTE)
    assert (await view(handle)).status is RequestStatus.GRANTED
    assert ("Payables", "E9") in org.directory.memberships

    await org.env.sleep(2 * MINUTE)
    expired = await until_status(handle, RequestStatus.EXPIRED)
    assert ("Payables", "E9") not in org.directory.memberships
    assert _on_time(_kinds(expired, "removed")[0].at, granted.expires_at)
    # Default reminders: 14 days and 1 day before the end.
    reminders = [e.at for e in _kinds(expired, "expiry_reminder")]
    assert len(reminders) == 2
    assert _on_time(reminders[0], granted.expires_at - timedelta(days=14))
    assert _on_time(reminders[1], granted.expires_at - DAY)
    # The identity hears the request closed, and no longer counts the package as held.
    await until(
        org.identities["E9"],
        lambda s: all(h.request_id != handle.id for h in s.packages),
        "package released",
        idle=False,
    )


async def test_extension_approved_moves_the_end(org: AccessHarness) -> None:
    handle = await org.request("two-stage", "E10")
    await until_waiting(handle, 0)
    await org.decide(handle, "M1")
    await until_waiting(handle, 1)
    await org.decide(handle, "A1")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert granted.expires_at is not None
    new_end = granted.expires_at + timedelta(days=5)

    answer = await org.update(
        handle,
        AccessRequestContract.UPDATE_EXTEND,
        ExtendInput(actor=Actor(employee_id="E10"), new_end=new_end, justification="audit"),
    )
    assert "needs approval" in answer.message
    asked = await until_waiting(handle, 0)
    assert asked.waiting_on is not None and asked.waiting_on.round == "extension-1"
    await org.decide(handle, "M1")
    await until_request(
        handle,
        lambda v: v.waiting_on is not None and v.waiting_on.index == 1,
        "extension's second stage",
    )
    await org.decide(handle, "A1")
    extended = await until_request(handle, lambda v: v.expires_at == new_end, "end moved")
    assert extended.status is RequestStatus.GRANTED

    # Past the old end the access stays; at the new end it goes.
    now = await org.env.get_current_time()
    await org.env.sleep(granted.expires_at - now + MINUTE)
    assert (await view(handle)).status is RequestStatus.GRANTED
    assert ("Reports", "E10") in org.directory.memberships
    await org.env.sleep(timedelta(days=5))
    await until_status(handle, RequestStatus.EXPIRED)
    assert ("Reports", "E10") not in org.directory.memberships


async def test_leaver_cancels_pending_requests_and_removes_grants(org: AccessHarness) -> None:
    held = await org.request("payables", "E11")
    await until_status(held, RequestStatus.GRANTED)
    pending = await org.request("two-stage", "E11")
    await until_waiting(pending, 0)
    assert ("Payables", "E11") in org.directory.memberships

    await org.terminate("E11")
    cancelled = await until_status(pending, RequestStatus.CANCELLED)
    assert "left" in cancelled.story[-1].text or any("left" in e.text for e in cancelled.story)
    revoked = await until_status(held, RequestStatus.REVOKED)
    assert ("Payables", "E11") not in org.directory.memberships
    assert any("left" in e.text for e in _kinds(revoked, "removed"))
    # Birthright's part of the record: granted at the hire by its rule, removed by the leaver.
    staff = [c for c in org.directory.access_changes.values() if c.employee_id == "E11"]
    assert any(
        c.action == "granted" and c.resource == "group:All Staff" and c.cause["rule"] == "everyone"
        for c in staff
    )
    assert any(
        c.action == "removed" and c.resource == "group:All Staff" and c.cause["type"] == "leaver"
        for c in staff
    )
    # A new request for someone who left is refused.
    late = await org.request("payables", "E11")
    refused = await until_status(late, RequestStatus.DENIED)
    assert "not active" in refused.story[-1].text or any(
        "not active" in e.text for e in refused.story
    )


async def test_a_move_keeps_what_a_package_also_grants(org: AccessHarness) -> None:
    # Finance gets Ledger Readers by birthright; E14 also holds it through a package.
    handle = await org.request("ledger-read", "E14")
    await until_status(handle, RequestStatus.GRANTED)
    await org.move("E14", "Sales")
    moved = await until(
        org.identities["E14"],
        lambda s: s.worker is not None and s.worker.department == "Sales",
        "moved to Sales",
    )
    assert not any(a.target == "Ledger Readers" for a in moved.access)  # birthright gone
    assert ("Ledger Readers", "E14") in org.directory.memberships  # the package keeps it
    assert (await view(handle)).status is RequestStatus.GRANTED


async def test_requester_cancels_a_pending_request(org: AccessHarness) -> None:
    handle = await org.request("quorum", "E15")
    await until_waiting(handle, 0)
    # Only the requester, the person it is for or an administrator may cancel.
    with pytest.raises(WorkflowUpdateFailedError) as stranger:
        await org.update(
            handle,
            AccessRequestContract.UPDATE_CANCEL,
            CancelInput(actor=Actor(employee_id="Q1"), reason="not mine"),
        )
    assert isinstance(stranger.value.cause, ApplicationError)
    assert stranger.value.cause.type == Refusal.NOT_ALLOWED

    await org.update(
        handle,
        AccessRequestContract.UPDATE_CANCEL,
        CancelInput(actor=Actor(employee_id="E15"), reason="no longer needed"),
    )
    cancelled = await until_status(handle, RequestStatus.CANCELLED)
    assert _kinds(cancelled, "cancelled")[0].actor == "E15"
    assert ("Quorum Data", "E15") not in org.directory.memberships
    # The run is over: Temporal itself refuses any update (the API answers 409), and the identity
    # no longer counts the request as pending.
    assert (await handle.result()).status is RequestStatus.CANCELLED
    with pytest.raises(RPCError) as closed:
        await org.decide(handle, "Q1")
    assert closed.value.status is RPCStatusCode.NOT_FOUND
    await until(
        org.identities["E15"],
        lambda s: all(h.request_id != handle.id for h in s.packages),
        "pending request released",
        idle=False,
    )


async def test_only_an_administrator_revokes_a_grant(org: AccessHarness) -> None:
    handle = await org.request("payables", "E16")
    await until_status(handle, RequestStatus.GRANTED)

    async def revoke(who: str, admin: bool = False) -> UpdateAnswer:
        return await org.update(
            handle,
            AccessRequestContract.UPDATE_REVOKE,
            RevokeInput(actor=Actor(employee_id=who, is_admin=admin), reason="audit finding"),
        )

    with pytest.raises(WorkflowUpdateFailedError) as holder:
        await revoke("E16")
    assert isinstance(holder.value.cause, ApplicationError)
    assert holder.value.cause.type == Refusal.NOT_ALLOWED
    # ADMIN is an administrator by policy; a token's admin role would do as well.
    await revoke("ADMIN")
    revoked = await until_status(handle, RequestStatus.REVOKED)
    assert ("Payables", "E16") not in org.directory.memberships
    assert _kinds(revoked, "revoked")[0].actor == "ADMIN"
    assert "revoked by ADMIN" in _kinds(revoked, "removed")[0].text


async def test_extension_denied_keeps_the_end_and_a_revoke_ends_a_pending_one(
    org: AccessHarness,
) -> None:
    handle = await org.request("two-stage", "E17")
    await until_waiting(handle, 0)
    await org.decide(handle, "M1")
    await until_waiting(handle, 1)
    await org.decide(handle, "A1")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert granted.expires_at is not None

    async def extend(days: int) -> None:
        await org.update(
            handle,
            AccessRequestContract.UPDATE_EXTEND,
            ExtendInput(
                actor=Actor(employee_id="E17"),
                new_end=granted.expires_at + timedelta(days=days),
                justification="more work",
            ),
        )

    await extend(3)
    await until_request(
        handle, lambda v: v.waiting_on is not None and v.waiting_on.round == "extension-1", "asked"
    )
    await org.decide(handle, "M1", Decision.DENY)
    denied = await until_request(
        handle, lambda v: bool(_kinds(v, "extension_decided")), "extension decided"
    )
    assert "denied" in _kinds(denied, "extension_decided")[0].text
    assert denied.expires_at == granted.expires_at and denied.status is RequestStatus.GRANTED

    await extend(4)
    await until_request(
        handle, lambda v: v.waiting_on is not None and v.waiting_on.round == "extension-2", "asked"
    )
    await org.update(
        handle,
        AccessRequestContract.UPDATE_REVOKE,
        RevokeInput(actor=Actor(employee_id="ADMIN"), reason="left the project"),
    )
    revoked = await until_status(handle, RequestStatus.REVOKED)
    assert revoked.expires_at == granted.expires_at
    assert ("Reports", "E17") not in org.directory.memberships
