"""The identity entity and the joiner on the time-skipping server: days pass in milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.lifecycle.events import EventType, HrEvent, WorkerRecord
from domain.lifecycle.identity import (
    EventOutcome,
    IdentityContract,
    IdentityState,
    LifecycleStage,
)
from domain.lifecycle.joiner import JoinerResult, joiner_workflow_id
from domain.policy.model import Policy
from domain.provisioning import ActivityNames
from tests.support.fake_directory import FakeDirectory
from tests.support.identity_signal import signal_hr_event
from tests.support.lifecycle import LIFECYCLE_WORKFLOWS, lifecycle_activities

PLUS_ONE = timezone(timedelta(hours=1))


def _hire(employee_id: str, start: datetime, event_id: str | None = None, **worker: str) -> HrEvent:
    return HrEvent(
        event_id=event_id or f"hire-{employee_id}",
        type=EventType.HIRE,
        effective_at=start,
        worker=WorkerRecord(
            employee_id=employee_id,
            given_name=worker.pop("given_name", "Ada"),
            family_name=worker.pop("family_name", "Lovelace"),
            **worker,
        ),
    )


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


@pytest.fixture
async def worker(
    time_skipping_env: WorkflowEnvironment, demo_policy: Policy, directory: FakeDirectory
):
    queue = f"identity-test-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=LIFECYCLE_WORKFLOWS,
        activities=lifecycle_activities(demo_policy, directory),
    ):
        yield queue


async def _details(handle: WorkflowHandle) -> IdentityState:
    return await handle.query(IdentityContract.QUERY_DETAILS, result_type=IdentityState)


async def _joiner_result(env: WorkflowEnvironment, employee_id: str, event_id: str) -> JoinerResult:
    """Wait for a joiner child to close. Only handles from start_workflow skip time by themselves,
    so callers first advance the clock with env.sleep past any timer the joiner waits on."""
    handle = env.client.get_workflow_handle(
        joiner_workflow_id(employee_id, event_id), result_type=JoinerResult
    )
    for _ in range(200):
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return await handle.result()
        except RPCError:
            pass  # the parent has not started it yet
        await asyncio.sleep(0.05)
    raise AssertionError(f"joiner for {employee_id} did not finish")


async def test_future_hire_creates_disabled_account_at_pre_hire_offset_and_enables_on_start_date(
    time_skipping_env: WorkflowEnvironment,
    worker: str,
    directory: FakeDirectory,
    demo_policy: Policy,
) -> None:
    now = await time_skipping_env.get_current_time()
    start = now + timedelta(days=30)
    event = _hire("E3001", start, department="Finance", manager_id="E0001")
    handle = await signal_hr_event(time_skipping_env.client, worker, event)

    # Nothing before the pre-hire day: the identity waits as pre_hire.
    await time_skipping_env.sleep(timedelta(days=22))
    assert directory.users == {}
    assert (await _details(handle)).stage is LifecycleStage.PRE_HIRE

    await time_skipping_env.sleep(timedelta(days=9))
    await _joiner_result(time_skipping_env, "E3001", event.event_id)

    pre_hire_at = start - timedelta(days=demo_policy.joiner.pre_hire_days)
    [create] = directory.calls_named(ActivityNames.GRAPH_ENSURE_USER)
    assert create.input.account_enabled is False
    assert pre_hire_at <= create.at < pre_hire_at + timedelta(minutes=1)
    [enable] = directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
    assert enable.input.enabled is True
    assert start <= enable.at < start + timedelta(minutes=1)
    # SCIM accounts were created inactive at pre-hire and activated on the start date too.
    activations = directory.calls_named(ActivityNames.SCIM_SET_ACTIVE)
    assert {c.input.app for c in activations} == {"collab", "ledger"}
    assert all(start <= c.at < start + timedelta(minutes=1) for c in activations)
    # The TAP is valid from the start date, and was sent at pre-hire time.
    [tap] = directory.calls_named(ActivityNames.GRAPH_ISSUE_TAP_TO_MANAGER)
    assert tap.input.start_at == start and tap.at < start

    assert directory.users["E3001"]["enabled"] is True
    assert {g for g, e in directory.memberships if e == "E3001"} == {
        "All Staff",
        "All Employees",
        "Finance",
    }
    state = await _details(handle)
    assert state.stage is LifecycleStage.ACTIVE
    assert state.graph_user_id == "uid-E3001"
    assert {(a.kind, a.target, a.rule) for a in state.access} >= {
        ("graph_group", "Finance", "finance"),
        ("scim_app", "ledger", "finance"),
    }


async def test_past_hire_is_caught_up_at_once(
    time_skipping_env: WorkflowEnvironment, worker: str, directory: FakeDirectory
) -> None:
    now = await time_skipping_env.get_current_time()
    event = _hire("E3002", now - timedelta(days=3), department="Engineering")
    await signal_hr_event(time_skipping_env.client, worker, event)
    result = await _joiner_result(time_skipping_env, "E3002", event.event_id)
    [create] = directory.calls_named(ActivityNames.GRAPH_ENSURE_USER)
    assert create.input.account_enabled is True
    assert create.at - now < timedelta(minutes=1)
    assert directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED) == []
    assert result.warnings == ["no manager: no Temporary Access Pass was sent"]


async def test_same_event_twice_is_applied_once(
    time_skipping_env: WorkflowEnvironment, worker: str, directory: FakeDirectory
) -> None:
    now = await time_skipping_env.get_current_time()
    event = _hire("E3003", now - timedelta(days=1), department="Sales")
    handle = await signal_hr_event(time_skipping_env.client, worker, event)
    await signal_hr_event(time_skipping_env.client, worker, event)
    await _joiner_result(time_skipping_env, "E3003", event.event_id)
    # A third copy long after the first was applied is still recognised.
    await signal_hr_event(time_skipping_env.client, worker, event)

    state = await _details(handle)
    assert [h.outcome for h in state.history].count(EventOutcome.APPLIED) == 1
    assert [h.outcome for h in state.history].count(EventOutcome.DUPLICATE) == 2
    assert len(directory.calls_named(ActivityNames.GRAPH_ENSURE_USER)) == 1


async def test_a_reused_event_id_with_other_content_is_a_conflict_not_applied(
    time_skipping_env: WorkflowEnvironment, worker: str, directory: FakeDirectory
) -> None:
    # What the intake refuses when it has its record; the entity catches the rest (two requests
    # racing, an API without a record).
    now = await time_skipping_env.get_current_time()
    event = _hire("E3010", now - timedelta(days=1), department="Sales")
    handle = await signal_hr_event(time_skipping_env.client, worker, event)
    await _joiner_result(time_skipping_env, "E3010", event.event_id)
    reused = event.model_copy(update={"type": EventType.TERMINATE, "effective_at": now})
    await signal_hr_event(time_skipping_env.client, worker, reused)
    # The same instant in another zone is the same content: a duplicate, not a conflict.
    same = event.model_copy(update={"effective_at": event.effective_at.astimezone(PLUS_ONE)})
    await signal_hr_event(time_skipping_env.client, worker, same)

    state = await _details(handle)
    while len(state.history) < 3:
        await asyncio.sleep(0.05)
        state = await _details(handle)
    assert [h.outcome for h in state.history] == [
        EventOutcome.APPLIED,
        EventOutcome.CONFLICT,
        EventOutcome.DUPLICATE,
    ]
    assert "different content: not applied" in state.history[1].reason
    assert state.stage is LifecycleStage.ACTIVE  # the terminate under a reused id did nothing
    assert directory.calls_named(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED) == []
    assert state.event_digests.keys() == {event.event_id}


async def test_events_for_one_person_are_applied_in_order(
    time_skipping_env: WorkflowEnvironment, worker: str, directory: FakeDirectory
) -> None:
    now = await time_skipping_env.get_current_time()
    first = _hire("E3004", now - timedelta(days=1), event_id="a-first", department="People")
    second = _hire("E3004", now - timedelta(days=1), event_id="b-second", department="Sales")
    third = HrEvent(
        event_id="c-third",
        type=EventType.UPDATE,
        effective_at=now,
        worker=WorkerRecord(employee_id="E3004", department="Finance"),
    )
    handle = await signal_hr_event(time_skipping_env.client, worker, first)
    await signal_hr_event(time_skipping_env.client, worker, second)
    await signal_hr_event(time_skipping_env.client, worker, third)
    await _joiner_result(time_skipping_env, "E3004", "a-first")

    state = await _details(handle)
    while len(state.history) < 3:
        await asyncio.sleep(0.05)
        state = await _details(handle)
    assert [h.event_id for h in state.history] == ["a-first", "b-second", "c-third"]
    assert state.history[0].outcome is EventOutcome.APPLIED
    # The second hire arrived after the first was applied: the person is already hired.
    assert state.history[1].outcome is EventOutcome.IGNORED
    assert "already hired" in state.history[1].reason
    # Only the first hire provisioned an account, with the first hire's department; the update
    # came after it and moved the person to Finance.
    assert state.history[2].outcome is EventOutcome.APPLIED
    assert "department People -> Finance" in state.history[2].reason
    create, move = directory.calls_named(ActivityNames.GRAPH_ENSURE_USER)
    assert create.input.worker.department == "People"
    assert move.input.worker.department == "Finance" and move.input.worker.given_name
