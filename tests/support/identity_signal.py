"""Hand an HR event to an identity workflow the way the intake API does, minus search attributes
(the time-skipping test server cannot register custom ones)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle

from domain.lifecycle.events import HrEvent, identity_workflow_id
from domain.lifecycle.identity import IdentityContract, IdentityWorkflowInput


async def signal_hr_event(client: Client, task_queue: str, event: HrEvent) -> WorkflowHandle:
    return await client.start_workflow(
        IdentityContract.WORKFLOW,
        IdentityWorkflowInput(employee_id=event.worker.employee_id, record_search_attributes=False),
        id=identity_workflow_id(event.worker.employee_id),
        task_queue=task_queue,
        start_signal=IdentityContract.SIGNAL_HR_EVENT,
        start_signal_args=[event],
    )
