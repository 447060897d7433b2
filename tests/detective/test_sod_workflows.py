"""Detective separation of duties on the time-skipping server: a move brings birthright that
conflicts with a package (or a PIM role) the person kept, a check finds it, and the rule's
remediation runs: notify the owners, remove the newest grant, or an exception the owners approve,
checked again when it ends. A scan checks everyone, a page at a time, once per occurrence.

The organisation is hired once for the module (identity ids are global in the time-skipping
namespace; these use S-prefixed ids no other test uses). Each test has its own people. Time
passes only when a test sleeps the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.access.request import AccessRequestContract, Actor, RequestStatus, RevokeInput
from domain.approval.contract import Decision, DecisionRefusal
from domain.detective.sod_violations import ViolationStatus
from domain.holdings import GrantKind
from tests.support.access import MINUTE, kinds, until_request, until_status
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import until
from tests.support.sod import SodHarness, sod_test_policy, sod_worker, until_violation

STAFF = ["SADMIN", "SOWNER"]
PEOPLE = [f"S{i}" for i in range(1, 9)]
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
async def org(
    time_skipping_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SodHarness]:
    store = Path(tmp_path_factory.mktemp("sod")) / "record.db"
    async with sod_worker(time_skipping_env, sod_test_policy(), FakeDirectory(), store) as h:
        await h.hire("SBOSS")
        for person in [*STAFF, *PEOPLE]:
            await h.hire(person, manager_id="SBOSS")
        yield h


async def granted(org: SodHarness, package_id: str, who: str) -> str:
    handle = await org.request(package_id, who)
    view = await until_status(handle, RequestStatus.GRANTED)
    await until(
        org.identities[who],
        lambda s: any(
            p.request_id == view.request_id and p.status == "granted" for p in s.packages
        ),
        f"{who} holds {package_id}",
    )
    return view.request_id


async def moved(org: SodHarness, who: str, department: str, group: str) -> None:
    await org.move(who, department)
    await until(
        org.identities[who],
        lambda s: any(a.target == group for a in s.access),
        f"{who} in {department} with {group}",
    )


async def test_a_move_against_a_package_is_notified_to_the_administrators(
    org: SodHarness,
) -> None:
    await granted(org, "reports", "S1")
    assert (await org.check("S1")).found == []  # nothing to keep apart yet
    await moved(org, "S1", "Sales", "Sales Desk")

    # The move checks the person at once: its remediation starts with no scan and no call.
    handle = org.remediation("sales-reports", "S1")
    notified = await until_violation(
        handle, lambda v: v.status is ViolationStatus.NOTIFIED, "notified"
    )
    await handle.result()
    assert [s["key"] for s in notified.sides] == ["group:Sales Desk", "package:reports"]
    # The rule names no owners: the access administrators are told.
    assert notified.detail["owners"] == ["SADMIN"]
    assert any("sales-reports" in m.input.subject for m in org.directory.mails_to("SADMIN"))
    recorded = org.store.get_sod_violation("sales-reports:S1")
    assert recorded is not None and recorded.status is ViolationStatus.NOTIFIED
    assert [line["kind"] for line in recorded.detail["story"]] == ["found", "notified"]

    # Checked again, the same violation is not notified twice.
    again = await org.check("S1")
    assert again.found == ["sales-reports:S1"] and again.started == [] and again.resolved == []


async def test_remove_newest_revokes_the_package(org: SodHarness) -> None:
    request_id = await granted(org, "receivables", "S2")
    await moved(org, "S2", "Audit", "Audit Desk")

    handle = org.remediation("audit-receive", "S2")
    removed = await until_violation(
        handle, lambda v: v.status is ViolationStatus.REMOVED, "removed"
    )
    await handle.result()
    # Birthright cannot be removed: the package is what goes.
    assert removed.detail["removed"]["id"] == request_id
    assert removed.detail["removed"]["kind"] == GrantKind.PACKAGE.value

    request = org.env.client.get_workflow_handle(request_id)
    revoked = await until_status(request, RequestStatus.REVOKED)
    (line,) = kinds(revoked, "revoked")
    assert line.actor == "system" and "audit-receive" in line.text
    state = await until(
        org.identities["S2"],
        lambda s: not any(p.request_id == request_id for p in s.packages),
        "the package gone from S2",
    )
    assert not any(h.resource.key == "group:Receivables" for h in state.holdings)
    # The person and the owner are told what went and why.
    assert any("removed" in m.input.subject for m in org.directory.mails_to("S2"))
    assert any("removed" in m.input.subject for m in org.directory.mails_to("SOWNER"))

    # No longer held: a new check finds nothing, and the record keeps `removed`.
    assert (await org.check("S2")).found == []
    recorded = org.store.get_sod_violation("audit-receive:S2")
    assert recorded is not None and recorded.status is ViolationStatus.REMOVED


async def test_remove_newest_ends_a_pim_activation(org: SodHarness) -> None:
    eligibility = await org.make_eligible("S3", "helpdesk-admin", by="SADMIN")
    await until_status(eligibility, RequestStatus.GRANTED)
    activation = await org.activate("S3", "helpdesk-admin", ticket=None)
    active = await until_status(activation, RequestStatus.GRANTED)
    await until(
        org.identities["S3"],
        lambda s: any(
            p.request_id == active.request_id and p.status == "granted" for p in s.packages
        ),
        "S3 holds the role",
    )
    await moved(org, "S3", "Support", "Support Desk")

    handle = org.remediation("support-admin", "S3")
    removed = await until_violation(
        handle, lambda v: v.status is ViolationStatus.REMOVED, "removed"
    )
    assert removed.detail["removed"]["id"] == active.request_id
    assert removed.detail["removed"]["kind"] == GrantKind.PIM.value
    ended = await until_request(activation, lambda v: v.status.final, "the activation ends")
    assert any("support-admin" in e.text for e in kinds(ended, "deactivate_requested"))
    assert ("deactivate", "directory role 729827e3-9c14-49f7-bb1b-9608f156bbb8") in [
        (what, role) for what, role, _ in org.pim.log
    ]


async def test_a_scan_checks_everyone_once_per_occurrence(org: SodHarness) -> None:
    request_id = await granted(org, "reports", "S4")
    assert org.sod is not None
    org.sod.move_checks = False  # the scan alone finds it
    try:
        await moved(org, "S4", "Sales", "Sales Desk")
    finally:
        org.sod.move_checks = True
    await granted(org, "reports", "S5")  # in Finance: nothing to keep apart

    tally = await org.scan(["S4", "S5"], ["S6", "NOBODY-S"])
    assert (tally.pages, tally.people, tally.unknown) == (2, 4, 1)
    assert (tally.violations, tally.started, tally.resolved) == (1, 1, 0)
    handle = org.remediation("sales-reports", "S4")
    await until_violation(handle, lambda v: v.status is ViolationStatus.NOTIFIED, "notified")
    await handle.result()

    # The next scan finds it again: the owners know already.
    tally = await org.scan(["S4", "S5"])
    assert (tally.violations, tally.started, tally.resolved) == (1, 0, 0)

    # Once the package is gone, a scan marks it resolved.
    await org.update(
        org.env.client.get_workflow_handle(request_id),
        AccessRequestContract.UPDATE_REVOKE,
        RevokeInput(actor=Actor(employee_id="SADMIN"), reason="moved to sales"),
    )
    await until(
        org.identities["S4"],
        lambda s: not any(p.request_id == request_id for p in s.packages),
        "the package gone from S4",
    )
    tally = await org.scan(["S4"])
    assert (tally.violations, tally.started, tally.resolved) == (0, 0, 1)
    recorded = org.store.get_sod_violation("sales-reports:S4")
    assert recorded is not None and recorded.status is ViolationStatus.RESOLVED
    assert [line["kind"] for line in recorded.detail["story"]] == ["found", "notified", "resolved"]


async def test_an_approved_exception_holds_until_its_end_then_is_checked_again(
    org: SodHarness,
) -> None:
    await granted(org, "payables", "S7")
    await moved(org, "S7", "Treasury", "Treasury Ops")

    handle = org.remediation("treasury-pay", "S7")
    pending = await until_violation(
        handle,
        lambda v: v.status is ViolationStatus.EXCEPTION_PENDING and v.detail.get("waiting_on"),
        "the owners asked",
    )
    assert pending.detail["waiting_on"]["approvers"] == ["SOWNER"]
    assert any("SoD exception" in m.input.subject for m in org.directory.mails_to("SOWNER"))

    # The person breaking the rule may not approve their own exception.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await org.decide(handle, "S7")
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == DecisionRefusal.NOT_ALLOWED
    assert "a rule you break" in refused.value.cause.message
    answer = await org.decide(handle, "SOWNER")
    assert "approve recorded" in answer.message
    excepted = await until_violation(
        handle, lambda v: v.status is ViolationStatus.EXCEPTED, "excepted"
    )
    line = next(x for x in excepted.detail["story"] if x["kind"] == "excepted")
    approved_at = datetime.fromisoformat(line["at"])
    assert excepted.exception_until is not None
    assert excepted.exception_until - approved_at == timedelta(days=10)
    recorded = org.store.get_sod_violation("treasury-pay:S7")
    assert recorded is not None and recorded.status is ViolationStatus.EXCEPTED
    assert recorded.exception_until == excepted.exception_until
    # Still held while excepted: checks leave it to its run.
    again = await org.check("S7")
    assert again.found == ["treasury-pay:S7"] and again.started == []

    # The exception ends: the person still holds both, so another round asks again.
    await org.env.sleep(timedelta(days=10) + MINUTE)
    round_two = await until_violation(
        handle,
        lambda v: v.detail.get("round") == 2 and v.status is ViolationStatus.EXCEPTION_PENDING,
        "a second round",
    )
    assert round_two.exception_until is None
    assert round_two.detected_at == excepted.detected_at
    story = [line["kind"] for line in round_two.detail["story"]]
    assert story[:1] == ["found"] and "excepted" in story and "checked" in story
    checked = next(line for line in round_two.detail["story"] if line["kind"] == "checked")
    assert "still holds" in checked["text"]
    recorded = org.store.get_sod_violation("treasury-pay:S7")
    assert recorded is not None and recorded.status is ViolationStatus.EXCEPTION_PENDING
    assert recorded.detail["round"] == 2

    # Denied this time: the newest grant (the package) goes.
    await org.decide(handle, "SOWNER", Decision.DENY)
    removed = await until_violation(
        handle, lambda v: v.status is ViolationStatus.REMOVED, "removed"
    )
    assert removed.detail["removed"]["label"] == "payables"
    await until(
        org.identities["S7"],
        lambda s: not any(p.package_id == "payables" and p.status == "granted" for p in s.packages),
        "the package no longer held by S7",
    )
