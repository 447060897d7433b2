"""Acting on a request: decide, extend, cancel, revoke, each a Temporal update of its workflow.

Who may act is the workflow's to say: its update validators refuse what they must. Here their
refusals become statuses (403, 409, 422; 404 for no such request, 503 when nobody answers), and
each attempt refused as not allowed is signalled back to the workflow, so the request's record
keeps who tried and why.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.access_models import CancelBody, DecisionBody, ExtensionBody, RevokeBody
from api.access_problems import (
    UNAUTHENTICATED,
    UNCONFIGURED,
    invalid_request,
    problem_responses,
    request_not_found,
    temporal_unavailable,
)
from api.access_services import (
    ACCESS_PREFIX,
    AUTHENTICATED,
    REQUEST_ID_PREFIX,
    TAG_REQUESTS,
    CallerDep,
    RequestIdPath,
    documented_body,
    json_body,
    services_of,
    temporal_of,
)
from api.caller import Caller
from api.problems import ProblemException
from domain.access.request import (
    AccessRequestContract,
    Actor,
    CancelInput,
    DecideInput,
    ExtendInput,
    Refusal,
    RefusedAttempt,
    RevokeInput,
    UpdateAnswer,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix=ACCESS_PREFIX, tags=[TAG_REQUESTS], dependencies=AUTHENTICATED)

_ACT_RESPONSES = {
    "s401": UNAUTHENTICATED,
    "s413": "Body too large",
    "s404": "No such request",
    "s409": "The request is closed, or its current stage no longer takes this action",
    "s503": UNCONFIGURED,
}


@router.post(
    "/requests/{request_id}/decision",
    response_model=UpdateAnswer,
    summary="Approve or deny a request",
    description=(
        "Decides for the caller in the request's current stage. Only an approver of that stage "
        "may decide, once, and never on their own request; a refused attempt is recorded in the "
        "request's story with who tried and why."
    ),
    responses=problem_responses(
        **_ACT_RESPONSES,
        s403="The caller may not decide this request, or is not a Tenure identity (the detail "
        "says why)",
        s422="Malformed body",
    ),
    openapi_extra=documented_body(DecisionBody),
)
async def decide(
    request_id: RequestIdPath,
    body: Annotated[DecisionBody, json_body(DecisionBody)],
    request: Request,
    caller: CallerDep,
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = DecideInput(actor=actor, decision=body.decision, comment=body.comment)
    return await act_on_run(request, request_id, actor, AccessRequestContract.UPDATE_DECIDE, update)


@router.post(
    "/requests/{request_id}/extension",
    response_model=UpdateAnswer,
    summary="Ask to extend granted access",
    description=(
        "Asks to move the end of granted access. The package's policy says how far and whether "
        "its approvers must agree again (then the request shows a new approval round)."
    ),
    responses=problem_responses(
        **_ACT_RESPONSES,
        s403="The caller may not extend this access",
        s422="Malformed body, or a new end the package's policy does not allow",
    ),
    openapi_extra=documented_body(ExtensionBody),
)
async def extend(
    request_id: RequestIdPath,
    body: Annotated[ExtensionBody, json_body(ExtensionBody)],
    request: Request,
    caller: CallerDep,
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = ExtendInput(actor=actor, new_end=body.new_end, justification=body.justification)
    return await act_on_run(request, request_id, actor, AccessRequestContract.UPDATE_EXTEND, update)


@router.post(
    "/requests/{request_id}/cancel",
    response_model=UpdateAnswer,
    summary="Cancel a request",
    description="Withdraws a request that has not been granted yet; only its requester may.",
    responses=problem_responses(
        **_ACT_RESPONSES, s403="The caller may not cancel this request", s422="Malformed body"
    ),
    openapi_extra=documented_body(CancelBody, required=False),
)
async def cancel(
    request_id: RequestIdPath,
    request: Request,
    caller: CallerDep,
    body: Annotated[CancelBody | None, json_body(CancelBody, optional=True)],
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = CancelInput(actor=actor, reason=body.reason if body is not None else "")
    return await act_on_run(request, request_id, actor, AccessRequestContract.UPDATE_CANCEL, update)


@router.post(
    "/requests/{request_id}/revoke",
    response_model=UpdateAnswer,
    summary="Revoke granted access (administrators)",
    description="Removes granted access now. Administrators only: holders of the Tenure.Admin "
    "app role or the policy's access administrators.",
    responses=problem_responses(
        **_ACT_RESPONSES, s403="The caller is not an administrator", s422="Malformed body"
    ),
    openapi_extra=documented_body(RevokeBody),
)
async def revoke(
    request_id: RequestIdPath,
    body: Annotated[RevokeBody, json_body(RevokeBody)],
    request: Request,
    caller: CallerDep,
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = RevokeInput(actor=actor, reason=body.reason)
    return await act_on_run(request, request_id, actor, AccessRequestContract.UPDATE_REVOKE, update)


def actor_of(caller: Caller) -> Actor:
    # From the verified token only; the workflow also knows the policy's administrators.
    return Actor(employee_id=caller.employee_id, is_admin=caller.is_admin)


async def act_on_run(
    request: Request,
    request_id: str,
    actor: Actor,
    update_name: str,
    update: BaseModel,
    prefixes: tuple[str, ...] = (REQUEST_ID_PREFIX,),
    result_type: type[Any] = UpdateAnswer,
) -> Any:
    """Run the update; map its refusal to a status (and record a NOT_ALLOWED one in the run).
    Requests and PIM runs share the refusal types and the refused-attempt signal."""
    if not request_id.startswith(prefixes):
        raise request_not_found(request_id)
    handle = temporal_of(request).get_workflow_handle(request_id)
    try:
        async with asyncio.timeout(services_of(request).update_timeout.total_seconds()):
            return await handle.execute_update(update_name, update, result_type=result_type)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if not isinstance(cause, ApplicationError):
            log.error("update %s of %s failed: %r", update_name, request_id, cause)
            raise ProblemException(
                500, "Internal Server Error", "The request's workflow failed this action."
            ) from err
        reason = cause.message
        if cause.type == Refusal.NOT_ALLOWED:
            await _record_refusal(handle, actor, update_name, reason)
            raise ProblemException(403, "Not allowed", reason) from err
        if cause.type == Refusal.CLOSED:
            raise ProblemException(409, "Request closed", reason) from err
        if cause.type == Refusal.INVALID:
            raise invalid_request([reason]) from err
        log.error(
            "update %s of %s refused with %s: %s", update_name, request_id, cause.type, reason
        )
        raise ProblemException(
            500, "Internal Server Error", "The request's workflow failed this action."
        ) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # Also what Temporal says of a workflow that has completed: tell the two apart.
            if await _has_run(handle):
                raise ProblemException(
                    409, "Request closed", f"Request {request_id} is closed; it takes no actions."
                ) from err
            raise request_not_found(request_id) from err
        raise temporal_unavailable(str(err)) from err
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        log.warning("request %s did not take %s in time", request_id, update_name)
        raise ProblemException(
            503,
            "Request did not answer",
            f"Request {request_id} did not take the {update_name} in time (is the worker running?). "
            "It may still take it: read the request before trying again.",
            headers={"Retry-After": "5"},
        ) from err
    except RuntimeError as err:
        raise temporal_unavailable(str(err)) from err


async def _record_refusal(
    handle: WorkflowHandle[Any, Any], actor: Actor, action: str, reason: str
) -> None:
    attempt = RefusedAttempt(actor=actor, action=action, reason=reason, at=datetime.now(UTC))
    try:
        await handle.signal(AccessRequestContract.SIGNAL_REFUSED_ATTEMPT, attempt)
    except (RPCError, RuntimeError) as err:
        # The refusal still stands; only its trace in the request's story is missing.
        log.warning(
            "could not record %s's refused %s on %s: %s", actor.employee_id, action, handle.id, err
        )


async def _has_run(handle: WorkflowHandle[Any, Any]) -> bool:
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise temporal_unavailable(str(err)) from err
    return True
