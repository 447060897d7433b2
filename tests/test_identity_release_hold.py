"""While an access request removes what the ledger let it remove, the identity starts no
transition that could grant one of those resources again (a move), until the request says it
closed; the wait is bounded, so a request that never does cannot stop the identity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.holdings import group
from domain.lifecycle.events import EventType, HrEvent, WorkerRecord, identity_workflow_id
from domain.lifecycle.identity import (
    AccessItem,
    AccessRequestChanged,
    EventOutcome,
    HeldPackage,
    IdentityContract,
    IdentityState,
    IdentityWorkflowInput,
    LifecycleStage,
)
from domain.lifecycle.ledger import RELEASE_HOLD
from domain.policy.model import Policy
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import (
    LIFECYCLE_WORKFLOWS,
    details,
    lifecycle_activities,
    stop_when_quiet,
    until,
)


def _releasing(employee: str, now: datetime) -> tuple[IdentityState, HrEvent]:
    """An active person in Sales whose package granting Finance is being released, and an HR
    update moving them to Finance (whose birthright grants the Finance group)."""
    worker = WorkerRecord(
        employee_id=employee, given_name="Rita", family_name="Hold", department="Sales"
    )
    state = IdentityState(
        employee_id=employee,
        stage=LifecycleStage.ACTIVE,
        worker=worker,
        graph_user_id=f"uid-{employee}",
        user_principal_name=f"{employee.lower()}@contoso.example.com",
        hire_date=now,
        record_as_of=now,
        access=[AccessItem(kind="graph_group", target="All Staff", rule="everyone")],
        packages=[
            HeldPackage(
                request_id="req-ending",
                package_id="finance-read",
                status="releasing",
                releasing_since=now,
                resources=[group("Finance")],
            )
        ],
    )
    move = HrEvent(
        event_id=f"{employee}-to-finance",
        type=EventType.UPDATE,
        effective_at=now,
        worker=worker.model_copy(update={"department": "Finance"}),
    )
    return state, move


@asynccontextmanager
async def _running(
    env: WorkflowEnvironment, policy: Policy, state: IdentityState
) -> AsyncIterator[WorkflowHandle]:
    """The identity, started from `state` on a worker of its own; terminated afterwards."""
    queue = f"release-hold-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=LIFECYCLE_WORKFLOWS,
        activities=lifecycle_activities(policy, FakeDirectory()),
    ):
        identity = await env.client.start_workflow(
            IdentityContract.WORKFLOW,
            IdentityWorkflowInput(
                employee_id=state.employee_id, state=state, record_search_attributes=False
            ),
            id=identity_workflow_id(state.employee_id),
            task_queue=queue,
        )
        yield identity
        await stop_when_quiet(identity)


def _applied(state: IdentityState, event: HrEvent) -> bool:
    return any(
        e.event_id == event.event_id and e.outcome is EventOutcome.APPLIED for e in state.history
    )


async def test_a_move_waits_for_a_package_being_released(
    time_skipping_env: WorkflowEnvironment, demo_policy: Policy
) -> None:
    env = time_skipping_env
    state, move = _releasing(f"RH{uuid.uuid4().hex[:6]}", await env.get_current_time())
    async with _running(env, demo_policy, state) as identity:
        await identity.signal(IdentityContract.SIGNAL_HR_EVENT, move)
        await asyncio.sleep(1.0)  # queries do not skip time: the hold is still on
        waiting = await details(identity)
        assert waiting.running_transition is None
        assert not _applied(waiting, move)
        assert waiting.worker == state.worker  # still in Sales

        # The request says it closed: the move goes ahead at once.
        await identity.signal(
            IdentityContract.SIGNAL_ACCESS_REQUEST_CHANGED,
            AccessRequestChanged(request_id="req-ending", status="closed"),
        )
        moved = await until(identity, lambda s: _applied(s, move), "the move applied")
        assert moved.worker is not None and moved.worker.department == "Finance"
        assert any(a.target == "Finance" for a in moved.access)


async def test_a_request_that_never_closes_holds_the_identity_only_a_while(
    time_skipping_env: WorkflowEnvironment, demo_policy: Policy
) -> None:
    env = time_skipping_env
    state, move = _releasing(f"RH{uuid.uuid4().hex[:6]}", await env.get_current_time())
    async with _running(env, demo_policy, state) as identity:
        await identity.signal(IdentityContract.SIGNAL_HR_EVENT, move)
        await env.sleep(RELEASE_HOLD + timedelta(minutes=1))
        moved = await until(identity, lambda s: _applied(s, move), "the move applied")
        assert moved.worker is not None and moved.worker.department == "Finance"
