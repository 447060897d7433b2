"""What a test worker registers to run identities end to end against the fake directory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.policy import PolicyActivities
from domain.lifecycle.events import HrEvent
from domain.lifecycle.identity import IdentityContract, IdentityState
from domain.policy.model import Policy
from tests.support.fake_directory import FakeDirectory
from tests.support.identity_signal import signal_hr_event
from workers import registry

LIFECYCLE_WORKFLOWS: list[type] = registry.LIFECYCLE_WORKFLOWS


def lifecycle_activities(policy: Policy, directory: FakeDirectory, *more: object) -> list[Any]:
    """The policy, the fake directory in place of Graph and SCIM, and any `more` activity
    sources, through the worker's registry (what is not wired here fails at once)."""
    return registry.activities(
        PolicyActivities(policy), *directory.activities(), *more, complete=False
    )


Send = Callable[[HrEvent], Awaitable[WorkflowHandle]]


@asynccontextmanager
async def identity_worker(
    env: WorkflowEnvironment, policy: Policy, directory: FakeDirectory, prefix: str
) -> AsyncIterator[Send]:
    """A worker running every lifecycle workflow, and a way to signal identities to it. The
    identities a test started are terminated after it, so their timers (retention, leave dates)
    do not fire later with no worker and stall time skipping."""
    queue = f"{prefix}-{uuid.uuid4()}"
    started: dict[str, WorkflowHandle] = {}

    async def signal(event: HrEvent) -> WorkflowHandle:
        handle = await signal_hr_event(env.client, queue, event)
        started[handle.id] = handle
        return handle

    async with Worker(
        env.client,
        task_queue=queue,
        workflows=LIFECYCLE_WORKFLOWS,
        activities=lifecycle_activities(policy, directory),
    ):
        yield signal
        for handle in started.values():
            await handle.terminate("test over")


async def details(handle: WorkflowHandle) -> IdentityState:
    return await handle.query(IdentityContract.QUERY_DETAILS, result_type=IdentityState)


async def until(
    handle: WorkflowHandle, check: Callable[[IdentityState], bool], what: str, idle: bool = True
) -> IdentityState:
    """Poll until `check` holds (and, with idle, no transition is running)."""
    for _ in range(200):
        state = await details(handle)
        if check(state) and not (idle and state.running_transition):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"identity never reached: {what} (last: {state.stage}, {state.history})")


async def stop_when_quiet(handle: WorkflowHandle) -> None:
    """Terminate a workflow a test started by hand, once no workflow task of it is in flight: a
    task still dispatched to a worker that is shutting down can hold the shared time-skipping
    server's clock for the tests that follow."""
    for _ in range(100):
        description = await handle.describe()
        if not description.raw_description.HasField("pending_workflow_task"):
            break
        await asyncio.sleep(0.05)
    await handle.terminate("test over")
