"""Access requests on the time-skipping server, once granted (or refused before approval): SoD,
expiry, extension, revoke, cancel, and what leavers and movers do to requests and grants.

The organisation is hired once (`org`, tests/access_request/conftest.py). Time passes only when a
test sleeps the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.access.request import (
    AccessRequestContract,
    Actor,
    CancelInput,
    ExtendInput,
    Refusal,
    RequestStatus,
    RevokeInput,
    UpdateAnswer,
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
    until_waiting,
    view,
)
from tests.support.lifecycle import until


async def test_sod_conflict_is_denied_at_request_time_both_ways(org: AccessHarness) -> None:
    # E7 holds payables (no approval needed), then asks for receivables.
    payables = await org.request("payables", "E7")
    await until_status(payables, RequestStatus.GRANTED)
    receivables = await org.request("receivables", "E7")
    denied = await until_status(receivables, RequestStatus.DENIED)
    sod = kinds(denied, "sod")[0]
    assert sod.data["rule"] == "pay-vs-receive"
    assert "package:payables" in sod.text
    assert denied.stages == []  # refused before any approver was asked

    # E8 has receivables pending, then asks for payables: pending counts too.
    pending = await org.request("receivables", "E8")
    await until_waiting(pending, 0)
    second = await org.request("payables", "E8")
    denied_too = await until_status(second, RequestStatus.DENIED)
    assert kinds(denied_too, "sod")[0].data["rule"] == "pay-vs-receive"
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
    assert on_time(kinds(expired, "removed")[0].at, granted.expires_at)
    # Default reminders: 14 days and 1 day before the end.
    reminders = [e.at for e in kinds(expired, "expiry_reminder")]
    assert len(reminders) == 2
    assert on_time(reminders[0], granted.expires_at - timedelta(days=14))
    assert on_time(reminders[1], granted.expires_at - DAY)
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
    assert any("left" in e.text for e in kinds(revoked, "removed"))
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
    assert kinds(cancelled, "cancelled")[0].actor == "E15"
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
    assert kinds(revoked, "revoked")[0].actor == "ADMIN"
    assert "revoked by ADMIN" in kinds(revoked, "removed")[0].text


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
        handle, lambda v: bool(kinds(v, "extension_decided")), "extension decided"
    )
    assert "denied" in kinds(denied, "extension_decided")[0].text
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
