"""A security incident on the time-skipping server: a person holding an activation, a package
and birthright is suspended at once (sign-in off, sessions revoked, the activation ended, the
package and the eligibility set aside, birthright still recorded); a replay changes nothing;
an administrator's restore gives back what is still valid; a stranger may not restore; a move or
a rehire while suspended leaves sign-in off until the restore, and a restore during such a move
still ends with sign-in on; and the cut-off does not wait for the person's identity when its
queue is busy."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.access.request import RequestStatus
from domain.holdings import GrantKind
from domain.lifecycle.events import EventType, HrEvent
from domain.lifecycle.identity import LifecycleStage
from domain.pim.graph import RoleTarget
from domain.pim.plan import resolved_role
from domain.provisioning import ActivityNames
from domain.security.incident import (
    IncidentAck,
    IncidentContract,
    IncidentStatus,
    IncidentView,
    RestoreAsk,
    incident_workflow_id,
)
from tests.support.access import kinds, until_status
from tests.support.fake_directory import FakeDirectory
from tests.support.identity_signal import signal_hr_event
from tests.support.lifecycle import until
from tests.support.pim import PimHarness, pim_test_policy, pim_worker

ROLE: RoleTarget = resolved_role(pim_test_policy(), "user-admin").target


async def report(org: PimHarness, incident_id: str, user: str) -> IncidentAck:
    return (await org.report_incident(incident_id, user))[1]


async def incident(org: PimHarness, incident_id: str) -> IncidentView:
    handle = org.env.client.get_workflow_handle(incident_workflow_id(incident_id))
    return await handle.query(IncidentContract.QUERY_DETAILS, result_type=IncidentView)


async def until_incident(org: PimHarness, incident_id: str, status: IncidentStatus) -> IncidentView:
    for _ in range(300):
        view = await incident(org, incident_id)
        if view.status is status:
            return view
        await org.env.sleep(timedelta(seconds=1))
    raise AssertionError(f"incident {incident_id} never {status.value}: {view}")


async def until_recorded(org: PimHarness, incident_id: str, status: IncidentStatus) -> None:
    """The record is written after the run's own view changes: poll it (without skipping time)."""
    for _ in range(200):
        recorded = org.store.get_incident(incident_id)
        if recorded is not None and recorded.status is status:
            return
        await asyncio.sleep(0.03)
    raise AssertionError(f"the record never had incident {incident_id} {status.value}")


async def test_incident_suspends_then_restore_gives_back_what_is_valid(org: PimHarness) -> None:
    eligibility = await org.make_eligible("P12", "user-admin")
    await until_status(eligibility, RequestStatus.GRANTED)
    activation = await org.activate("P12", "user-admin", duration=timedelta(hours=4))
    await until_status(activation, RequestStatus.GRANTED)
    package = await org.request("payables", "P13")  # P12 may not: SoD with user-admin
    await until_status(package, RequestStatus.GRANTED)
    principal = org.principal("P12")

    upn = org.directory.users["P12"]["upn"]
    ack = await report(org, "INC-P12", upn)  # named by UPN
    assert ack.employee_id == "P12" and not ack.replay
    await until(org.identities["P12"], lambda s: s.stage is LifecycleStage.SUSPENDED, "held")
    ended = await until_status(activation, RequestStatus.REVOKED)
    assert "incident INC-P12" in kinds(ended, "removed")[0].text
    assert not org.pim.active(principal, ROLE, ended.updated_at)
    view = await until_incident(org, "INC-P12", IncidentStatus.SUSPENDED)
    steps = {s.kind for s in view.steps}
    assert {"disabled_sign_in", "revoked_sessions", "ended_activation"} <= steps
    assert "suspended_eligibility" in steps
    assert org.directory.users["P12"]["enabled"] is False
    revoked = org.directory.calls_named(ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS)
    assert any(c.input.user_id == principal for c in revoked)
    await until_recorded(org, "INC-P12", IncidentStatus.SUSPENDED)
    # The eligibility is out of Graph but kept; the manager and the security contact are told.
    await until_status(eligibility, RequestStatus.GRANTED)
    assert org.pim.eligibility_of(principal, ROLE) is None
    assert any("INC-P12" in str(m.input) for m in org.directory.mails_to("PSEC"))

    # A replay changes nothing; a suspended person cannot activate.
    again = await report(org, "INC-P12", "P12")
    assert again.replay and again.status is IncidentStatus.SUSPENDED
    late = await org.activate("P12", "user-admin")
    denied = await until_status(late, RequestStatus.DENIED)
    assert "not an active person" in kinds(denied, "denied")[0].text

    # Only an administrator restores.
    handle = org.env.client.get_workflow_handle(incident_workflow_id("INC-P12"))
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            IncidentContract.UPDATE_RESTORE, RestoreAsk(actor_id="P13"), result_type=IncidentView
        )
    await handle.execute_update(
        IncidentContract.UPDATE_RESTORE,
        RestoreAsk(actor_id="PADMIN", reason="false positive"),
        result_type=IncidentView,
    )
    restored = await until_incident(org, "INC-P12", IncidentStatus.RESTORED)
    assert restored.restored_by == "PADMIN"
    state = await until(org.identities["P12"], lambda s: s.stage is LifecycleStage.ACTIVE, "back")
    assert org.directory.users["P12"]["enabled"] is True
    assert [a.rule for a in state.access] == ["everyone"]  # birthright was never removed
    # The eligibility is back in Graph; the ended activation stays ended.
    await until(
        org.identities["P12"],
        lambda s: org.pim.eligibility_of(principal, ROLE) is not None,
        "eligibility back in Graph",
    )
    assert not org.pim.active(principal, ROLE, restored.updated_at)


async def test_package_grants_are_set_aside_and_come_back(org: PimHarness) -> None:
    package = await org.request("payables", "P14")
    await until_status(package, RequestStatus.GRANTED)
    await report(org, "INC-P14", "P14")  # named by employee id
    held = await until(
        org.identities["P14"], lambda s: s.stage is LifecycleStage.SUSPENDED, "suspended"
    )
    # The ledger no longer counts the package; nothing is deleted and birthright stays.
    assert not any(g.kind is GrantKind.PACKAGE for h in held.holdings for g in h.grants)
    assert [p.status for p in held.packages] == ["suspended"]
    assert [a.rule for a in held.access] == ["everyone"]
    handle = org.env.client.get_workflow_handle(incident_workflow_id("INC-P14"))
    await until_incident(org, "INC-P14", IncidentStatus.SUSPENDED)
    await handle.execute_update(
        IncidentContract.UPDATE_RESTORE,
        RestoreAsk(actor_id="x", is_admin=True),
        result_type=IncidentView,
    )
    back = await until(
        org.identities["P14"],
        lambda s: any(g.kind is GrantKind.PACKAGE for h in s.holdings for g in h.grants),
        "package counted again",
    )
    assert back.stage is LifecycleStage.ACTIVE


async def test_an_unknown_user_is_rejected_and_nothing_happens(org: PimHarness) -> None:
    ack = await report(org, "INC-NOBODY", "nobody@contoso.example.com")
    assert ack.status is IncidentStatus.REJECTED and ack.employee_id is None
    assert "no Graph user" in ack.message


async def rehire(org: PimHarness, employee_id: str, start_at: datetime) -> None:
    state = await until(
        org.identities[employee_id], lambda s: s.stage is LifecycleStage.DISABLED, "left"
    )
    assert state.worker is not None
    event = HrEvent(
        event_id=f"{employee_id}-rehire",
        type=EventType.HIRE,
        effective_at=start_at,
        worker=state.worker,
    )
    await signal_hr_event(org.env.client, org.queue, event)


async def restore(org: PimHarness, incident_id: str) -> None:
    handle = org.env.client.get_workflow_handle(incident_workflow_id(incident_id))
    await handle.execute_update(
        IncidentContract.UPDATE_RESTORE,
        RestoreAsk(actor_id="PADMIN", reason="cleared"),
        result_type=IncidentView,
    )
    await until_incident(org, incident_id, IncidentStatus.RESTORED)


async def test_a_move_and_a_rehire_while_suspended_leave_sign_in_off(org: PimHarness) -> None:
    await org.hire("P41", manager_id="PBOSS")
    await report(org, "INC-P41", "P41")
    suspended = lambda s: s.stage is LifecycleStage.SUSPENDED  # noqa: E731
    await until(org.identities["P41"], suspended, "suspended")

    # HR events still apply, but neither the move nor the rehire turns sign-in back on.
    await org.move("P41", "Sales")
    moved = await until(
        org.identities["P41"],
        lambda s: s.worker is not None and s.worker.department == "Sales",
        "moved",
    )
    assert moved.stage is LifecycleStage.SUSPENDED
    assert "sign-in stays off: incident INC-P41" in moved.history[-1].reason
    assert org.directory.users["P41"]["enabled"] is False
    await org.terminate("P41")
    await rehire(org, "P41", await org.env.get_current_time())
    back = await until(org.identities["P41"], suspended, "rehired, still suspended")
    assert back.history[-1].event_id == "P41-rehire"
    assert "sign-in stays off: incident INC-P41" in back.history[-1].reason
    assert org.directory.users["P41"]["enabled"] is False

    # The restore turns it on.
    await restore(org, "INC-P41")
    await until(org.identities["P41"], lambda s: s.stage is LifecycleStage.ACTIVE, "restored")
    assert org.directory.users["P41"]["enabled"] is True


async def test_a_suspension_during_a_rehires_wait_keeps_sign_in_off_at_the_start(
    org: PimHarness,
) -> None:
    # The rehire's joiner started before the incident, so it was not told: on its start date it
    # turns sign-in on, and the identity turns it off again when the joiner ends.
    await org.hire("P42", manager_id="PBOSS")
    await org.terminate("P42")
    start = await org.env.get_current_time() + timedelta(hours=1)
    await rehire(org, "P42", start)
    await until(
        org.identities["P42"],
        lambda s: s.stage is LifecycleStage.PRE_HIRE and s.running_transition is not None,
        "waiting for the start date",
        idle=False,
    )
    await report(org, "INC-P42", "P42")
    await until_incident(org, "INC-P42", IncidentStatus.SUSPENDED)
    principal = org.principal("P42")
    enabled = org.directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
    turned_on = sum(1 for c in enabled if c.input.user_id == principal and c.input.enabled)

    await org.env.sleep(timedelta(hours=1, minutes=5))
    state = await until(
        org.identities["P42"], lambda s: s.stage is LifecycleStage.SUSPENDED, "started, suspended"
    )
    enabled = org.directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
    assert sum(1 for c in enabled if c.input.user_id == principal and c.input.enabled) > turned_on
    assert org.directory.users["P42"]["enabled"] is False
    assert "sign-in stays off: incident INC-P42" in state.history[-1].reason
    await restore(org, "INC-P42")
    assert org.directory.users["P42"]["enabled"] is True


async def test_a_restore_during_a_held_move_leaves_sign_in_on(org: PimHarness) -> None:
    # The move was told to leave sign-in off; the restore lands while its Graph update is slow,
    # so the update turns sign-in off after the restore turned it on: the identity turns it on
    # again when the move ends.
    await org.hire("P43", manager_id="PBOSS")
    await report(org, "INC-P43", "P43")
    await until(org.identities["P43"], lambda s: s.stage is LifecycleStage.SUSPENDED, "held")
    answered = org.directory.slow_users["P43"] = asyncio.Event()
    try:
        await org.move("P43", "Sales")
        for _ in range(200):
            updates = org.directory.calls_named(ActivityNames.GRAPH_ENSURE_USER)
            if any(c.input.worker.department == "Sales" for c in updates):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the move never reached Graph")
        await restore(org, "INC-P43")
        assert org.directory.users["P43"]["enabled"] is True
    finally:
        answered.set()
    moved = await until(
        org.identities["P43"],
        lambda s: s.worker is not None and s.worker.department == "Sales",
        "moved",
    )
    assert moved.stage is LifecycleStage.ACTIVE
    assert org.directory.users["P43"]["enabled"] is True


async def test_the_cut_off_does_not_wait_for_a_busy_identity_queue(tmp_path: Path) -> None:
    # On a time-skipping server of its own: the identity's suspension is left waiting for good,
    # which on the shared server stalled time skipping for every test after this one.
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    try:
        async with pim_worker(env, pim_test_policy(), FakeDirectory(), tmp_path / "r.db") as org:
            await _cut_off_while_the_identity_waits(org)
    finally:
        await env.shutdown()


async def _cut_off_while_the_identity_waits(org: PimHarness) -> None:
    # P40's identity runs on a queue of its own, then nobody polls it: as when a burst of hires
    # keeps the identity workers busy. (The suspension completing is the first test's.)
    await org.hire("PBOSS")
    assert org.worker_on is not None
    elsewhere = dataclasses.replace(org, queue=f"pim-busy-{uuid.uuid4()}")
    async with org.worker_on(elsewhere.queue):
        await elsewhere.hire("P40", manager_id="PBOSS")
    principal = org.principal("P40")
    ack = await report(org, "INC-P40", "P40")
    # Answered, and cut off from Graph, while the identity has not taken the suspension.
    assert ack.employee_id == "P40" and ack.status is IncidentStatus.SUSPENDING
    assert org.directory.users["P40"]["enabled"] is False
    revoked = org.directory.calls_named(ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS)
    assert any(c.input.user_id == principal for c in revoked)
    waiting = await incident(org, "INC-P40")
    assert waiting.status is IncidentStatus.SUSPENDING
    assert [s.kind for s in waiting.steps] == ["resolved", "disabled_sign_in", "revoked_sessions"]
