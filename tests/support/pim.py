"""A worker running identities, access requests and PIM runs against the fake directory and a
fake of Graph's PIM endpoints, and helpers to drive activations as the API does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.access.requests import AccessActivities
from activities.security.incidents import IncidentActivities
from audit.store import AccessRecordStore
from domain.access.request import Actor, RequestView
from domain.pim.activation import (
    ActivationInput,
    EligibilityAssignInput,
    EligibilityContract,
    PimActivityNames,
    PimContract,
    TicketVerdict,
    VerifyTicketInput,
    activation_workflow_id,
    eligibility_workflow_id,
)
from domain.pim.graph import (
    ActivateRoleInput,
    ActiveAssignment,
    ActiveAssignmentInput,
    AssignEligibilityInput,
    DeactivateRoleInput,
    DeactivateRoleResult,
    EligibilityInput,
    GraphEligibility,
    PimGraphActivityNames,
    RemoveEligibilityInput,
    RoleTarget,
)
from domain.pim.rules import ActivationAsk
from domain.policy.file import load_policy
from domain.policy.model import Policy
from domain.security.incident import (
    IncidentAck,
    IncidentContract,
    IncidentInput,
    IncidentReport,
    Severity,
    incident_workflow_id,
)
from tests.support.access import AccessHarness, HeldRecord
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import LIFECYCLE_WORKFLOWS, lifecycle_activities
from workers import registry

PIM_POLICY_PATH = Path(__file__).with_name("pim_policy.yaml")


def pim_test_policy() -> Policy:
    return load_policy(PIM_POLICY_PATH)


def _key(principal_id: str, target: RoleTarget) -> tuple[str, str]:
    return principal_id, target.describe()


@dataclass
class FakePimGraph:
    """Graph's PIM state as the activities see it: active assignments and eligibilities, each
    with its end (None: permanent), evaluated against the activity's scheduled time."""

    assignments: dict[tuple[str, str], datetime | None] = field(default_factory=dict)
    eligibilities: dict[tuple[str, str], tuple[datetime, datetime | None]] = field(
        default_factory=dict
    )
    log: list[tuple[str, str, datetime]] = field(default_factory=list)  # (what, role, when)
    known_tickets: set[str] = field(default_factory=set)

    @staticmethod
    def _now() -> datetime:
        return activity.info().current_attempt_scheduled_time

    def active(self, principal_id: str, target: RoleTarget, at: datetime) -> bool:
        key = _key(principal_id, target)
        if key not in self.assignments:
            return False
        end = self.assignments[key]
        return end is None or end > at

    def eligibility_of(
        self, principal_id: str, target: RoleTarget
    ) -> tuple[datetime, datetime | None] | None:
        return self.eligibilities.get(_key(principal_id, target))

    @activity.defn(name=PimGraphActivityNames.ACTIVATE)
    async def activate_role(self, input: ActivateRoleInput) -> ActiveAssignment:
        self.assignments[_key(input.principal_id, input.target)] = input.end
        self.log.append(("activate", input.target.describe(), self._now()))
        return ActiveAssignment(
            principal_id=input.principal_id, target=input.target, start=self._now(), end=input.end
        )

    @activity.defn(name=PimGraphActivityNames.DEACTIVATE)
    async def deactivate_role(self, input: DeactivateRoleInput) -> DeactivateRoleResult:
        gone = self.assignments.pop(_key(input.principal_id, input.target), "absent")
        self.log.append(("deactivate", input.target.describe(), self._now()))
        return DeactivateRoleResult(removed=gone != "absent")

    @activity.defn(name=PimGraphActivityNames.ACTIVE_ASSIGNMENT)
    async def active_assignment(self, input: ActiveAssignmentInput) -> ActiveAssignment | None:
        if not self.active(input.principal_id, input.target, self._now()):
            return None
        end = self.assignments[_key(input.principal_id, input.target)]
        return ActiveAssignment(principal_id=input.principal_id, target=input.target, end=end)

    @activity.defn(name=PimGraphActivityNames.ELIGIBILITY)
    async def eligibility(self, input: EligibilityInput) -> GraphEligibility | None:
        found = self.eligibilities.get(_key(input.principal_id, input.target))
        if found is None or (found[1] is not None and found[1] <= self._now()):
            return None
        return GraphEligibility(
            principal_id=input.principal_id, target=input.target, start=found[0], end=found[1]
        )

    @activity.defn(name=PimGraphActivityNames.ASSIGN_ELIGIBILITY)
    async def assign_eligibility(self, input: AssignEligibilityInput) -> GraphEligibility:
        self.eligibilities[_key(input.principal_id, input.target)] = (input.start, input.end)
        self.log.append(("eligible", input.target.describe(), self._now()))
        return GraphEligibility(
            principal_id=input.principal_id, target=input.target, start=input.start, end=input.end
        )

    @activity.defn(name=PimGraphActivityNames.REMOVE_ELIGIBILITY)
    async def remove_eligibility(self, input: RemoveEligibilityInput) -> DeactivateRoleResult:
        gone = self.eligibilities.pop(_key(input.principal_id, input.target), None)
        self.log.append(("not eligible", input.target.describe(), self._now()))
        return DeactivateRoleResult(removed=gone is not None)

    @activity.defn(name=PimActivityNames.VERIFY_TICKET)
    async def verify_ticket(self, input: VerifyTicketInput) -> TicketVerdict:
        if input.ticket in self.known_tickets:
            return TicketVerdict(valid=True)
        return TicketVerdict(valid=False, reason=f"ticket {input.ticket!r} is not known")


class FakeIncidentGraph:
    """Graph's user lookups by object id or UPN, read off the fake directory."""

    def __init__(self, directory: FakeDirectory) -> None:
        self._directory = directory

    async def user_id_of(self, employee_id: str) -> str | None:
        user = self._directory.users.get(employee_id)
        return user["id"] if user else None

    async def employee_id_of(self, key: str) -> str | None:
        for employee_id, user in self._directory.users.items():
            if key in (user.get("id"), user.get("upn")):
                return employee_id
        return None


@dataclass
class PimHarness(AccessHarness):
    pim: FakePimGraph = field(default_factory=FakePimGraph)
    runs: list[WorkflowHandle] = field(default_factory=list)
    # A worker like the harness's own on another task queue: identities hired there can be left
    # with nobody polling, as a burst of hires leaves them.
    worker_on: Callable[[str], Worker] | None = None

    def principal(self, employee_id: str) -> str:
        return self.directory.users[employee_id]["id"]

    async def make_eligible(
        self,
        employee_id: str,
        role_id: str,
        until: datetime | None = None,
        permanent: bool = False,
        by: str = "PADMIN",
    ) -> WorkflowHandle:
        handle = await self.env.client.start_workflow(
            EligibilityContract.WORKFLOW,
            EligibilityAssignInput(
                employee_id=employee_id,
                role_id=role_id,
                actor=Actor(employee_id=by),
                until=until,
                permanent=permanent,
                justification="on call",
                submitted_at=await self.env.get_current_time(),
                record_search_attributes=False,
            ),
            id=eligibility_workflow_id(employee_id, role_id),
            task_queue=self.queue,
            result_type=RequestView,
        )
        self.runs.append(handle)
        return handle

    async def activate(
        self,
        employee_id: str,
        role_id: str,
        *,
        duration: timedelta | None = None,
        justification: str = "fixing a locked account",
        ticket: str | None = "INC-12345",
        mfa: bool = True,
        start: datetime | None = None,
    ) -> WorkflowHandle:
        ask = ActivationAsk(
            employee_id=employee_id,
            role_id=role_id,
            duration=duration,
            justification=justification,
            ticket=ticket,
            mfa=mfa,
            start=start,
        )
        run_id = activation_workflow_id(employee_id, role_id, str(uuid.uuid4()))
        handle = await self.env.client.start_workflow(
            PimContract.WORKFLOW,
            ActivationInput(
                ask=ask,
                submitted_at=await self.env.get_current_time(),
                record_search_attributes=False,
            ),
            id=run_id,
            task_queue=self.queue,
            result_type=RequestView,
        )
        self.runs.append(handle)
        return handle

    async def report_incident(
        self, incident_id: str, user: str, title: str = "impossible travel"
    ) -> tuple[WorkflowHandle, IncidentAck]:
        """An incident run as the API starts it, and its answer to the SIEM (a report of an
        incident already received reaches the same run)."""
        handle = await self.env.client.start_workflow(
            IncidentContract.WORKFLOW,
            IncidentInput(
                report=IncidentReport(
                    incident_id=incident_id,
                    user=user,
                    severity=Severity.HIGH,
                    title=title,
                    source="sentinel",
                ),
                received_at=await self.env.get_current_time(),
                record_search_attributes=False,
            ),
            id=incident_workflow_id(incident_id),
            task_queue=self.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        self.runs.append(handle)
        ack = await handle.execute_update(
            IncidentContract.UPDATE_ACKNOWLEDGE, result_type=IncidentAck
        )
        return handle, ack


@asynccontextmanager
async def pim_worker(
    env: WorkflowEnvironment, policy: Policy, directory: FakeDirectory, store_path: Path
) -> AsyncIterator[PimHarness]:
    queue = f"pim-test-{uuid.uuid4()}"
    store = AccessRecordStore(store_path)
    access = AccessActivities(env.client, directory)
    record = HeldRecord(store)
    harness = PimHarness(env, queue, directory, store, {}, [], record)
    incidents = IncidentActivities(
        env.client,
        FakeIncidentGraph(directory),  # type: ignore[arg-type]
        policy,
        store,
        directory,
        harness.pim,
    )

    def worker_on(task_queue: str) -> Worker:
        return Worker(
            env.client,
            task_queue=task_queue,
            workflows=[
                *LIFECYCLE_WORKFLOWS,
                *registry.ACCESS_WORKFLOWS,
                *registry.PIM_WORKFLOWS,
                *registry.SECURITY_WORKFLOWS,
            ],
            activities=lifecycle_activities(
                policy, directory, access, record.record_request, harness.pim, incidents
            ),
        )

    harness.worker_on = worker_on
    async with worker_on(queue):
        yield harness
        for handle in [*harness.runs, *harness.requests, *harness.identities.values()]:
            try:
                await handle.terminate("test over")
            except Exception:
                pass  # already closed
