"""A workflow that calls an activity its test worker does not register (tests/test_registry.py).

Its own module: the workflow sandbox re-imports the module a workflow lives in."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.provisioning import UserIdInput
    from domain.stubs import graph as graph_activity
    from workflows.steps.retry import PROVISIONING


@workflow.defn(name="CallsAnActivityNobodyRegistered")
class CallsAnUnregisteredActivity:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(
                graph_activity.delete_user, UserIdInput(user_id="u-1"), **PROVISIONING
            )
        except ActivityError as err:
            assert isinstance(err.cause, ApplicationError)
            return f"{err.cause.type}: attempts ended"
        return "ran"
