"""Security incidents (`/v1/security/incidents`): the SIEM or SOAR tool's emergency revoke, and
an administrator's restore.

The SIEM authenticates with its own bearer token (TENURE_SIEM_TOKEN), not a person's JWT. The
incident id is the idempotency key: the run is `incident-{incident_id}`, so a replayed report
reaches the same run and changes nothing (answered 200 with `replay: true`; the first POST is
answered 202 once the person is resolved, which is before the suspension completes). A report
that names nobody Tenure manages is answered 404 and recorded as rejected.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.access_problems import UNAUTHENTICATED, problem_responses, temporal_unavailable
from api.access_services import (
    AUTHENTICATED,
    CallerDep,
    documented_body,
    services_of,
    temporal_of,
)
from api.auth import bearer_token, token_matches
from api.json_body import InvalidBody, parse_model, read_body
from api.problems import ProblemException
from domain.access.request import Refusal
from domain.security.incident import (
    IncidentAck,
    IncidentContract,
    IncidentInput,
    IncidentReport,
    IncidentStatus,
    IncidentView,
    RestoreAsk,
    incident_workflow_id,
)

log = logging.getLogger(__name__)

SECURITY_PREFIX = "/v1/security"
TAG = "Security incidents"
IncidentIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]

siem_router = APIRouter(prefix=SECURITY_PREFIX, tags=[TAG])
router = APIRouter(prefix=SECURITY_PREFIX, tags=[TAG], dependencies=AUTHENTICATED)


def _require_siem(request: Request) -> None:
    expected = services_of(request).siem_token
    if expected is None:
        raise ProblemException(
            503,
            "Incidents not configured",
            "set TENURE_SIEM_TOKEN (or TENURE_SIEM_TOKEN_FILE) for the SIEM's bearer token",
        )
    if not token_matches(bearer_token(request.headers.get("authorization")), expected):
        raise ProblemException(
            401,
            "Unauthorized",
            "A valid SIEM token is required: send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="tenure-siem"'},
        )


@siem_router.post(
    "/incidents",
    response_model=IncidentAck,
    status_code=202,
    summary="Report a security incident about a person (SIEM/SOAR)",
    description=(
        "Suspends the person at once: sign-in disabled and sessions revoked, every PIM "
        "activation ended, package grants and privileged eligibilities suspended (nothing is "
        "deleted; birthright stays recorded), the manager and security contacts told, and every "
        "step recorded with the incident id. `user` is an employee id, a UPN or a Graph object "
        "id. Authenticate with the SIEM's own bearer token. Idempotent by `incident_id`: a "
        "replay answers 200 with `replay: true` and changes nothing."
    ),
    responses=problem_responses(
        s401="Missing or wrong SIEM token",
        s404="The report names nobody Tenure manages",
        s413="Body too large",
        s422="Malformed report (each field named)",
        s503="Not configured, or Temporal unavailable",
    ),
    openapi_extra=documented_body(IncidentReport),
)
async def report_incident(request: Request) -> JSONResponse:
    _require_siem(request)  # before the body is read: strangers learn nothing of its rules
    try:
        body = parse_model(await read_body(request), IncidentReport, optional=False)
    except InvalidBody as invalid:
        raise ProblemException(
            422, "Invalid incident", invalid.detail, errors=invalid.errors
        ) from None
    assert body is not None
    services = services_of(request)
    client = temporal_of(request)
    run_id = incident_workflow_id(body.incident_id)
    try:
        handle = await client.start_workflow(
            IncidentContract.WORKFLOW,
            IncidentInput(report=body, received_at=datetime.now(UTC)),
            id=run_id,
            task_queue=services.security_task_queue,
            task_timeout=IncidentContract.TASK_TIMEOUT,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Incident {body.incident_id} ({body.severity.value})",
        )
        async with asyncio.timeout(services.update_timeout.total_seconds()):
            ack = await handle.execute_update(
                IncidentContract.UPDATE_ACKNOWLEDGE, result_type=IncidentAck
            )
    except WorkflowAlreadyStartedError:
        ack = await _closed_ack(request, body.incident_id)
    except (TimeoutError, RPCError, RuntimeError) as err:
        log.warning("incident %s not handed to Temporal: %s", body.incident_id, err)
        raise temporal_unavailable(str(err)) from err
    if ack.status is IncidentStatus.REJECTED:
        raise ProblemException(404, "Unknown user", ack.message)
    return JSONResponse(ack.model_dump(mode="json"), status_code=200 if ack.replay else 202)


async def _closed_ack(request: Request, incident_id: str) -> IncidentAck:
    """A replay of an incident whose run has closed (restored, or rejected): from the record."""
    store = services_of(request).store
    view = await asyncio.to_thread(store.get_incident, incident_id) if store else None
    if view is None:
        view = await _query(request, incident_id)
    return IncidentAck(
        incident_id=incident_id,
        employee_id=view.employee_id or None,
        status=view.status,
        replay=True,
        message=view.steps[-1].text if view.steps else "incident already received",
    )


async def _query(request: Request, incident_id: str) -> IncidentView:
    handle = temporal_of(request).get_workflow_handle(incident_workflow_id(incident_id))
    try:
        return await handle.query(IncidentContract.QUERY_DETAILS, result_type=IncidentView)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise ProblemException(
                404, "Not Found", f"There is no incident {incident_id!r}."
            ) from err
        raise temporal_unavailable(str(err)) from err


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentView,
    summary="One incident and every step of its response (auditors, administrators)",
    responses=problem_responses(
        s401=UNAUTHENTICATED, s403="Not an auditor", s404="No such incident"
    ),
)
async def get_incident(
    incident_id: IncidentIdPath, request: Request, caller: CallerDep
) -> IncidentView:
    admins = services_of(request).policy.access.administrators
    if not (caller.is_auditor or caller.employee_id in admins):
        raise ProblemException(
            403, "Not allowed", "only auditors and administrators read incidents"
        )
    store = services_of(request).store
    view = await asyncio.to_thread(store.get_incident, incident_id) if store else None
    return view if view is not None else await _query(request, incident_id)


@router.post(
    "/incidents/{incident_id}/restore",
    response_model=IncidentView,
    summary="Lift a suspension (administrators)",
    description="Sign-in comes back (unless the person left meanwhile), with what is still "
    "valid: grants that expired meanwhile stay gone, ended activations stay ended.",
    responses=problem_responses(
        s401=UNAUTHENTICATED,
        s403="Not an administrator",
        s404="No such incident",
        s409="The incident is not holding anyone now",
    ),
)
async def restore(incident_id: IncidentIdPath, request: Request, caller: CallerDep) -> IncidentView:
    handle = temporal_of(request).get_workflow_handle(incident_workflow_id(incident_id))
    ask = RestoreAsk(actor_id=caller.employee_id, is_admin=caller.is_admin)
    try:
        await handle.execute_update(IncidentContract.UPDATE_RESTORE, ask, result_type=IncidentView)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(err)
        if isinstance(cause, ApplicationError) and cause.type == Refusal.NOT_ALLOWED:
            raise ProblemException(403, "Not allowed", reason) from err
        raise ProblemException(409, "Nothing to restore", reason) from err
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise ProblemException(
                409 if await _known(request, incident_id) else 404,
                "Nothing to restore",
                f"incident {incident_id!r} is not holding anyone",
            ) from err
        raise temporal_unavailable(str(err)) from err
    return await _query(request, incident_id)


async def _known(request: Request, incident_id: str) -> bool:
    store = services_of(request).store
    return (
        store is not None and (await asyncio.to_thread(store.get_incident, incident_id)) is not None
    )
