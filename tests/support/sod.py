"""A worker running identities, access requests, PIM runs and the detective SoD workflows against
the fake directory and fake PIM Graph, and helpers to check people and follow remediations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.access.requests import AccessActivities
from activities.detective.sod import SodActivities
from audit.store import AccessRecordStore
from domain.access.request import Actor, DecideInput
from domain.approval.contract import Decision
from domain.detective.sod_contract import (
    ListManagedInput,
    ManagedPage,
    SodActivityNames,
    SodCheckInput,
    SodCheckReport,
    SodContract,
    SodDecisionAnswer,
    SodScanInput,
    SodScanTally,
    StartCheckInput,
    StartedRemediations,
    StartRemediationsInput,
    check_workflow_id,
    remediation_workflow_id,
)
from domain.detective.sod_violations import SodViolation
from domain.policy.file import load_policy
from domain.policy.model import Policy
from tests.support.access import HeldRecord
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import LIFECYCLE_WORKFLOWS, lifecycle_activities
from tests.support.pim import PimHarness
from workers import registry
from workflows.detective.sod_checks import SodCheckWorkflow, SodScanWorkflow
from workflows.detective.sod_remediation import SodRemediationWorkflow

SOD_POLICY_PATH = Path(__file__).with_name("sod_policy.yaml")
SOD_WORKFLOWS: list[type] = [SodCheckWorkflow, SodScanWorkflow, SodRemediationWorkflow]


def sod_test_policy() -> Policy:
    return load_policy(SOD_POLICY_PATH)


class ListedSod(SodActivities):
    """The SoD activities with the managed identities listed from `pages`: the time-skipping
    server has no visibility (ListWorkflowExecutions), and a shared one lists other tests' people."""

    def __init__(self, temporal: Client, store: AccessRecordStore, policy: Policy) -> None:
        super().__init__(temporal, store, policy)
        self.pages: list[list[str]] = []
        # Off, a move starts no check of its own (a test of the scheduled scan alone).
        self.move_checks = True
        # The checks and remediations started along the way, to terminate with the rest when the
        # tests are over (a run left waiting would stall time skipping for later tests).
        self.started_checks: list[str] = []

    @activity.defn(name=SodActivityNames.START_CHECK)
    async def start_check(self, input: StartCheckInput) -> None:
        if self.move_checks:
            self.started_checks.append(f"{check_workflow_id(input.employee_id)}-{input.key}")
            await super().start_check(input)

    @activity.defn(name=SodActivityNames.START_REMEDIATIONS)
    async def start_remediations(self, input: StartRemediationsInput) -> StartedRemediations:
        started = await super().start_remediations(input)
        self.started_checks.extend(started.started)  # terminated with the rest, too
        return started

    @activity.defn(name=SodActivityNames.LIST_MANAGED)
    async def list_managed(self, input: ListManagedInput) -> ManagedPage:
        index = int(input.page_token or 0)
        following = str(index + 1) if index + 1 < len(self.pages) else None
        ids = self.pages[index] if index < len(self.pages) else []
        return ManagedPage(employee_ids=ids, next_page_token=following)


@dataclass
class SodHarness(PimHarness):
    sod: ListedSod | None = None
    remediations: dict[str, WorkflowHandle] = field(default_factory=dict)

    async def check(self, employee_id: str) -> SodCheckReport:
        """What the identity starts after a move: one person's check, to its end."""
        return await self.env.client.execute_workflow(
            SodContract.CHECK_WORKFLOW,
            SodCheckInput(employee_id=employee_id, reason="test"),
            id=check_workflow_id(employee_id),
            task_queue=self.queue,
            result_type=SodCheckReport,
        )

    async def scan(self, *pages: list[str]) -> SodScanTally:
        assert self.sod is not None
        self.sod.pages = [list(p) for p in pages]
        return await self.env.client.execute_workflow(
            SodContract.SCAN_WORKFLOW,
            SodScanInput(page_size=10),
            id=f"{SodContract.SCAN_ID_PREFIX}{uuid.uuid4()}",
            task_queue=self.queue,
            result_type=SodScanTally,
        )

    def remediation(self, rule: str, employee_id: str) -> WorkflowHandle:
        workflow_id = remediation_workflow_id(rule, employee_id)
        handle = self.env.client.get_workflow_handle(workflow_id)
        self.remediations[workflow_id] = handle
        return handle

    async def decide(
        self, handle: WorkflowHandle, who: str, decision: Decision = Decision.APPROVE
    ) -> SodDecisionAnswer:
        # As AccessHarness.update: the time-skipping server loses an update that arrives while
        # an activity is in flight, so wait until the run is quiet.
        for _ in range(300):
            description = await handle.describe()
            if not description.raw_description.pending_activities:
                break
            await asyncio.sleep(0.02)
        return await handle.execute_update(
            SodContract.UPDATE_DECIDE,
            DecideInput(actor=Actor(employee_id=who), decision=decision, comment="ok for now"),
            result_type=SodDecisionAnswer,
        )


async def violation(handle: WorkflowHandle) -> SodViolation:
    return await handle.query(SodContract.QUERY_DETAILS, result_type=SodViolation)


async def until_violation(
    handle: WorkflowHandle, check: Callable[[SodViolation], bool], what: str
) -> SodViolation:
    """Poll the remediation's query until `check` holds (queries do not skip time)."""
    current: SodViolation | None = None
    for _ in range(300):
        try:
            current = await violation(handle)
        except Exception:
            current = None  # not started yet, or between runs (continue-as-new)
        if current is not None and check(current):
            return current
        await asyncio.sleep(0.03)
    shown = (current.status, current.detail.get("story")) if current else "no run"
    raise AssertionError(f"remediation never reached: {what} (last {shown})")


def _sod_activities(
    policy: Policy, directory: FakeDirectory, sod: SodActivities, *more: object
) -> list[Any]:
    if SodActivityNames.CHECK_PERSON in registry.stubs_by_name():
        return lifecycle_activities(policy, directory, *more, sod)
    # domain/stubs/__init__.py does not list domain.stubs.sod yet, so the registry would refuse
    # these as stub-less: they are added beside its list until it does.
    return [*lifecycle_activities(policy, directory, *more), *registry.defined_activities(sod)]


@asynccontextmanager
async def sod_worker(
    env: WorkflowEnvironment, policy: Policy, directory: FakeDirectory, store_path: Path
) -> AsyncIterator[SodHarness]:
    queue = f"sod-test-{uuid.uuid4()}"
    store = AccessRecordStore(store_path)
    access = AccessActivities(env.client, directory)
    record = HeldRecord(store)
    sod = ListedSod(env.client, store, policy)
    harness = SodHarness(env, queue, directory, store, {}, [], record, sod=sod)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[
            *LIFECYCLE_WORKFLOWS,
            *registry.ACCESS_WORKFLOWS,
            *registry.PIM_WORKFLOWS,
            *SOD_WORKFLOWS,
        ],
        activities=_sod_activities(
            policy, directory, sod, access, record.record_request, harness.pim
        ),
    ):
        yield harness
        # Timers left running (an exception's end, a stage's deadline) would fire later with no
        # worker and stall time skipping.
        handles = [
            *(env.client.get_workflow_handle(i) for i in sod.started_checks),
            *harness.remediations.values(),
            *harness.runs,
            *harness.requests,
            *harness.identities.values(),
        ]
        for handle in handles:
            try:
                await handle.terminate("test over")
            except Exception:
                pass  # already closed
