"""Hand an HR event to an identity workflow the way the intake API does: by default without
search attributes (the time-skipping test server cannot register custom ones), or exactly as the
intake does on a server that has them (`as_intake=True`)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle

from api.intake import signal_with_start
from domain.lifecycle.events import HrEvent, identity_workflow_id
from domain.lifecycle.identity import IdentityContract, IdentityWorkflowInput


async def signal_hr_event(
    client: Client, task_queue: str, event: HrEvent, *, as_intake: bool = False
) -> WorkflowHandle:
    employee_id = event.worker.employee_id
    if as_intake:
        await signal_with_start(client, event, task_queue)
        return client.get_workflow_handle(identity_workflow_id(employee_id))
    return await client.start_workflow(
        IdentityContract.WORKFLOW,
        IdentityWorkflowInput(employee_id=employee_id, record_search_attributes=False),
        id=identity_workflow_id(employee_id),
        task_queue=task_queue,
        start_signal=IdentityContract.SIGNAL_HR_EVENT,
        start_signal_args=[event],
    )
