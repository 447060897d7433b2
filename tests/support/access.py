"""A worker running identities and access requests against the fake directory, and helpers to drive
requests the way the API does (updates carrying the actor)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.access.requests import AccessActivities
from activities.record import AccessRecordActivities
from audit.store import AccessRecordStore
from domain.access.request import (
    AccessRequestContract,
    AccessRequestInput,
    Actor,
    DecideInput,
    RecordRequestInput,
    RequestStatus,
    RequestView,
    UpdateAnswer,
    request_workflow_id,
)
from domain.approval.contract import Decision
from domain.audit import AuditActivityNames
from domain.lifecycle.events import EventType, HrEvent, WorkerRecord
from domain.lifecycle.identity import LifecycleStage
from domain.policy.file import load_policy
from domain.policy.model import Policy
from tests.support.fake_directory import FakeDirectory
from tests.support.identity_signal import signal_hr_event
from tests.support.lifecycle import LIFECYCLE_WORKFLOWS, details, lifecycle_activities, until
from workers import registry

ACCESS_POLICY_PATH = Path(__file__).with_name("access_policy.yaml")


def access_test_policy() -> Policy:
    return load_policy(ACCESS_POLICY_PATH)


class HeldRecord:
    """The record activity, which a test may hold on its way (to act while it runs)."""

    def __init__(self, store: AccessRecordStore) -> None:
        self._record = AccessRecordActivities(store)
        self.hold: Callable[[RecordRequestInput], Awaitable[None]] | None = None

    @activity.defn(name=AuditActivityNames.RECORD_REQUEST)
    async def record_request(self, input: RecordRequestInput) -> None:
        if self.hold is not None:
            await self.hold(input)
        await self._record.record_request(input)


@dataclass
class AccessHarness:
    env: WorkflowEnvironment
    queue: str
    directory: FakeDirectory
    store: AccessRecordStore
    identities: dict[str, WorkflowHandle]
    requests: list[WorkflowHandle]
    record: HeldRecord

    async def hire(
        self,
        employee_id: str,
        manager_id: str | None = None,
        department: str = "Finance",
        *,
        as_intake: bool = False,
    ) -> WorkflowHandle:
        """Hire and wait until active; `as_intake` starts the identity with its search
        attributes, as the API does (only on a server that has them registered)."""
        now = await self.env.get_current_time()
        event = HrEvent(
            event_id=f"{employee_id}-hire",
            type=EventType.HIRE,
            effective_at=now - timedelta(days=30),
            worker=WorkerRecord(
                employee_id=employee_id,
                given_name="Test",
                family_name=employee_id,
                department=department,
                manager_id=manager_id,
            ),
        )
        handle = await signal_hr_event(self.env.client, self.queue, event, as_intake=as_intake)
        self.identities[employee_id] = handle
        await until(handle, lambda s: s.stage is LifecycleStage.ACTIVE, f"{employee_id} active")
        return handle

    async def move(self, employee_id: str, department: str) -> None:
        """An HR update to another department (the identity's record otherwise unchanged)."""
        state = await details(self.identities[employee_id])
        assert state.worker is not None
        now = await self.env.get_current_time()
        event = HrEvent(
            event_id=f"{employee_id}-move-{department}",
            type=EventType.UPDATE,
            effective_at=now,
            worker=state.worker.model_copy(update={"department": department}),
        )
        await signal_hr_event(self.env.client, self.queue, event)

    async def terminate(self, employee_id: str) -> None:
        now = await self.env.get_current_time()
        event = HrEvent(
            event_id=f"{employee_id}-leave",
            type=EventType.TERMINATE,
            effective_at=now,
            worker=WorkerRecord(employee_id=employee_id),
        )
        await signal_hr_event(self.env.client, self.queue, event)

    async def request(
        self,
        package_id: str,
        beneficiary_id: str,
        requester_id: str | None = None,
        justification: str = "needed for quarter close",
        answers: dict[str, str] | None = None,
        requested_end: datetime | None = None,
    ) -> WorkflowHandle:
        request_id = request_workflow_id(beneficiary_id, package_id, str(uuid.uuid4()))
        handle = await self.env.client.start_workflow(
            AccessRequestContract.WORKFLOW,
            AccessRequestInput(
                request_id=request_id,
                package_id=package_id,
                beneficiary_id=beneficiary_id,
                requester_id=requester_id or beneficiary_id,
                justification=justification,
                answers=answers or {},
                requested_end=requested_end,
                submitted_at=await self.env.get_current_time(),
                record_search_attributes=False,
            ),
            id=request_id,
            task_queue=self.queue,
            result_type=RequestView,
        )
        self.requests.append(handle)
        return handle

    async def decide(
        self, handle: WorkflowHandle, who: str, decision: Decision = Decision.APPROVE
    ) -> UpdateAnswer:
        return await self.update(
            handle,
            AccessRequestContract.UPDATE_DECIDE,
            DecideInput(actor=Actor(employee_id=who), decision=decision, comment=f"{who} says so"),
        )

    async def update(self, handle: WorkflowHandle, name: str, arg: BaseModel) -> UpdateAnswer:
        """An update as the API sends it, once the run is quiet: the time-skipping test server
        loses track of an update that arrives while an activity is in flight ("update not
        found" when the client polls for its outcome); a real server does not."""
        for _ in range(300):
            description = await handle.describe()
            if not description.raw_description.pending_activities:
                break
            await asyncio.sleep(0.02)
        return await handle.execute_update(name, arg, result_type=UpdateAnswer)


async def view(handle: WorkflowHandle) -> RequestView:
    return await handle.query(AccessRequestContract.QUERY_DETAILS, result_type=RequestView)


async def until_request(
    handle: WorkflowHandle, check: Callable[[RequestView], bool], what: str
) -> RequestView:
    """Poll the request's query until `check` holds (queries do not skip time)."""
    for _ in range(300):
        current = await view(handle)
        if check(current):
            return current
        await asyncio.sleep(0.03)
    raise AssertionError(f"request never reached: {what} (last {current.status}: {current.story})")


async def until_status(handle: WorkflowHandle, status: RequestStatus) -> RequestView:
    return await until_request(handle, lambda v: v.status is status, status.value)


async def until_stored(org: AccessHarness, request_id: str, status: RequestStatus) -> RequestView:
    """The record store's view once it has the request at `status`: the record is written after
    the run's own state changes, so a query can see a status before the record does."""
    for _ in range(200):
        stored = org.store.get_request(request_id)
        if stored is not None and stored.status is status:
            return stored
        await asyncio.sleep(0.03)
    raise AssertionError(f"record store never had {request_id} {status}")


async def until_waiting(handle: WorkflowHandle, stage_index: int) -> RequestView:
    return await until_request(
        handle,
        lambda v: v.waiting_on is not None and v.waiting_on.index == stage_index,
        f"stage {stage_index} waiting",
    )


@asynccontextmanager
async def access_worker(
    env: WorkflowEnvironment, policy: Policy, directory: FakeDirectory, store_path: Path
) -> AsyncIterator[AccessHarness]:
    queue = f"access-test-{uuid.uuid4()}"
    store = AccessRecordStore(store_path)
    access = AccessActivities(env.client, directory)
    record = HeldRecord(store)
    harness = AccessHarness(env, queue, directory, store, {}, [], record)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[*LIFECYCLE_WORKFLOWS, *registry.ACCESS_WORKFLOWS],
        activities=lifecycle_activities(policy, directory, access, record.record_request),
    ):
        yield harness
        # Timers left running would fire later with no worker and stall time skipping.
        for handle in [*harness.requests, *harness.identities.values()]:
            try:
                await handle.terminate("test over")
            except Exception:
                pass  # already closed


MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def on_time(actual: datetime, due: datetime) -> bool:
    """Not before it was due, and within the minute (the skipped clock still ticks while the
    worker runs the task)."""
    return due <= actual < due + MINUTE


def kinds(current: RequestView, kind: str) -> list:
    """The story's entries of one kind, in order."""
    return [e for e in current.story if e.kind == kind]
