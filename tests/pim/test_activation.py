"""Role activations on the time-skipping server: each refusal with its reason, approval and its
window, a scheduled start, the end exactly on time, early deactivation, extension within the
maximum, eligibility expiry, and a leaver losing an active role.

The organisation is hired once (`org`, tests/pim/conftest.py); each test has its own people.
Time passes only when a test sleeps the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.access.request import Actor, Refusal, RequestStatus
from domain.approval.contract import Decision
from domain.holdings import GrantKind
from domain.pim.activation import (
    DeactivateInput,
    EligibilityContract,
    ExtendActivationInput,
    PimContract,
)
from domain.pim.graph import RoleTarget
from domain.pim.plan import resolved_role
from tests.support.access import (
    MINUTE,
    kinds,
    on_time,
    until_request,
    until_status,
    until_stored,
    view,
)
from tests.support.lifecycle import details, until
from tests.support.pim import PimHarness, pim_test_policy

HOUR = timedelta(hours=1)


def target(role_id: str) -> RoleTarget:
    return resolved_role(pim_test_policy(), role_id).target


async def eligible(org: PimHarness, who: str, role_id: str, **kw: object) -> None:
    handle = await org.make_eligible(who, role_id, **kw)  # type: ignore[arg-type]
    await until_status(handle, RequestStatus.GRANTED)


@pytest.mark.parametrize(
    ("who", "ask", "code", "words"),
    [
        ("P1", {"mfa": False}, "mfa_required", "multi-factor"),
        ("P1", {"justification": "  "}, "justification_required", "needs a justification"),
        ("P1", {"ticket": "CHG-1"}, "ticket_format", "does not match"),
        ("P1", {"duration": timedelta(hours=9)}, "too_long", "longer than"),
        ("P2", {}, "not_eligible", "not eligible"),
    ],
)
async def test_activation_refused_with_its_reason(
    org: PimHarness, who: str, ask: dict, code: str, words: str
) -> None:
    if who == "P1" and not org.pim.eligibility_of(org.principal("P1"), target("user-admin")):
        await eligible(org, "P1", "user-admin")
    handle = await org.activate(who, "user-admin", **ask)
    denied = await until_status(handle, RequestStatus.DENIED)
    line = kinds(denied, "eligibility")[-1]
    assert line.data["code"] == code
    assert words in line.text
    assert words in kinds(denied, "denied")[0].text
    assert not org.pim.active(org.principal(who), target("user-admin"), denied.updated_at)
    # The person is told why, and the record keeps it.
    assert any(code in str(m.input) or words in str(m.input) for m in org.directory.mails_to(who))
    await until_stored(org, handle.id, RequestStatus.DENIED)


async def test_approved_activation_is_active_then_removed_exactly_at_the_end(
    org: PimHarness,
) -> None:
    await eligible(org, "P3", "global-admin")
    handle = await org.activate("P3", "global-admin", ticket=None)
    waiting = await until_request(
        handle, lambda v: v.waiting_on is not None, "waiting for approval"
    )
    assert waiting.status is RequestStatus.PENDING_APPROVAL
    assert waiting.waiting_on is not None and waiting.waiting_on.approvers == ["PAPPROVER"]
    # The person activating may not approve their own activation.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await org.decide(handle, "P3")
    assert isinstance(refused.value.cause, ApplicationError)
    assert "own" in refused.value.cause.message

    await org.decide(handle, "PAPPROVER", Decision.APPROVE)
    active = await until_status(handle, RequestStatus.GRANTED)
    assert active.granted_at is not None and active.expires_at is not None
    assert active.expires_at == active.granted_at + timedelta(hours=2)  # the role's default
    assert org.pim.active(org.principal("P3"), target("global-admin"), active.granted_at)
    state = await until(
        org.identities["P3"],
        lambda s: any(g.kind is GrantKind.PIM for h in s.holdings for g in h.grants),
        "the ledger holds the role",
    )
    assert [h.resource.key for h in state.holdings if h.grants[0].kind is GrantKind.PIM] == [
        "directory_role:62e90394-69f5-4237-9190-012177145e10"
    ]

    await org.env.sleep(2 * HOUR - MINUTE)
    assert (await view(handle)).status is RequestStatus.GRANTED
    await org.env.sleep(2 * MINUTE)
    ended = await until_status(handle, RequestStatus.EXPIRED)
    removed = kinds(ended, "removed")[0]
    assert on_time(removed.at, active.expires_at)
    assert kinds(ended, "verified"), "the end checks Graph no longer shows the role"
    assert not org.pim.active(org.principal("P3"), target("global-admin"), removed.at)
    await until(
        org.identities["P3"],
        lambda s: not any(p.grant_kind is GrantKind.PIM for p in s.packages),
        "the ledger no longer holds the role",
    )
    # The security contact named by user-admin is not told of global-admin; the approver was asked.
    assert org.directory.mails_to("PAPPROVER")


async def test_approval_window_passing_denies_it(org: PimHarness) -> None:
    await eligible(org, "P4", "global-admin")
    handle = await org.activate("P4", "global-admin", ticket=None)
    waiting = await until_request(handle, lambda v: v.waiting_on is not None, "waiting")
    # The stage's own deadline is a day; the role's approval window (6 h) comes first.
    await org.env.sleep(6 * HOUR + MINUTE)
    denied = await until_status(handle, RequestStatus.DENIED)
    assert "approval window" in kinds(denied, "denied")[0].text
    assert on_time(kinds(denied, "denied")[0].at, waiting.submitted_at + 6 * HOUR)
    assert not org.pim.active(org.principal("P4"), target("global-admin"), denied.updated_at)


async def test_scheduled_start(org: PimHarness) -> None:
    await eligible(org, "P5", "user-admin")
    start = await org.env.get_current_time() + 3 * HOUR
    handle = await org.activate("P5", "user-admin", start=start, duration=2 * HOUR)
    scheduled = await until_status(handle, RequestStatus.SCHEDULED)
    assert kinds(scheduled, "scheduled")
    assert not org.pim.active(org.principal("P5"), target("user-admin"), start - MINUTE)
    await org.env.sleep(3 * HOUR + MINUTE)
    active = await until_status(handle, RequestStatus.GRANTED)
    assert active.granted_at is not None and on_time(active.granted_at, start)
    assert active.expires_at == active.granted_at + 2 * HOUR
    assert org.pim.active(org.principal("P5"), target("user-admin"), active.granted_at)


async def test_early_deactivation_by_the_person(org: PimHarness) -> None:
    await eligible(org, "P6", "user-admin")
    handle = await org.activate("P6", "user-admin", duration=4 * HOUR)
    await until_status(handle, RequestStatus.GRANTED)
    await org.env.sleep(30 * MINUTE)
    # Somebody else may not end it.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await org.update(
            handle,
            PimContract.UPDATE_DEACTIVATE,
            DeactivateInput(actor=Actor(employee_id="P7")),
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == Refusal.NOT_ALLOWED
    await org.update(
        handle,
        PimContract.UPDATE_DEACTIVATE,
        DeactivateInput(actor=Actor(employee_id="P6"), reason="done"),
    )
    ended = await until_status(handle, RequestStatus.REVOKED)
    assert "deactivated by P6" in kinds(ended, "removed")[0].text
    assert not org.pim.active(org.principal("P6"), target("user-admin"), ended.updated_at)


async def test_extension_within_the_maximum(org: PimHarness) -> None:
    await eligible(org, "P7", "user-admin")
    handle = await org.activate("P7", "user-admin", duration=HOUR)
    active = await until_status(handle, RequestStatus.GRANTED)
    assert active.granted_at is not None
    too_long = ExtendActivationInput(actor=Actor(employee_id="P7"), duration=9 * HOUR)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await org.update(handle, PimContract.UPDATE_EXTEND, too_long)
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == Refusal.INVALID
    assert "at most 8 h" in refused.value.cause.message or "8h" in refused.value.cause.message

    await org.update(
        handle,
        PimContract.UPDATE_EXTEND,
        ExtendActivationInput(actor=Actor(employee_id="P7"), duration=6 * HOUR),
    )
    extended = await until_request(handle, lambda v: bool(kinds(v, "extended")), "extended")
    assert extended.expires_at == active.granted_at + 6 * HOUR
    assert org.pim.assignments[(org.principal("P7"), target("user-admin").describe())] == (
        active.granted_at + 6 * HOUR
    )
    await org.env.sleep(6 * HOUR + MINUTE)
    ended = await until_status(handle, RequestStatus.EXPIRED)
    assert on_time(kinds(ended, "removed")[0].at, active.granted_at + 6 * HOUR)


async def test_eligibility_expires_and_activation_is_then_refused(org: PimHarness) -> None:
    until_at = await org.env.get_current_time() + timedelta(days=2)
    handle = await org.make_eligible("P8", "user-admin", until=until_at)
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert granted.expires_at == until_at
    await org.env.sleep(timedelta(days=2) + MINUTE)
    expired = await until_status(handle, RequestStatus.EXPIRED)
    assert on_time(kinds(expired, "removed")[0].at, until_at)
    assert org.pim.eligibility_of(org.principal("P8"), target("user-admin")) is None
    # A day before the end the person was reminded (a short eligibility: a day ahead).
    assert on_time(kinds(expired, "expiry_reminder")[0].at, until_at - timedelta(days=1))
    late = await org.activate("P8", "user-admin")
    denied = await until_status(late, RequestStatus.DENIED)
    assert kinds(denied, "eligibility")[-1].data["code"] == "not_eligible"


async def test_eligibility_longer_than_the_role_allows_is_refused(org: PimHarness) -> None:
    too_late = await org.env.get_current_time() + timedelta(days=31)
    handle = await org.make_eligible("P11", "user-admin", until=too_late)
    denied = await until_status(handle, RequestStatus.DENIED)
    assert "at most" in kinds(denied, "denied")[0].text
    assert org.pim.eligibility_of(org.principal("P11"), target("user-admin")) is None


async def test_a_leaver_loses_an_active_role_and_the_eligibility(org: PimHarness) -> None:
    await eligible(org, "P9", "user-admin")
    handle = await org.activate("P9", "user-admin", duration=8 * HOUR)
    await until_status(handle, RequestStatus.GRANTED)
    await org.terminate("P9")
    ended = await until_status(handle, RequestStatus.REVOKED)
    assert "the person left" in kinds(ended, "removed")[0].text
    assert not org.pim.active(org.principal("P9"), target("user-admin"), ended.updated_at)
    eligibility = org.env.client.get_workflow_handle(
        f"{EligibilityContract.ID_PREFIX}P9-user-admin"
    )
    gone = await until_status(eligibility, RequestStatus.REVOKED)
    assert "the person left" in kinds(gone, "removed")[0].text
    state = await details(org.identities["P9"])
    assert not any(
        p.grant_kind in (GrantKind.PIM, GrantKind.PIM_ELIGIBILITY) for p in state.packages
    )


async def test_sod_refuses_a_role_conflicting_with_a_held_package(org: PimHarness) -> None:
    await eligible(org, "P10", "user-admin")
    payables = await org.request("payables", "P10")
    await until_status(payables, RequestStatus.GRANTED)
    handle = await org.activate("P10", "user-admin")
    denied = await until_status(handle, RequestStatus.DENIED)
    sod = kinds(denied, "sod")[0]
    assert sod.data["rule"] == "pay-and-admin"
    assert not org.pim.active(org.principal("P10"), target("user-admin"), denied.updated_at)
