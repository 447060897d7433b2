"""Stand-in identity workflows, so the access API lets test people in (`api.known_callers`).

Each is an `identity-{employee_id}` run on a task queue no worker polls: it never advances, but it
runs, and its LifecycleStage search attribute says what the API reads.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from domain.lifecycle.events import HrEvent, identity_workflow_id
from domain.lifecycle.identity import IdentityContract, IdentityWorkflowInput, LifecycleStage
from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE

IDLE_QUEUE = "no-worker-polls-this"


async def start_identities(
    client: Client, employee_ids: Iterable[str], stage: LifecycleStage = LifecycleStage.ACTIVE
) -> None:
    for employee_id in employee_ids:
        await client.start_workflow(
            IdentityContract.WORKFLOW,
            IdentityWorkflowInput(employee_id=employee_id),
            id=identity_workflow_id(employee_id),
            task_queue=IDLE_QUEUE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(EMPLOYEE_ID, employee_id),
                    SearchAttributePair(LIFECYCLE_STAGE, stage.value),
                ]
            ),
        )


@workflow.defn(name=IdentityContract.WORKFLOW, sandboxed=False)
class IdentityStandIn:
    """Takes HR events and does nothing with them: for workers of API tests, so identities the
    intake starts on their queue run quietly instead of failing for want of a workflow."""

    @workflow.signal(name=IdentityContract.SIGNAL_HR_EVENT)
    def hr_event(self, event: HrEvent) -> None:
        pass

    @workflow.run
    async def run(self, input: IdentityWorkflowInput) -> None:
        await workflow.wait_condition(lambda: False)
