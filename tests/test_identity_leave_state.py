"""What the identity entity knows about a leave survives continue-as-new: a grant that lands on a
disabled identity in a later run is taken back naming the leave, and the entity's bookkeeping is
kept once (no copies to drift apart across runs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.access.request import BeneficiaryLeft
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import (
    AccessRequestChanged,
    HeldPackage,
    IdentityContract,
    IdentityState,
    IdentityWorkflowInput,
    LifecycleStage,
)
from domain.policy.model import Policy
from tests.support.fake_directory import FakeDirectory
from tests.support.left_listener import LeftListener
from tests.support.lifecycle import (
    LIFECYCLE_WORKFLOWS,
    details,
    lifecycle_activities,
    stop_when_quiet,
)

LEFT_ON = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)


def carried_over(employee_id: str) -> IdentityWorkflowInput:
    """The input a disabled identity's run hands to its next run by continue-as-new."""
    return IdentityWorkflowInput(
        employee_id=employee_id,
        state=IdentityState(
            employee_id=employee_id,
            stage=LifecycleStage.DISABLED,
            graph_user_id=f"uid-{employee_id}",
            leave_event_id=f"{employee_id}-leave",
            leave_date=LEFT_ON,
            # No retention timer: nothing here should make the shared test server skip time.
            retention_due_at=None,
            packages=[
                HeldPackage(request_id="req-late", package_id="late", status="pending", apps=[])
            ],
            seen_event_ids=["old-1", "old-2"],
            event_digests={"old-2": "d2"},
            running_transition="joiner-stale",
        ),
        record_search_attributes=False,
    )


async def test_a_grant_after_continue_as_new_is_taken_back_naming_the_leave(
    time_skipping_env: WorkflowEnvironment, demo_policy: Policy
) -> None:
    env, queue = time_skipping_env, f"leave-state-{uuid.uuid4()}"
    employee = f"CAN{uuid.uuid4().hex[:6]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[*LIFECYCLE_WORKFLOWS, LeftListener],
        activities=lifecycle_activities(demo_policy, FakeDirectory()),
    ):
        listener = await env.client.start_workflow(
            LeftListener.run, id=f"req-late-{employee}", task_queue=queue
        )
        identity = await env.client.start_workflow(
            IdentityContract.WORKFLOW,
            carried_over(employee),
            id=identity_workflow_id(employee),
            task_queue=queue,
        )
        state = await details(identity)
        # Kept once: every id seen (with or without a digest), nothing stale carried.
        assert state.seen_event_ids == ["old-1", "old-2"]
        assert state.event_digests == {"old-2": "d2"}
        assert state.running_transition is None
        await identity.signal(
            IdentityContract.SIGNAL_ACCESS_REQUEST_CHANGED,
            AccessRequestChanged(request_id=listener.id, status="granted"),
        )
        # Waiting for a result would let the test server skip time (years, to this identity's
        # retention timer), and every later test on the shared server would pay for it.
        with env.auto_time_skipping_disabled():
            told: BeneficiaryLeft = await listener.result()
        assert told.event_id == f"{employee}-leave"
        assert told.effective_at == LEFT_ON
        await stop_when_quiet(identity)
