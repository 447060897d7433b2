"""The identity entity on a real dev server: search attributes, and continue-as-new that loses
nothing (forced early with a tiny history threshold, docs/platform-notes.md#forcing-continue-as-new-in-tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.intake import hand_to_temporal
from domain.lifecycle.events import EventType, HrEvent, WorkerRecord, identity_workflow_id
from domain.lifecycle.identity import EventOutcome, IdentityContract, IdentityState, LifecycleStage
from domain.policy.model import Policy
from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import LIFECYCLE_WORKFLOWS, lifecycle_activities
from tests.support.temporal_dev import temporal_dev_server

UPDATES = 30


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    extra = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"]
    async with temporal_dev_server(extra_args=extra) as env:
        yield env


def _event(event_id: str, type: EventType, **worker: str) -> HrEvent:
    return HrEvent(
        event_id=event_id,
        type=type,
        effective_at=datetime.now(UTC) - timedelta(days=1),
        worker=WorkerRecord(employee_id="L1", **worker),
    )


async def _state(client: Client) -> IdentityState:
    return await client.get_workflow_handle(identity_workflow_id("L1")).query(
        IdentityContract.QUERY_DETAILS, result_type=IdentityState
    )


async def test_every_event_survives_continue_as_new(
    dev_env: WorkflowEnvironment, demo_policy: Policy
) -> None:
    queue = f"long-life-{uuid.uuid4()}"
    directory = FakeDirectory()
    hire = _event(
        "l1-hire", EventType.HIRE, given_name="Ada", family_name="Long", department="Sales"
    )
    updates = [
        _event(f"l1-update-{i:02d}", EventType.UPDATE, department="Sales") for i in range(UPDATES)
    ]
    async with Worker(
        dev_env.client,
        task_queue=queue,
        workflows=LIFECYCLE_WORKFLOWS,
        activities=lifecycle_activities(demo_policy, directory),
    ):
        # The API's own path: signal-with-start with the search attributes set at start.
        await hand_to_temporal(dev_env.client, [hire, *updates], task_queue=queue)
        for event in updates[:5]:  # repeats, some arriving after a continue-as-new
            await hand_to_temporal(dev_env.client, [event], task_queue=queue)

        for _ in range(300):
            state = await _state(dev_env.client)
            if len(state.history) >= 1 + UPDATES + 5:
                break
            await asyncio.sleep(0.1)
        # The first update's id, reused for other content after the runs that received it
        # continued as new: still known with its content, so a conflict, not applied.
        first = updates[0]
        reused = first.model_copy(
            update={"worker": first.worker.model_copy(update={"department": "Audit"})}
        )
        await hand_to_temporal(dev_env.client, [reused], task_queue=queue)
        for _ in range(100):
            state = await _state(dev_env.client)
            if EventOutcome.CONFLICT in [h.outcome for h in state.history]:
                break
            await asyncio.sleep(0.1)

        handle = dev_env.client.get_workflow_handle(identity_workflow_id("L1"))
        description = await handle.describe()

    repeats = (EventOutcome.DUPLICATE, EventOutcome.CONFLICT)
    applied = [h.event_id for h in state.history if h.outcome not in repeats]
    assert applied == ["l1-hire"] + [e.event_id for e in updates]
    assert [h.outcome for h in state.history].count(EventOutcome.DUPLICATE) == 5
    [conflict] = [h for h in state.history if h.outcome is EventOutcome.CONFLICT]
    assert conflict.event_id == first.event_id
    assert state.worker is not None and state.worker.department == "Sales"
    assert state.stage is LifecycleStage.ACTIVE
    assert len(directory.calls_named("graph.ensure_user")) == 1

    # It really continued as new (more than once), and the latest run still carries the search
    # attributes operators filter on.
    first_run = dev_env.client.get_workflow_handle(
        identity_workflow_id("L1"),
        run_id=description.raw_description.workflow_execution_info.first_run_id,
    )
    first_history = [e.event_type async for e in first_run.fetch_history_events()]
    assert HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW in first_history
    assert description.run_id != first_run.run_id
    assert description.typed_search_attributes[EMPLOYEE_ID] == "L1"
    assert description.typed_search_attributes[LIFECYCLE_STAGE] == "active"


async def test_continue_as_new_carries_a_waiting_leave_and_the_retention_deadline(
    dev_env: WorkflowEnvironment, demo_policy: Policy
) -> None:
    queue = f"long-life-{uuid.uuid4()}"
    directory = FakeDirectory()
    employee = "L2"
    past = datetime.now(UTC) - timedelta(days=1)

    def event(event_id: str, type: EventType, at: datetime, **worker: str) -> HrEvent:
        record = WorkerRecord(employee_id=employee, **worker)
        return HrEvent(event_id=event_id, type=type, effective_at=at, worker=record)

    hire = event("l2-hire", EventType.HIRE, past, given_name="Ada", family_name="Leaves")
    leave = event("l2-leave", EventType.TERMINATE, datetime.now(UTC) + timedelta(seconds=6))
    before = [event(f"l2-a-{i:02d}", EventType.UPDATE, past) for i in range(UPDATES)]
    after = [event(f"l2-b-{i:02d}", EventType.UPDATE, past) for i in range(UPDATES)]
    handle = dev_env.client.get_workflow_handle(identity_workflow_id(employee))

    async def state() -> IdentityState:
        return await handle.query(IdentityContract.QUERY_DETAILS, result_type=IdentityState)

    async def runs() -> int:
        description = await handle.describe()
        first = dev_env.client.get_workflow_handle(
            handle.id, run_id=description.raw_description.workflow_execution_info.first_run_id
        )
        count, run = 1, first
        while True:
            events = [e async for e in run.fetch_history_events()]
            last = events[-1]
            if last.event_type != HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                return count
            attrs = last.workflow_execution_continued_as_new_event_attributes
            run = dev_env.client.get_workflow_handle(handle.id, run_id=attrs.new_execution_run_id)
            count += 1

    async with Worker(
        dev_env.client,
        task_queue=queue,
        workflows=LIFECYCLE_WORKFLOWS,
        activities=lifecycle_activities(demo_policy, directory),
    ):
        await hand_to_temporal(dev_env.client, [hire, leave, *before], task_queue=queue)
        for _ in range(100):
            current = await state()
            if len(current.history) >= 1 + UPDATES:
                break
            await asyncio.sleep(0.1)
        # The leave waits across continue-as-new (it is still on the schedule of a later run).
        assert current.stage is LifecycleStage.ACTIVE
        assert [c.what for c in current.scheduled] == ["terminate l2-leave"]
        assert await runs() > 1

        for _ in range(150):
            current = await state()
            if current.stage is LifecycleStage.DISABLED and not current.running_transition:
                break
            await asyncio.sleep(0.1)
        assert current.stage is LifecycleStage.DISABLED
        deletion = leave.effective_at + timedelta(days=demo_policy.leaver.retention_days)
        assert current.retention_due_at == deletion

        # More events force more continue-as-new runs: the deletion deadline survives them.
        runs_before = await runs()
        await hand_to_temporal(dev_env.client, after, task_queue=queue)
        for _ in range(100):
            current = await state()
            if len(current.history) >= 2 + 2 * UPDATES:
                break
            await asyncio.sleep(0.1)
        assert await runs() > runs_before
        assert current.stage is LifecycleStage.DISABLED
        assert current.retention_due_at == deletion
        assert [(c.at, c.what) for c in current.scheduled] == [
            (deletion, "delete accounts (retention over)")
        ]
    assert len(directory.calls_named("graph.revoke_sign_in_sessions")) == 1
