"""Leavers, retention, rehire and ordering by effective time, on the time-skipping server.

Time passes only when a test sleeps the environment (queries do not skip time), so each test can
look at the identity before and after a date.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle.events import EventType, HrEvent, WorkerRecord
from domain.lifecycle.identity import EventOutcome, IdentityState, LifecycleStage
from domain.lifecycle.joiner import joiner_workflow_id
from domain.policy.model import Policy
from domain.provisioning import ActivityNames
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import (
    Send,
    details,
    identity_worker,
    until,
)

MINUTE = timedelta(minutes=1)
FINANCE_GROUPS = {"All Staff", "All Employees", "Finance"}
FINANCE_APPS = {"collab", "ledger"}


def _hire(employee_id: str, event_id: str, start: datetime, department: str = "Finance") -> HrEvent:
    return HrEvent(
        event_id=event_id,
        type=EventType.HIRE,
        effective_at=start,
        worker=WorkerRecord(
            employee_id=employee_id,
            given_name="Grace",
            family_name="Hopper",
            department=department,
            manager_id="E0001",
        ),
    )


def _terminate(employee_id: str, event_id: str, leave: datetime) -> HrEvent:
    return HrEvent(
        event_id=event_id,
        type=EventType.TERMINATE,
        effective_at=leave,
        worker=WorkerRecord(employee_id=employee_id),
    )


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
async def send(
    time_skipping_env: WorkflowEnvironment, demo_policy: Policy, directory: FakeDirectory
) -> AsyncIterator[Send]:
    async with identity_worker(time_skipping_env, demo_policy, directory, "leaver-test") as signal:
        yield signal


def _outcome(state: IdentityState, event_id: str) -> tuple[EventOutcome, str] | None:
    found = [h for h in state.history if h.event_id == event_id and h.type != "retention"]
    return (found[-1].outcome, found[-1].reason) if found else None


async def _active(env: WorkflowEnvironment, send: Send, employee_id: str) -> WorkflowHandle:
    now = await env.get_current_time()
    handle = await send(_hire(employee_id, f"{employee_id}-hire", now - timedelta(days=30)))
    await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, "active")
    return handle


async def test_future_leave_acts_on_its_date_and_deletes_after_retention(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    handle = await _active(env, send, "L100")
    assert {g for g, e in directory.memberships if e == "L100"} == FINANCE_GROUPS
    now = await env.get_current_time()
    leave = now + timedelta(days=10)
    await send(_terminate("L100", "L100-leave", leave))

    # Before the leave date nothing happens, and the leave is on the schedule.
    await env.sleep(timedelta(days=9))
    state = await details(handle)
    assert state.stage is LifecycleStage.ACTIVE
    assert [(c.at, c.what) for c in state.scheduled] == [(leave, "terminate L100-leave")]
    assert directory.users["L100"]["enabled"] is True
    assert directory.calls_named(ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS) == []

    await env.sleep(timedelta(days=2))
    state = await until(handle, lambda s: s.stage is LifecycleStage.DISABLED, "disabled")
    [disable] = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
        if not c.input.enabled
    ]
    assert leave <= disable.at < leave + MINUTE
    [revoke] = directory.calls_named(ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS)
    assert leave <= revoke.at < leave + MINUTE
    [removal] = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS)
        if not c.input.present
    ]
    assert set(removal.input.groups) == FINANCE_GROUPS and leave <= removal.at < leave + MINUTE
    deactivations = [
        c for c in directory.calls_named(ActivityNames.SCIM_SET_ACTIVE) if not c.input.active
    ]
    assert {c.input.app for c in deactivations} == FINANCE_APPS
    assert all(leave <= c.at < leave + MINUTE for c in deactivations)
    [mail] = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_SEND_MAIL)
        if "has left" in c.input.subject
    ]
    assert mail.input.to_user_id == "uid-E0001" and leave <= mail.at < leave + MINUTE
    # What the directory looks like now.
    assert directory.users["L100"]["enabled"] is False
    assert not [g for g, e in directory.memberships if e == "L100"]
    assert {directory.app_accounts[(app, "L100")] for app in FINANCE_APPS} == {False}
    assert _outcome(state, "L100-leave")[0] is EventOutcome.APPLIED
    deletion = leave + timedelta(days=30)
    assert state.retention_due_at == deletion
    assert [(c.at, c.what) for c in state.scheduled] == [
        (deletion, "delete accounts (retention over)")
    ]

    # Retention: nothing is deleted a day early; everything exactly 30 days after the leave.
    await env.sleep(timedelta(days=28))
    assert directory.calls_named(ActivityNames.GRAPH_DELETE_USER) == []
    assert (await details(handle)).stage is LifecycleStage.DISABLED
    await env.sleep(timedelta(days=2))
    state = await until(handle, lambda s: s.stage is LifecycleStage.DELETED, "deleted")
    [delete] = directory.calls_named(ActivityNames.GRAPH_DELETE_USER)
    assert deletion <= delete.at < deletion + MINUTE
    scim_deletes = directory.calls_named(ActivityNames.SCIM_DELETE_USER)
    assert {c.input.app for c in scim_deletes} == FINANCE_APPS
    assert all(deletion <= c.at < deletion + MINUTE for c in scim_deletes)
    assert "L100" not in directory.users and not directory.app_accounts
    assert state.access == [] and state.graph_user_id is None and state.scheduled == []
    assert state.history[-1].type == "retention"
    assert state.history[-1].outcome is EventOutcome.APPLIED


async def test_corrected_leave_date_only_the_newer_acts(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    handle = await _active(env, send, "L200")
    now = await env.get_current_time()
    first, corrected = now + timedelta(days=20), now + timedelta(days=5)
    await send(_terminate("L200", "L200-leave-1", first))
    await send(_terminate("L200", "L200-leave-2", corrected))
    state = await details(handle)
    outcome, reason = _outcome(state, "L200-leave-1")
    assert outcome is EventOutcome.IGNORED and "superseded by terminate L200-leave-2" in reason
    assert [c.what for c in state.scheduled] == ["terminate L200-leave-2"]

    await env.sleep(timedelta(days=6))
    state = await until(handle, lambda s: s.stage is LifecycleStage.DISABLED, "disabled")
    [disable] = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
        if not c.input.enabled
    ]
    assert corrected <= disable.at < corrected + MINUTE
    assert state.leave_date == corrected
    # The superseded date passes without a second leaver.
    await env.sleep(timedelta(days=20))
    assert len(directory.calls_named(ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS)) == 1


async def test_hire_withdrawn_before_its_start_date(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    start = now + timedelta(days=30)
    handle = await send(_hire("L300", "L300-hire", start))
    # Past the pre-hire day (7 days before the start): the disabled account and access exist.
    await env.sleep(timedelta(days=25))
    for _ in range(200):
        if directory.calls_named(ActivityNames.GRAPH_ISSUE_TAP_TO_MANAGER):
            break
        await asyncio.sleep(0.05)
    assert directory.users["L300"]["enabled"] is False
    assert (await details(handle)).stage is LifecycleStage.PRE_HIRE

    await send(_terminate("L300", "L300-withdraw", start))
    state = await until(handle, lambda s: _outcome(s, "L300-withdraw") is not None, "withdrawn")
    outcome, reason = _outcome(state, "L300-withdraw")
    assert outcome is EventOutcome.APPLIED and "withdrawn before its start date" in reason
    assert _outcome(state, "L300-hire")[0] is EventOutcome.IGNORED
    assert state.stage is LifecycleStage.NONE and state.scheduled == []
    joiner = env.client.get_workflow_handle(joiner_workflow_id("L300", "L300-hire"))
    assert (await joiner.describe()).status is WorkflowExecutionStatus.CANCELED
    # Nothing left: the accounts made for someone who never started are deleted.
    assert "L300" not in directory.users
    assert not [k for k in directory.app_accounts if k[1] == "L300"]
    assert not [g for g, e in directory.memberships if e == "L300"]

    # The start date passes: nothing is enabled.
    await env.sleep(timedelta(days=10))
    enables = directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
    assert not [c for c in enables if c.input.enabled]


async def test_rehire_inside_retention_restores_the_same_account(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    handle = await _active(env, send, "L400")
    now = await env.get_current_time()
    await send(_terminate("L400", "L400-leave", now))
    await until(handle, lambda s: s.stage is LifecycleStage.DISABLED, "disabled")
    await env.sleep(timedelta(days=10))

    now = await env.get_current_time()
    await send(_hire("L400", "L400-rehire", now))
    state = await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, "rehired")
    outcome, reason = _outcome(state, "L400-rehire")
    assert outcome is EventOutcome.APPLIED and "rehire" in reason
    assert state.graph_user_id == "uid-L400" and directory.created_user_ids == ["uid-L400"]
    assert state.retention_due_at is None and state.scheduled == []
    assert directory.users["L400"]["enabled"] is True
    assert {directory.app_accounts[(app, "L400")] for app in FINANCE_APPS} == {True}
    assert {g for g, e in directory.memberships if e == "L400"} == FINANCE_GROUPS

    # Well past the old deletion date: nothing was ever deleted.
    await env.sleep(timedelta(days=40))
    assert directory.calls_named(ActivityNames.GRAPH_DELETE_USER) == []
    assert directory.calls_named(ActivityNames.SCIM_DELETE_USER) == []
    assert (await details(handle)).stage is LifecycleStage.ACTIVE


async def test_rehire_withdrawn_keeps_the_earlier_account_disabled_and_retention_running(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    # First employment in Engineering (a collab account only).
    handle = await send(_hire("L450", "L450-hire", now - timedelta(days=30), "Engineering"))
    await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, "active")
    await send(_terminate("L450", "L450-leave", now))
    state = await until(handle, lambda s: s.stage is LifecycleStage.DISABLED, "disabled")
    deletion = state.retention_due_at
    assert deletion == now + timedelta(days=30)

    # Rehired into Finance from day 20: pre-hire work on day 13 adds a ledger account.
    back = now + timedelta(days=20)
    await send(_hire("L450", "L450-rehire", back))
    await env.sleep(timedelta(days=14))
    for _ in range(200):
        if ("ledger", "L450") in directory.app_accounts:
            break
        await asyncio.sleep(0.05)
    assert (await details(handle)).stage is LifecycleStage.PRE_HIRE

    await send(_terminate("L450", "L450-withdraw", back))
    state = await until(handle, lambda s: _outcome(s, "L450-withdraw") is not None, "withdrawn")
    assert "earlier accounts disabled again" in _outcome(state, "L450-withdraw")[1]
    assert state.stage is LifecycleStage.DISABLED and state.retention_due_at == deletion
    assert directory.users["L450"]["enabled"] is False
    assert not [g for g, e in directory.memberships if e == "L450"]
    assert directory.app_accounts == {("collab", "L450"): False}  # the rehire's ledger: deleted
    assert directory.created_user_ids == ["uid-L450"]

    # The original retention deadline still holds.
    await env.sleep(timedelta(days=17))
    await until(handle, lambda s: s.stage is LifecycleStage.DELETED, "deleted")
    [delete] = directory.calls_named(ActivityNames.GRAPH_DELETE_USER)
    assert deletion <= delete.at < deletion + MINUTE


async def test_rehire_after_deletion_creates_a_fresh_account(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    handle = await _active(env, send, "L500")
    now = await env.get_current_time()
    await send(_terminate("L500", "L500-leave", now))
    await until(handle, lambda s: s.stage is LifecycleStage.DISABLED, "disabled")
    await env.sleep(timedelta(days=31))
    await until(handle, lambda s: s.stage is LifecycleStage.DELETED, "deleted")
    assert "L500" not in directory.users

    now = await env.get_current_time()
    await send(_hire("L500", "L500-rehire", now))
    state = await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, "hired again")
    assert directory.created_user_ids == ["uid-L500", "uid-L500-2"]
    assert state.graph_user_id == "uid-L500-2" and directory.users["L500"]["enabled"] is True
    assert len(directory.calls_named(ActivityNames.GRAPH_ENSURE_USER)) == 2


async def test_terminate_before_any_hire_is_held_until_the_hire_arrives(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    """HR feeds arrive out of order: a leave posted before the hire it ends is not thrown away."""
    env = time_skipping_env
    now = await env.get_current_time()
    handle = await send(_terminate("L600", "L600-leave", now - timedelta(days=1)))
    state = await until(handle, lambda s: _outcome(s, "L600-leave") is not None, "logged")
    assert _outcome(state, "L600-leave")[0] is EventOutcome.HELD
    assert state.stage is LifecycleStage.NONE and not directory.users

    # The hire (dated before the leave) arrives later: hired, then the held leave applies.
    await send(_hire("L600", "L600-hire", now - timedelta(days=5)))
    state = await until(handle, lambda s: s.stage is LifecycleStage.DISABLED, "hired, then left")
    assert _outcome(state, "L600-hire")[0] is EventOutcome.APPLIED
    assert _outcome(state, "L600-leave")[0] is EventOutcome.APPLIED
    assert directory.users["L600"]["enabled"] is False


async def test_terminate_for_someone_never_hired_stays_held_and_blocks_nothing(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    handle = await send(_terminate("L601", "L601-leave", now - timedelta(days=1)))
    state = await until(handle, lambda s: _outcome(s, "L601-leave") is not None, "logged")
    assert _outcome(state, "L601-leave") == (
        EventOutcome.HELD,
        "not hired yet: held, and applied once a hire has been applied",
    )
    # Days pass; nothing happens to a person who was never hired, and the workflow stays healthy.
    await env.sleep(timedelta(days=3))
    state = await details(handle)
    assert state.stage is LifecycleStage.NONE and "L601" not in directory.users


async def test_events_apply_by_effective_time_not_arrival(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    """HR sends a rehire (day 20) and then the leave before it (day 10): leave first, then rehire."""
    env = time_skipping_env
    handle = await _active(env, send, "L700")
    now = await env.get_current_time()
    leave, back = now + timedelta(days=10), now + timedelta(days=20)
    await send(_hire("L700", "L700-rehire", back))
    await send(_terminate("L700", "L700-leave", leave))
    state = await details(handle)
    # The rehire is not judged against today's "active": it waits behind the earlier leave.
    assert state.history[-1].event_id == "L700-hire"
    assert [c.what for c in state.scheduled] == ["terminate L700-leave", "hire L700-rehire"]

    await env.sleep(timedelta(days=11))
    # The leave is applied first; the rehire's joiner starts right after it, waiting for day 13.
    state = await until(
        handle, lambda s: s.stage is LifecycleStage.PRE_HIRE, "rehire pending", idle=False
    )
    assert _outcome(state, "L700-leave")[0] is EventOutcome.APPLIED
    [disable] = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
        if not c.input.enabled
    ]
    assert leave <= disable.at < leave + MINUTE

    # The same account is enabled again on day 20.
    await env.sleep(timedelta(days=10))
    state = await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, "back")
    [enable] = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
        if c.input.enabled and c.at > leave
    ]
    assert back <= enable.at < back + MINUTE
    assert directory.created_user_ids == ["uid-L700"]
    assert [h.event_id for h in state.history] == ["L700-hire", "L700-leave", "L700-rehire"]
