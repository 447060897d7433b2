"""Wiring of the access endpoints: their services, the caller, the record store and the body as
dependencies.

The caller is whoever the verified bearer token says (docs/architecture.md, rule 5): no body names them, and
only a hired Tenure identity is let in (`api.known_callers`). Bodies are read only once the caller
is known, so an anonymous caller learns nothing about what the API would accept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from temporalio.client import Client

from api.auth import bearer_token
from api.caller import Caller, TokenVerifier
from api.json_body import InvalidBody, parse_model, read_body
from api.known_callers import KnownCallers
from api.problems import ProblemException
from api.query_params import only_declared_query_parameters
from api.settings import ApiSettings
from audit.store import AccessRecordStore
from domain.policy.file import load_policy
from domain.policy.model import Policy
from domain.security.incident import IncidentContract

ACCESS_PREFIX = "/v1/access"
# Every request's workflow id starts so (`request_workflow_id`); anything else is not a request, and
# must not let a caller reach another workflow's updates or queries through these endpoints.
REQUEST_ID_PREFIX = "access-request-"

# A query or an update waits for a worker to answer; the client would wait for an update forever
# (it retries until the update is accepted). Past these, the caller gets a 503 to retry later.
QUERY_TIMEOUT = timedelta(seconds=10)
UPDATE_TIMEOUT = timedelta(seconds=30)

TAG_REQUESTS = "Access requests"


@dataclass
class AccessServices:
    """What the access endpoints need besides Temporal; kept on `app.state.access`."""

    policy: Policy
    task_queue: str
    # None: not configured; the endpoints that need it answer 503 saying what to set.
    verifier: TokenVerifier | None
    store: AccessRecordStore | None
    known_callers: KnownCallers = field(default_factory=KnownCallers)
    # The SIEM's bearer token (incidents); None: not configured.
    siem_token: str | None = field(default=None, repr=False)
    security_task_queue: str = IncidentContract.TASK_QUEUE
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
                AccessRecordStore(settings.access_record_url or settings.access_record_db)
                if settings.access_record_url is not None or settings.access_record_db is not None
                else None
            ),
            siem_token=settings.siem_token,
            security_task_queue=settings.security_task_queue,
        )

    async def aclose(self) -> None:
        if self.verifier is not None:
            await self.verifier.aclose()


def services_of(request: Request) -> AccessServices:
    return request.app.state.access


def temporal_of(request: Request) -> Client:
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
    verifier = services_of(request).verifier
    if verifier is None:
        raise ProblemException(
            503,
            "Access API not configured",
            "This API cannot verify callers' tokens: set TENURE_API_TOKEN_ISSUER (the token "
            "issuer, e.g. https://login.microsoftonline.com/<tenant>/v2.0) and, if not "
            "api://tenure, TENURE_API_TOKEN_AUDIENCE, then restart it.",
        )
    authorization = request.headers.get("authorization")
    caller = await verifier.caller(authorization)
    token = bearer_token(authorization) or ""
    await services_of(request).known_callers.require(temporal_of(request), caller, token)
    return caller


def record_store(request: Request) -> AccessRecordStore:
    store = services_of(request).store
    if store is None:
        raise ProblemException(
            503,
            "Access records not configured",
            "This API has no access record store: set TENURE_ACCESS_RECORD_DB to the database "
            "file the Tenure worker records access requests in (or TENURE_ACCESS_RECORD_URL to "
            "its PostgreSQL database), then restart it.",
        )
    return store


CallerDep = Annotated[Caller, Depends(authenticated_caller)]


async def _query_checked_after_auth(request: Request, _caller: CallerDep) -> None:
    await only_declared_query_parameters(request)


# For the routers of authenticated endpoints: unknown query parameters are refused, after the
# caller is known (the caller dependency runs once per request, however often it is named).
AUTHENTICATED = [Depends(_query_checked_after_auth)]

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M], *, optional: bool = False) -> Any:
    """`Depends` that reads the body as `model`, after the caller is authenticated.

    FastAPI parses body parameters before it runs any dependency; reading the body here instead
    puts authentication first. Document the body with `documented_body(model)`.
    """

    async def read(request: Request, _caller: CallerDep) -> M | None:
        raw = await read_body(request)
        try:
            return parse_model(raw, model, optional=optional)
        except InvalidBody as invalid:
            raise ProblemException(
                422, "Invalid request", invalid.detail, errors=invalid.errors
            ) from None

    reader: Callable[..., Awaitable[M | None]] = read
    return Depends(reader)


def documented_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` naming the JSON body an operation reads through `json_body`."""
    return {
        "requestBody": {
            "required": required,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


StoreDep = Annotated[AccessRecordStore, Depends(record_store)]
RequestIdPath = Annotated[
    str,
    Path(
        description="The request's id, as returned when it was submitted.",
        examples=["access-request-E1001-accounts-payable-3f2a9c1b0d"],
        max_length=300,
        # Request ids are built of employee and package ids and a digest: nothing else.
        pattern=r"^[A-Za-z0-9._:-]+$",
    ),
]
