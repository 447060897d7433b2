"""Asking for access and reading requests: submit, my requests, my approvals, one request's story.

The API checks only what needs no knowledge of the person (the package exists, the answers and end
date fit its policy); eligibility and SoD belong to the request workflow.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.access_models import NewAccessRequest, RequestList, RequestSummary, SubmittedRequest
from api.access_problems import (
    NOT_AN_IDENTITY,
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
    AccessServices,
    CallerDep,
    RequestIdPath,
    StoreDep,
    documented_body,
    json_body,
    services_of,
    temporal_of,
)
from api.caller import Caller
from domain.access.request import (
    AccessRequestContract,
    AccessRequestInput,
    RequestStatus,
    RequestView,
    request_workflow_id,
)
from domain.access.rules import answer_errors, requested_end_error
from domain.policy.model import Policy
from domain.search_attributes import EMPLOYEE_ID

log = logging.getLogger(__name__)

router = APIRouter(prefix=ACCESS_PREFIX, tags=[TAG_REQUESTS], dependencies=AUTHENTICATED)


# ---- submitting --------------------------------------------------------------------------------


@router.post(
    "/requests",
    status_code=202,
    response_model=SubmittedRequest,
    summary="Request an access package",
    description=(
        "Asks for an access package for the caller, or (where the package allows it) for one of "
        "the caller's reports. The package, the answers to its questions and the requested end "
        "are checked here; eligibility and separation of duties are checked by the request's "
        "workflow, whose outcome shows in the request's status and story.\n\n"
        "Send an `Idempotency-Key` to make retries safe: the same caller, beneficiary, package and "
        "key always name the same request, even once it has closed."
    ),
    responses=problem_responses(
        s401=UNAUTHENTICATED,
        s403=NOT_AN_IDENTITY,
        s413="Body too large",
        s422="Unknown package, or answers or end date that do not fit its policy (each named)",
        s503=UNCONFIGURED,
    ),
    openapi_extra=documented_body(NewAccessRequest),
)
async def submit_request(
    body: Annotated[NewAccessRequest, json_body(NewAccessRequest)],
    request: Request,
    caller: CallerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Any string unique to this request in the client's eyes (a UUID).",
        ),
    ] = None,
) -> SubmittedRequest:
    services = services_of(request)
    submitted_at = datetime.now(UTC)
    beneficiary_id = body.beneficiary_id or caller.employee_id
    package = services.policy.access.packages.get(body.package_id)
    if package is None:
        raise invalid_request([f"package_id: there is no access package {body.package_id!r}"])
    errors = answer_errors(package.policy, body.justification, body.answers)
    end_error = requested_end_error(package.policy.expiry, submitted_at, body.requested_end)
    if end_error is not None:
        errors.append(end_error)
    if errors:
        raise invalid_request(errors)

    # A key is the client's: scoped to the caller, so two people's keys never name one request.
    key = f"{caller.employee_id}:{idempotency_key}" if idempotency_key else uuid.uuid4().hex
    request_id = request_workflow_id(beneficiary_id, body.package_id, key)
    workflow_input = AccessRequestInput(
        request_id=request_id,
        package_id=body.package_id,
        beneficiary_id=beneficiary_id,
        requester_id=caller.employee_id,
        justification=body.justification,
        answers=body.answers,
        requested_end=body.requested_end,
        submitted_at=submitted_at,
    )
    if idempotency_key:
        # Temporal forgets a closed run after its retention; the record keeps it, and the key with it.
        recorded = await _stored_view(services, request_id)
        if recorded is not None and recorded.status.final:
            return SubmittedRequest(
                request_id=request_id, status=recorded.status, links=_links(request_id)
            )
    client = temporal_of(request)
    try:
        await client.start_workflow(
            AccessRequestContract.WORKFLOW,
            workflow_input,
            id=request_id,
            task_queue=services.task_queue,
            # A repeated key while the request runs: that request. Once it closed (and the record
            # has not caught up): refused here, and answered below with that same request.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(EMPLOYEE_ID, beneficiary_id)]
            ),
            static_summary=f"Access request: {body.package_id} for {beneficiary_id}",
        )
    except WorkflowAlreadyStartedError:
        view = await find_request_view(services, client, request_id)
        if view is None:  # pragma: no cover - a closed run Temporal has already forgotten
            raise temporal_unavailable("the earlier request with this key cannot be read") from None
        return SubmittedRequest(request_id=request_id, status=view.status, links=_links(request_id))
    except (RPCError, RuntimeError) as err:
        log.warning("Temporal refused access request %s: %s", request_id, err)
        raise temporal_unavailable(str(err)) from err
    recorded = await _stored_view(services, request_id)
    status = recorded.status if recorded is not None else RequestStatus.SUBMITTED
    return SubmittedRequest(request_id=request_id, status=status, links=_links(request_id))


def _links(request_id: str) -> dict[str, str]:
    base = f"{ACCESS_PREFIX}/requests/{request_id}"
    return {
        "self": base,
        "decision": f"{base}/decision",
        "cancel": f"{base}/cancel",
        "extension": f"{base}/extension",
    }


# ---- reading -----------------------------------------------------------------------------------


@router.get(
    "/requests",
    response_model=RequestList,
    summary="My access requests",
    description="Requests the caller made or would hold access by, newest first.",
    responses=problem_responses(
        s401=UNAUTHENTICATED, s403=NOT_AN_IDENTITY, s422="Invalid query", s503=UNCONFIGURED
    ),
)
async def list_my_requests(
    caller: CallerDep,
    store: StoreDep,
    status: Annotated[
        RequestStatus | None, Query(description="Only requests in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RequestList:
    views = await asyncio.to_thread(
        store.list_requests, employee_id=caller.employee_id, status=status, limit=limit
    )
    return RequestList(requests=[RequestSummary.of(v) for v in views], count=len(views))


@router.get(
    "/approvals",
    response_model=RequestList,
    summary="Requests awaiting my decision",
    description="Open requests whose current stage has the caller among its approvers and that "
    "the caller has not decided yet.",
    responses=problem_responses(
        s401=UNAUTHENTICATED, s403=NOT_AN_IDENTITY, s422="Invalid query", s503=UNCONFIGURED
    ),
)
async def list_my_approvals(caller: CallerDep, store: StoreDep) -> RequestList:
    views = await asyncio.to_thread(store.awaiting_decision, caller.employee_id)
    return RequestList(requests=[RequestSummary.of(v) for v in views], count=len(views))


@router.get(
    "/requests/{request_id}",
    response_model=RequestView,
    summary="One access request and its story",
    description=(
        "The request with its stages, approvers, deadlines and the story of everything that "
        "happened to it (decisions, refused attempts, reminders, escalations, grant, extensions, "
        "removal). Visible to its requester and beneficiary, to anyone asked to approve it, and "
        "to administrators and auditors; to anyone else it does not exist (404)."
    ),
    responses=problem_responses(
        s401=UNAUTHENTICATED,
        s403=NOT_AN_IDENTITY,
        s404="No such request visible to the caller",
        s422="Invalid request id",
        s503=UNCONFIGURED,
    ),
)
async def get_request(
    request_id: RequestIdPath, request: Request, caller: CallerDep
) -> RequestView:
    services = services_of(request)
    view = None
    if request_id.startswith(REQUEST_ID_PREFIX):
        view = await find_request_view(services, temporal_of(request), request_id)
    if view is None or not may_see_request(caller, view, services.policy):
        raise request_not_found(request_id)
    return view


def may_see_request(caller: Caller, view: RequestView, policy: Policy) -> bool:
    me = caller.employee_id
    if caller.is_admin or caller.is_auditor or me in policy.access.administrators:
        return True
    if me in (view.requester_id, view.beneficiary_id):
        return True
    stages = [*view.stages, *([view.waiting_on] if view.waiting_on is not None else [])]
    return any(me in (*s.approvers, *s.approved_by, *s.denied_by) for s in stages)


async def _stored_view(services: AccessServices, request_id: str) -> RequestView | None:
    if services.store is None:
        return None
    return await asyncio.to_thread(services.store.get_request, request_id)


async def find_request_view(
    services: AccessServices, client: Client, request_id: str
) -> RequestView | None:
    """From the store, else (not recorded yet) from the workflow itself; None when neither has it."""
    view = await _stored_view(services, request_id)
    if view is not None:
        return view
    try:
        return await client.get_workflow_handle(request_id).query(
            AccessRequestContract.QUERY_DETAILS,
            result_type=RequestView,
            rpc_timeout=services.query_timeout,
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise temporal_unavailable(str(err)) from err
    except WorkflowQueryFailedError as err:
        log.warning("request %s did not answer its details query: %s", request_id, err)
        raise temporal_unavailable(f"the request's workflow cannot answer now: {err}") from err
    except RuntimeError as err:
        raise temporal_unavailable(str(err)) from err
