"""Access requests through the API: ask for a package, decide, extend, cancel, revoke; audit export.

The caller is whoever the verified bearer token says (DESIGN.md rule 5): no body names them. The
API checks only what needs no knowledge of the person (the package exists, the answers and end date
fit its policy). Eligibility, SoD and who may decide belong to the request workflow, whose update
validators refuse what they must; the API turns their refusals into statuses and reports each
refused attempt back to the workflow so the request's record keeps who tried and why.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import problems
from api.caller import Caller, TokenVerifier
from api.problems import ProblemException
from api.settings import ApiSettings
from audit.store import AccessRecordStore
from domain.access_policy import EmployeeId
from domain.access_request import (
    AccessRequestContract,
    AccessRequestInput,
    Actor,
    CancelInput,
    DecideInput,
    Decision,
    ExtendInput,
    Refusal,
    RefusedAttempt,
    RequestStatus,
    RequestView,
    RevokeInput,
    StageView,
    UpdateAnswer,
    request_workflow_id,
)
from domain.access_rules import answer_errors, requested_end_error
from domain.audit import AccessChange
from domain.policy import Policy
from domain.policy_file import load_policy
from domain.search_attributes import EMPLOYEE_ID

log = logging.getLogger(__name__)

ACCESS_PREFIX = "/v1/access"
AUDIT_PREFIX = "/v1/audit"
# Every request's workflow id starts so (`request_workflow_id`); anything else is not a request, and
# must not let a caller reach another workflow's updates or queries through these endpoints.
REQUEST_ID_PREFIX = "access-request-"
NDJSON = "application/x-ndjson"

# A query or an update waits for a worker to answer; the client would wait for an update forever
# (it retries until the update is accepted). Past these, the caller gets a 503 to retry later.
QUERY_TIMEOUT = timedelta(seconds=10)
UPDATE_TIMEOUT = timedelta(seconds=30)
# Lines read from the record store per hop to its thread during an export.
EXPORT_CHUNK = 500

TAG_REQUESTS = "Access requests"
TAG_AUDIT = "Audit"


# ---- wiring ------------------------------------------------------------------------------------


@dataclass
class AccessServices:
    """What the access endpoints need besides Temporal; kept on `app.state.access`."""

    policy: Policy
    task_queue: str
    # None: not configured; the endpoints that need it answer 503 saying what to set.
    verifier: TokenVerifier | None
    store: AccessRecordStore | None
    query_timeout: timedelta = QUERY_TIMEOUT
    update_timeout: timedelta = UPDATE_TIMEOUT

    @classmethod
    def from_settings(cls, settings: ApiSettings, policy: Policy | None = None) -> AccessServices:
        """Loads the policy file now: a bad file fails startup with its message (PolicyFileError)."""
        return cls(
            policy=policy if policy is not None else load_policy(settings.policy_path),
            task_queue=settings.task_queue,
            verifier=TokenVerifier(settings.tokens) if settings.tokens is not None else None,
            store=(
                AccessRecordStore(settings.access_record_db)
                if settings.access_record_db is not None
                else None
            ),
        )

    async def aclose(self) -> None:
        if self.verifier is not None:
            await self.verifier.aclose()


def _services(request: Request) -> AccessServices:
    return request.app.state.access


def _temporal(request: Request) -> Client:
    return request.app.state.temporal


# Documents the scheme (the /docs "Authorize" button); the verifier reads the raw header itself.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AccessToken",
    description="An Entra ID access token for the Tenure API (audience api://tenure by default).",
)


async def authenticated_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Caller:
    verifier = _services(request).verifier
    if verifier is None:
        raise ProblemException(
            503,
            "Access API not configured",
            "This API cannot verify callers' tokens: set TENURE_API_TOKEN_ISSUER (the token "
            "issuer, e.g. https://login.microsoftonline.com/<tenant>/v2.0) and, if not "
            "api://tenure, TENURE_API_TOKEN_AUDIENCE, then restart it.",
        )
    return await verifier.caller(request.headers.get("authorization"))


def record_store(request: Request) -> AccessRecordStore:
    store = _services(request).store
    if store is None:
        raise ProblemException(
            503,
            "Access records not configured",
            "This API has no access record store: set TENURE_ACCESS_RECORD_DB to the database "
            "file the Tenure worker records access requests in, then restart it.",
        )
    return store


CallerDep = Annotated[Caller, Depends(authenticated_caller)]
StoreDep = Annotated[AccessRecordStore, Depends(record_store)]
RequestIdPath = Annotated[
    str,
    Path(
        description="The request's id, as returned when it was submitted.",
        examples=["access-request-E1001-accounts-payable-3f2a9c1b0d"],
        max_length=300,
    ),
]


# ---- bodies and answers ------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewAccessRequest(_Body):
    """A request for an access package. The requester is the caller (from the token)."""

    package_id: str = Field(min_length=1, max_length=64, examples=["accounts-payable"])
    beneficiary_id: EmployeeId | None = Field(
        None,
        description="Who would hold the access; absent means the caller. Requesting for someone "
        "else is allowed only where the package lets managers request for their reports.",
        examples=["E1002"],
    )
    justification: str = Field("", max_length=2000)
    answers: dict[str, Annotated[str, Field(max_length=4000)]] = Field(
        default_factory=dict,
        description="Answers to the package's questions, by question id.",
        examples=[{"ticket": "CHG-1234", "environment": "eu"}],
    )
    requested_end: AwareDatetime | None = Field(
        None,
        description="When the access should end, for packages whose end the requester chooses "
        "(within the policy's maximum); must carry a timezone.",
    )


class DecisionBody(_Body):
    decision: Decision
    comment: str = Field("", max_length=2000)


class ExtensionBody(_Body):
    new_end: AwareDatetime = Field(description="The new end of the access, with a timezone.")
    justification: str = Field("", max_length=2000)


class CancelBody(_Body):
    reason: str = Field("", max_length=2000)


class RevokeBody(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class SubmittedRequest(BaseModel):
    request_id: str
    status: RequestStatus
    links: dict[str, str] = Field(description="Where to read and act on the request.")


class RequestSummary(BaseModel):
    """A request in a list: who, what, where it stands; its full story is at its own URL."""

    request_id: str
    package_id: str
    package_name: str
    beneficiary_id: str
    requester_id: str
    status: RequestStatus
    submitted_at: datetime
    waiting_on: StageView | None = None
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    closed_at: datetime | None = None
    updated_at: datetime

    @classmethod
    def of(cls, view: RequestView) -> RequestSummary:
        return cls.model_validate(view.model_dump(include=set(cls.model_fields)))


class RequestList(BaseModel):
    requests: list[RequestSummary]
    count: int


def _links(request_id: str) -> dict[str, str]:
    base = f"{ACCESS_PREFIX}/requests/{request_id}"
    return {
        "self": base,
        "decision": f"{base}/decision",
        "cancel": f"{base}/cancel",
        "extension": f"{base}/extension",
    }


def _responses(**meanings: str) -> dict[int | str, dict[str, Any]]:
    """Problem responses for an operation: `_responses(s401="...", s404="...")`."""
    statuses = {int(key.removeprefix("s")): text for key, text in meanings.items()}
    return problems.openapi_responses(*statuses, descriptions=statuses)


_AUTH = "Missing, expired or invalid access token"
_UNCONFIGURED = (
    "The API is not configured for this (the detail says what to set), or Temporal is unreachable"
)

router = APIRouter(prefix=ACCESS_PREFIX, tags=[TAG_REQUESTS])
audit_router = APIRouter(prefix=AUDIT_PREFIX, tags=[TAG_AUDIT])


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
    responses=_responses(
        s401=_AUTH,
        s422="Unknown package, or answers or end date that do not fit its policy (each named)",
        s503=_UNCONFIGURED,
    ),
)
async def submit_request(
    body: NewAccessRequest,
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
    services = _services(request)
    submitted_at = datetime.now(UTC)
    beneficiary_id = body.beneficiary_id or caller.employee_id
    package = services.policy.access.packages.get(body.package_id)
    if package is None:
        raise _invalid([f"package_id: there is no access package {body.package_id!r}"])
    errors = answer_errors(package.policy, body.justification, body.answers)
    end_error = requested_end_error(package.policy.expiry, submitted_at, body.requested_end)
    if end_error is not None:
        errors.append(end_error)
    if errors:
        raise _invalid(errors)

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
    client = _temporal(request)
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
        view = await _find_view(services, client, request_id)
        if view is None:  # pragma: no cover - a closed run Temporal has already forgotten
            raise _temporal_unavailable(
                "the earlier request with this key cannot be read"
            ) from None
        return SubmittedRequest(request_id=request_id, status=view.status, links=_links(request_id))
    except (RPCError, RuntimeError) as err:
        log.warning("Temporal refused access request %s: %s", request_id, err)
        raise _temporal_unavailable(str(err)) from err
    recorded = await _stored_view(services, request_id)
    status = recorded.status if recorded is not None else RequestStatus.SUBMITTED
    return SubmittedRequest(request_id=request_id, status=status, links=_links(request_id))


def _invalid(messages: list[str]) -> ProblemException:
    """A 422 from `field: message` texts (the form the access rules give)."""
    errors = [_field_error(text) for text in messages]
    return ProblemException(
        422,
        "Invalid access request",
        "The request cannot be accepted: "
        + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
        errors=errors,
    )


def _field_error(text: str) -> dict[str, str]:
    field, sep, message = text.partition(": ")
    if sep and field and " " not in field:
        return {"field": field, "message": message}
    return {"field": "(body)", "message": text}


# ---- reading -----------------------------------------------------------------------------------


@router.get(
    "/requests",
    response_model=RequestList,
    summary="My access requests",
    description="Requests the caller made or would hold access by, newest first.",
    responses=_responses(s401=_AUTH, s503=_UNCONFIGURED),
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
    responses=_responses(s401=_AUTH, s503=_UNCONFIGURED),
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
    responses=_responses(
        s401=_AUTH, s404="No such request visible to the caller", s503=_UNCONFIGURED
    ),
)
async def get_request(
    request_id: RequestIdPath, request: Request, caller: CallerDep
) -> RequestView:
    services = _services(request)
    view = None
    if request_id.startswith(REQUEST_ID_PREFIX):
        view = await _find_view(services, _temporal(request), request_id)
    if view is None or not _may_see(caller, view, services.policy):
        raise _not_found(request_id)
    return view


def _may_see(caller: Caller, view: RequestView, policy: Policy) -> bool:
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


async def _find_view(
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
        raise _temporal_unavailable(str(err)) from err
    except WorkflowQueryFailedError as err:
        log.warning("request %s did not answer its details query: %s", request_id, err)
        raise _temporal_unavailable(f"the request's workflow cannot answer now: {err}") from err
    except RuntimeError as err:
        raise _temporal_unavailable(str(err)) from err


# ---- acting ------------------------------------------------------------------------------------

_ACT_RESPONSES = {
    "s401": _AUTH,
    "s404": "No such request",
    "s409": "The request is closed, or its current stage no longer takes this action",
    "s503": _UNCONFIGURED,
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
    responses=_responses(
        **_ACT_RESPONSES,
        s403="The caller may not decide this request (the detail says why)",
        s422="Malformed body",
    ),
)
async def decide(
    request_id: RequestIdPath, body: DecisionBody, request: Request, caller: CallerDep
) -> UpdateAnswer:
    actor = _actor(caller)
    update = DecideInput(actor=actor, decision=body.decision, comment=body.comment)
    return await _act(request, request_id, actor, AccessRequestContract.UPDATE_DECIDE, update)


@router.post(
    "/requests/{request_id}/extension",
    response_model=UpdateAnswer,
    summary="Ask to extend granted access",
    description=(
        "Asks to move the end of granted access. The package's policy says how far and whether "
        "its approvers must agree again (then the request shows a new approval round)."
    ),
    responses=_responses(
        **_ACT_RESPONSES,
        s403="The caller may not extend this access",
        s422="Malformed body, or a new end the package's policy does not allow",
    ),
)
async def extend(
    request_id: RequestIdPath, body: ExtensionBody, request: Request, caller: CallerDep
) -> UpdateAnswer:
    actor = _actor(caller)
    update = ExtendInput(actor=actor, new_end=body.new_end, justification=body.justification)
    return await _act(request, request_id, actor, AccessRequestContract.UPDATE_EXTEND, update)


@router.post(
    "/requests/{request_id}/cancel",
    response_model=UpdateAnswer,
    summary="Cancel a request",
    description="Withdraws a request that has not been granted yet; only its requester may.",
    responses=_responses(
        **_ACT_RESPONSES, s403="The caller may not cancel this request", s422="Malformed body"
    ),
)
async def cancel(
    request_id: RequestIdPath,
    request: Request,
    caller: CallerDep,
    body: CancelBody | None = None,
) -> UpdateAnswer:
    actor = _actor(caller)
    update = CancelInput(actor=actor, reason=body.reason if body is not None else "")
    return await _act(request, request_id, actor, AccessRequestContract.UPDATE_CANCEL, update)


@router.post(
    "/requests/{request_id}/revoke",
    response_model=UpdateAnswer,
    summary="Revoke granted access (administrators)",
    description="Removes granted access now. Administrators only: holders of the Tenure.Admin "
    "app role or the policy's access administrators.",
    responses=_responses(
        **_ACT_RESPONSES, s403="The caller is not an administrator", s422="Malformed body"
    ),
)
async def revoke(
    request_id: RequestIdPath, body: RevokeBody, request: Request, caller: CallerDep
) -> UpdateAnswer:
    actor = _actor(caller)
    update = RevokeInput(actor=actor, reason=body.reason)
    return await _act(request, request_id, actor, AccessRequestContract.UPDATE_REVOKE, update)


def _actor(caller: Caller) -> Actor:
    # From the verified token only; the workflow also knows the policy's administrators.
    return Actor(employee_id=caller.employee_id, is_admin=caller.is_admin)


async def _act(
    request: Request, request_id: str, actor: Actor, update_name: str, update: BaseModel
) -> UpdateAnswer:
    """Run the update; map its refusal to a status (and record a NOT_ALLOWED one in the request)."""
    if not request_id.startswith(REQUEST_ID_PREFIX):
        raise _not_found(request_id)
    handle = _temporal(request).get_workflow_handle(request_id)
    try:
        async with asyncio.timeout(_services(request).update_timeout.total_seconds()):
            return await handle.execute_update(update_name, update, result_type=UpdateAnswer)
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
            raise _invalid([reason]) from err
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
            raise _not_found(request_id) from err
        raise _temporal_unavailable(str(err)) from err
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
        raise _temporal_unavailable(str(err)) from err


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
        raise _temporal_unavailable(str(err)) from err
    return True


def _not_found(request_id: str) -> ProblemException:
    return ProblemException(404, "Not Found", f"There is no access request {request_id!r}.")


def _temporal_unavailable(cause: str) -> ProblemException:
    return ProblemException(
        503,
        "Temporal unavailable",
        f"Temporal did not answer; retry shortly. Cause: {cause}",
        headers={"Retry-After": "5"},
    )


# ---- audit -------------------------------------------------------------------------------------


@audit_router.get(
    "/access-changes",
    summary="Export access changes (auditors)",
    description=(
        "Every grant, extension and removal of access, oldest first, as JSON lines "
        "(`application/x-ndjson`, one AccessChange per line). Auditors and administrators only."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One AccessChange per line",
            "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/AccessChange"}}},
        },
        **_responses(
            s401=_AUTH,
            s403="The caller is neither an auditor nor an administrator",
            s503=_UNCONFIGURED,
        ),
    },
)
async def export_access_changes(
    caller: CallerDep,
    store: StoreDep,
    since: Annotated[
        AwareDatetime | None, Query(description="Only changes at or after this time.")
    ] = None,
    employee_id: Annotated[
        EmployeeId | None, Query(description="Only changes to this person's access.")
    ] = None,
) -> StreamingResponse:
    if not caller.is_auditor:  # administrators count as auditors
        raise ProblemException(
            403, "Not allowed", "Exporting access changes needs the Tenure.Auditor app role."
        )
    return StreamingResponse(_ndjson(store, since, employee_id), media_type=NDJSON)


async def _ndjson(
    store: AccessRecordStore, since: datetime | None, employee_id: str | None
) -> AsyncIterator[bytes]:
    # The store reads a page per short connection, so each chunk may come from any thread.
    changes = store.iter_access_changes(since=since, employee_id=employee_id)
    while chunk := await asyncio.to_thread(_take, changes, EXPORT_CHUNK):
        yield "".join(change.model_dump_json() + "\n" for change in chunk).encode()


def _take(changes: Iterator[AccessChange], count: int) -> list[AccessChange]:
    chunk = []
    for change in changes:
        chunk.append(change)
        if len(chunk) == count:
            break
    return chunk
