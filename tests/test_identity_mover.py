"""Movers on the time-skipping server: access follows the new attributes, grace periods run on the
identity's own timer, a move back cancels a pending removal, an unknown identity's update is a hire."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle.birthright import joiner_plan
from domain.lifecycle.events import EventType, HrEvent, WorkerRecord
from domain.lifecycle.identity import EventOutcome, IdentityState, LifecycleStage
from domain.lifecycle.mover import mover_workflow_id
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
GRACE = timedelta(days=14)


def _worker(employee_id: str, **fields: str) -> WorkerRecord:
    record: dict[str, str] = {
        "employee_id": employee_id,
        "given_name": "Grace",
        "family_name": "Hopper",
        "department": "Finance",
        "manager_id": "E0001",
    }
    return WorkerRecord.model_validate(record | fields)


def _event(kind: EventType, event_id: str, at: datetime, worker: WorkerRecord) -> HrEvent:
    return HrEvent(event_id=event_id, type=kind, effective_at=at, worker=worker)


@pytest.fixture
def policy(demo_policy: Policy) -> Policy:
    """The demo policy, with a 14-day grace period on the finance rule's access."""
    raw = demo_policy.model_dump()
    for rule in raw["birthright"]:
        if rule["name"] == "finance":
            rule["remove_after"] = "14d"
    return Policy.model_validate(raw)


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
async def send(
    time_skipping_env: WorkflowEnvironment, policy: Policy, directory: FakeDirectory
) -> AsyncIterator[Send]:
    async with identity_worker(time_skipping_env, policy, directory, "mover-test") as signal:
        yield signal


def _logged(event_id: str) -> Callable[[IdentityState], bool]:
    return lambda s: any(h.event_id == event_id for h in s.history)


def _outcome(state: IdentityState, event_id: str, type: str = "update") -> tuple[EventOutcome, str]:
    [found] = [h for h in state.history if h.event_id == event_id and h.type == type]
    return found.outcome, found.reason


async def _hired(env: WorkflowEnvironment, send: Send, worker: WorkerRecord) -> WorkflowHandle:
    now = await env.get_current_time()
    hire = _event(EventType.HIRE, f"{worker.employee_id}-hire", now - timedelta(days=30), worker)
    handle = await send(hire)
    await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, "active")
    return handle


def _groups(directory: FakeDirectory, employee_id: str) -> set[str]:
    return {g for g, e in directory.memberships if e == employee_id}


def _active_apps(directory: FakeDirectory, employee_id: str) -> set[str]:
    return {
        app for (app, e), active in directory.app_accounts.items() if e == employee_id and active
    }


def _expected(policy: Policy, worker: WorkerRecord) -> tuple[set[str], set[str]]:
    plan = joiner_plan(policy, worker)
    return {g.group for g in plan.groups}, {a.app for a in plan.apps}


async def test_move_without_grace_changes_access_attributes_manager_and_tells_both_managers(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory, policy: Policy
) -> None:
    env = time_skipping_env
    before = _worker("M100", department="Engineering", location="London")
    handle = await _hired(env, send, before)
    assert _groups(directory, "M100") == {"All Staff", "All Employees", "Engineering"} | {
        "London Office"
    }
    after = _worker(
        "M100",
        department="Sales",
        job_title="Account Executive",
        location="Berlin",
        manager_id="E0002",
    )
    now = await env.get_current_time()
    await send(_event(EventType.UPDATE, "M100-move", now, after))
    state = await until(handle, _logged("M100-move"), "moved")

    outcome, reason = _outcome(state, "M100-move")
    assert outcome is EventOutcome.APPLIED, reason
    assert "department Engineering -> Sales" in reason
    # Access equals what a joiner with the new attributes gets.
    groups, apps = _expected(policy, after)
    assert _groups(directory, "M100") == groups
    assert _active_apps(directory, "M100") == apps
    assert {(a.kind, a.target) for a in state.access} == {("graph_group", g) for g in groups} | {
        ("scim_app", a) for a in apps
    }
    assert state.pending_removals == [] and state.worker == after
    # Attributes, manager, app accounts.
    user = directory.users["M100"]
    assert (user["department"], user["job_title"], user["location"]) == (
        "Sales",
        "Account Executive",
        "Berlin",
    )
    assert user["enabled"] is True and user["manager"] == "E0002"
    scim = [c for c in directory.calls_named(ActivityNames.SCIM_ENSURE_USER) if c.at >= now]
    assert {c.input.app for c in scim} == {"collab"}
    assert all(c.input.worker.department == "Sales" for c in scim)
    # Both managers told, with what changed.
    mails = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_SEND_MAIL)
        if "moved" in c.input.subject
    ]
    assert {m.input.to_user_id for m in mails} == {"uid-E0001", "uid-E0002"}
    assert all("Engineering &rarr; Sales" in m.input.html_body for m in mails)
    assert all(now <= c.at < now + MINUTE for c in mails + scim)
    assert mover_workflow_id("M100", "M100-move") == state.history[-1].transition_workflow_id


async def test_grace_period_keeps_old_access_exactly_fourteen_days(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory, policy: Policy
) -> None:
    env = time_skipping_env
    handle = await _hired(env, send, _worker("M200"))
    assert {"Finance"} <= _groups(directory, "M200")
    assert _active_apps(directory, "M200") == {"collab", "ledger"}
    after = _worker("M200", department="Engineering")
    moved_at = await env.get_current_time()
    await send(_event(EventType.UPDATE, "M200-move", moved_at, after))
    state = await until(handle, _logged("M200-move"), "moved")
    assert _outcome(state, "M200-move")[0] is EventOutcome.APPLIED

    # New access at once; the old role's access is still there, and on the schedule.
    assert {"Engineering", "Finance"} <= _groups(directory, "M200")
    assert _active_apps(directory, "M200") == {"collab", "ledger"}
    [due] = {p.due_at for p in state.pending_removals}
    assert moved_at <= due - GRACE < moved_at + MINUTE
    assert {p.target for p in state.pending_removals} == {"Finance", "ledger"}
    assert {c.what for c in state.scheduled} == {
        "remove Finance (grace period after M200-move)",
        "remove ledger (grace period after M200-move)",
    }

    await env.sleep(GRACE - timedelta(hours=1))
    assert "Finance" in _groups(directory, "M200")
    assert _active_apps(directory, "M200") == {"collab", "ledger"}

    await env.sleep(timedelta(hours=2))
    state = await until(handle, lambda s: not s.pending_removals, "grace removal")
    groups, apps = _expected(policy, after)
    assert _groups(directory, "M200") == groups
    assert _active_apps(directory, "M200") == apps
    [removal] = [
        c
        for c in directory.calls_named(ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS)
        if not c.input.present
    ]
    assert removal.input.groups == ["Finance"] and due <= removal.at < due + MINUTE
    [off] = [c for c in directory.calls_named(ActivityNames.SCIM_SET_ACTIVE) if not c.input.active]
    assert off.input.app == "ledger" and due <= off.at < due + MINUTE
    assert {a.target for a in state.access} == groups | apps
    assert state.history[-1].type == "grace_removal"
    assert state.history[-1].outcome is EventOutcome.APPLIED and state.scheduled == []


async def test_a_move_back_inside_the_grace_period_cancels_the_removal(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory, policy: Policy
) -> None:
    env = time_skipping_env
    finance = _worker("M300")
    handle = await _hired(env, send, finance)
    now = await env.get_current_time()
    await send(
        _event(EventType.UPDATE, "M300-away", now, _worker("M300", department="Engineering"))
    )
    await until(handle, _logged("M300-away"), "moved away")
    await env.sleep(timedelta(days=5))
    now = await env.get_current_time()
    await send(_event(EventType.UPDATE, "M300-back", now, finance))
    state = await until(handle, _logged("M300-back"), "moved back")
    outcome, reason = _outcome(state, "M300-back")
    assert outcome is EventOutcome.APPLIED and "pending removal cancelled" in reason
    assert state.pending_removals == [] and state.scheduled == []

    await env.sleep(timedelta(days=20))
    state = await details(handle)
    groups, apps = _expected(policy, finance)
    assert _groups(directory, "M300") == groups and _active_apps(directory, "M300") == apps
    assert not [
        c for c in directory.calls_named(ActivityNames.SCIM_SET_ACTIVE) if not c.input.active
    ]
    assert all(h.type != "grace_removal" for h in state.history)


async def test_an_update_for_an_unknown_identity_is_a_hire(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory, policy: Policy
) -> None:
    env = time_skipping_env
    worker = _worker("M400", department="Sales")
    now = await env.get_current_time()
    handle = await send(_event(EventType.UPDATE, "M400-load", now - timedelta(days=1), worker))
    state = await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, "active")
    outcome, reason = _outcome(state, "M400-load")
    assert outcome is EventOutcome.APPLIED and "initial load" in reason
    groups, apps = _expected(policy, worker)
    assert _groups(directory, "M400") == groups and _active_apps(directory, "M400") == apps
    assert directory.users["M400"]["enabled"] is True


async def test_an_update_without_a_relevant_change_changes_nothing(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    worker = _worker("M500")
    handle = await _hired(env, send, worker)
    calls = len(directory.calls)
    now = await env.get_current_time()
    # The same record, sent without names (an update keeps the stored ones).
    same = worker.model_copy(update={"given_name": None, "family_name": None})
    await send(_event(EventType.UPDATE, "M500-same", now, same))
    state = await until(handle, _logged("M500-same"), "logged")
    assert _outcome(state, "M500-same") == (EventOutcome.APPLIED, "no change")
    assert len(directory.calls) == calls
    assert state.worker == worker


async def test_an_update_older_than_the_applied_record_is_ignored_as_stale(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    handle = await _hired(env, send, _worker("M550"))
    now = await env.get_current_time()
    await send(
        _event(
            EventType.UPDATE,
            "M550-new",
            now - timedelta(days=2),
            _worker("M550", department="Sales"),
        )
    )
    await until(handle, _logged("M550-new"), "moved")
    # HR's older record arrives late: applying it would undo the newer move.
    await send(
        _event(
            EventType.UPDATE,
            "M550-old",
            now - timedelta(days=5),
            _worker("M550", department="People"),
        )
    )
    state = await until(handle, _logged("M550-old"), "logged")
    outcome, reason = _outcome(state, "M550-old")
    assert outcome is EventOutcome.IGNORED and reason.startswith("stale:")
    assert state.worker is not None and state.worker.department == "Sales"
    assert "People Team" not in _groups(directory, "M550")


async def test_a_role_the_new_attributes_no_longer_imply_is_taken_away_in_a_kept_app(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    # A Controller holds ledger-approver and ledger-user; as an Analyst only ledger-user.
    handle = await _hired(env, send, _worker("M560", job_title="Controller"))
    now = await env.get_current_time()
    await send(_event(EventType.UPDATE, "M560-move", now, _worker("M560", job_title="Analyst")))
    state = await until(handle, _logged("M560-move"), "moved")
    ledger = [
        c.input
        for c in directory.calls_named(ActivityNames.SCIM_ENSURE_USER)
        if c.input.app == "ledger" and c.input.worker.job_title == "Analyst"
    ]
    assert [(i.roles, i.remove_roles) for i in ledger] == [(["ledger-user"], ["ledger-approver"])]
    [held] = [a for a in state.access if a.target == "ledger"]
    assert held.roles == ["ledger-user"]


async def test_a_leaver_drops_pending_removals(
    time_skipping_env: WorkflowEnvironment, send: Send, directory: FakeDirectory
) -> None:
    env = time_skipping_env
    handle = await _hired(env, send, _worker("M600"))
    now = await env.get_current_time()
    await send(_event(EventType.UPDATE, "M600-move", now, _worker("M600", department="Sales")))
    await until(handle, _logged("M600-move"), "moved")
    await send(_event(EventType.TERMINATE, "M600-leave", now, WorkerRecord(employee_id="M600")))
    state = await until(handle, lambda s: s.stage is LifecycleStage.DISABLED, "left")
    assert state.pending_removals == [] and not _groups(directory, "M600")
    assert [c.what for c in state.scheduled] == ["delete accounts (retention over)"]
