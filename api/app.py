"""The HTTP front door: wires settings, auth, intake and Temporal into a FastAPI app."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from api import problems
from api.access_actions import router as access_actions_router
from api.access_models import CancelBody, DecisionBody, ExtensionBody, NewAccessRequest, RevokeBody
from api.access_requests import router as access_requests_router
from api.access_services import AccessServices
from api.audit_export import router as audit_export_router
from api.auth import require_intake_token
from api.incidents import router as incidents_router
from api.incidents import siem_router as incidents_siem_router
from api.intake import (
    EventBatch,
    IntakeResult,
    TemporalUnavailable,
    claim_event_ids,
    hand_to_temporal,
    parse_intake,
)
from api.json_body import MAX_BODY_BYTES, InvalidBody, read_body
from api.limits import MAX_HEADER_BYTES, HeaderLimits
from api.pim import router as pim_router
from api.pim_eligibilities import router as pim_eligibilities_router
from api.problems import PROBLEM_MEDIA_TYPE
from api.query_params import only_declared_query_parameters
from api.review_models import (
    ConfirmApplyBody,
    EndStageBody,
    ReviewDecisionBody,
    StartReviewBody,
)
from api.reviews import router as reviews_router
from api.routes import allowed_methods
from api.settings import ApiSettings
from api.sod import router as sod_router
from connection.temporal import connect, temporal_is_healthy
from domain.audit import AccessChange
from domain.lifecycle.events import MAX_EVENTS_PER_BATCH, HrEvent
from domain.policy.model import Policy
from domain.reviews.items import ReportRow

log = logging.getLogger(__name__)


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    temporal: Literal["ok", "unreachable"]


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

EVENTS_PATH = "/v1/hr/events"

_HIRE_EXAMPLE = {
    "event_id": "hr-000123",
    "type": "hire",
    "effective_at": "2026-12-01T09:00:00Z",
    "occurred_at": "2026-11-20T15:04:05Z",
    "worker": {
        "employee_id": "E1001",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "department": "Finance",
        "job_title": "Analyst",
        "manager_id": "E0001",
        "location": "London",
        "employment_type": "employee",
        "attributes": {"clearance": "secret"},
    },
}
_EXAMPLES = {
    "hire": {"summary": "One event", "value": _HIRE_EXAMPLE},
    "batch": {
        "summary": "A batch",
        "value": {
            "events": [
                _HIRE_EXAMPLE,
                {
                    "event_id": "hr-000124",
                    "type": "terminate",
                    "effective_at": "2026-12-31T17:00:00Z",
                    "worker": {"employee_id": "E0999"},
                },
            ]
        },
    },
}


def create_app(
    settings: ApiSettings, client: Client | None = None, *, policy: Policy | None = None
) -> FastAPI:
    """The API. Pass `client` to share one (tests); otherwise it connects at startup.

    The policy file (`settings.policy_path`, unless `policy` is given) is loaded here, once: a bad
    file raises `PolicyFileError` naming the file, the place in it and the reason.
    """
    access = AccessServices.from_settings(settings, policy)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if client is not None:
            app.state.temporal = client
        else:
            try:
                app.state.temporal = await connect(settings.temporal)
            except Exception as err:
                raise RuntimeError(
                    f"cannot reach Temporal at {settings.temporal.address} "
                    f"(namespace {settings.temporal.namespace}): {err}"
                ) from err
            log.info("connected to Temporal at %s", settings.temporal.address)
        try:
            yield
        finally:
            await access.aclose()

    app = FastAPI(
        title="Tenure API",
        version="1.0",
        summary="HR events in, identity lifecycle workflows and access requests out.",
        lifespan=lifespan,
    )
    if client is not None:
        # Set now as well: test transports (httpx.ASGITransport) do not run the lifespan.
        app.state.temporal = client
    app.state.access = access
    _install_error_handlers(app)
    _install_request_id(app)
    # Outermost: oversize headers are refused before anything else reads them.
    app.add_middleware(HeaderLimits)

    @app.post(
        EVENTS_PATH,
        status_code=202,
        summary="Submit HR events",
        description=(
            'One HR event, or `{"events": [...]}` with 1 to '
            f"{MAX_EVENTS_PER_BATCH} events (at most {MAX_BODY_BYTES} bytes). The whole body is "
            "validated first: if any event is invalid, nothing is accepted. A 202 means every "
            "event is durably with Temporal. Repeating an event_id with the same content is safe: "
            "it is applied once. Reusing an event_id with different content is refused (422): an "
            "event_id names one event. Timestamps are ISO-8601 strings with a timezone; names are "
            "kept in Unicode NFC and may hold no control, bidirectional or invisible formatting "
            "character."
        ),
        response_model=IntakeResult,
        responses=problems.openapi_responses(401, 413, 422, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _body_schema_ref(), "examples": _EXAMPLES}
                },
            }
        },
        tags=["HR intake"],
    )
    async def submit_events(request: Request) -> Response:
        require_intake_token(request.headers.get("authorization"), settings.intake_token)
        await only_declared_query_parameters(request)
        raw = await read_body(request)
        try:
            body = parse_intake(raw)
            record = request.app.state.access.store
            if record is not None:
                await asyncio.to_thread(claim_event_ids, record, body, datetime.now(UTC))
        except InvalidBody as invalid:
            return problems.problem_response(
                422, "Invalid HR events", invalid.detail, errors=invalid.errors
            )
        except sqlite3.Error as err:
            log.warning("the record cannot take HR event ids: %s", err)
            return problems.problem_response(
                503,
                "Record unavailable",
                "The record that keeps event ids could not be written; nothing was accepted. "
                "Retry shortly.",
                headers={"Retry-After": "5"},
            )
        try:
            result = await hand_to_temporal(
                request.app.state.temporal, body.events, task_queue=settings.task_queue
            )
        except TemporalUnavailable as err:
            log.warning("Temporal refused HR events: %s", err)
            return problems.problem_response(
                503,
                "Temporal unavailable",
                "Temporal did not take the events; some may already be delivered, which is safe: "
                f"retry the whole batch (repeated event_ids are applied once). Cause: {err}",
                headers={"Retry-After": "5"},
            )
        return JSONResponse(result.model_dump(mode="json"), status_code=202)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness and Temporal reachability",
        dependencies=[Depends(only_declared_query_parameters)],
        response_model=Health,
        responses={
            503: {"model": Health, "description": "Temporal is unreachable"},
            **problems.openapi_responses(422, descriptions={422: "Unknown query parameter"}),
        },
    )
    async def healthz(request: Request) -> JSONResponse:
        if await temporal_is_healthy(request.app.state.temporal):
            return JSONResponse({"status": "ok", "temporal": "ok"})
        return JSONResponse({"status": "unavailable", "temporal": "unreachable"}, status_code=503)

    app.include_router(access_requests_router)
    app.include_router(access_actions_router)
    app.include_router(audit_export_router)
    app.include_router(reviews_router)
    app.include_router(pim_router)
    app.include_router(pim_eligibilities_router)
    app.include_router(incidents_siem_router)
    app.include_router(incidents_router)
    app.include_router(sod_router)
    _document_body_models(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(problems.ProblemException)
    async def on_problem(_: Request, exc: problems.ProblemException) -> JSONResponse:
        return problems.from_exception(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_validation_error(e) for e in exc.errors()]
        listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return problems.problem_response(
            422, "Invalid request", f"Invalid request: {listed}{more}", errors=errors
        )

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        # A bug of ours, never the caller's input: log it whole, answer without internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problems.problem_response(
            500, "Internal Server Error", "An unexpected error occurred; it has been logged."
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        if exc.status_code == 405:
            # Starlette names only the first route of the path; the path may have several.
            allowed = allowed_methods(request.app, request.scope)
            if request.method == "OPTIONS" and allowed:
                return Response(status_code=204, headers={"Allow": ", ".join(allowed)})
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}."
        return problems.problem_response(
            exc.status_code, _reason(exc.status_code), detail, headers=headers
        )


def _validation_error(error: Any) -> dict[str, str]:
    """`{field, message}` of one FastAPI validation error, as `query.status` or
    `path.request_id`. Bodies never reach FastAPI's validation: `api.json_body` reads them."""
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return {"field": ".".join(str(p) for p in error.get("loc", ())), "message": message}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _install_request_id(app: FastAPI) -> None:
    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Echo a caller's id (so their logs and ours line up) or mint one.
        incoming = request.headers.get("x-request-id", "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-Id"] = rid
        return response


# Models that only the hand-written parts of the OpenAPI document refer to.
_DOCUMENTED_MODELS: TypeAdapter[Any] = TypeAdapter(
    HrEvent
    | EventBatch
    | problems.Problem
    | AccessChange
    | NewAccessRequest
    | DecisionBody
    | ExtensionBody
    | CancelBody
    | RevokeBody
    | StartReviewBody
    | ReviewDecisionBody
    | ConfirmApplyBody
    | EndStageBody
    | ReportRow
)


def _body_schema_ref() -> dict[str, Any]:
    return {
        "oneOf": [
            {"$ref": "#/components/schemas/HrEvent"},
            {"$ref": "#/components/schemas/EventBatch"},
        ]
    }


def _document_body_models(app: FastAPI) -> None:
    """Add the schemas the request body and problem responses refer to (HrEvent, Problem...)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            definitions = _DOCUMENTED_MODELS.json_schema(
                ref_template="#/components/schemas/{model}", mode="validation"
            ).get("$defs", {})
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(definitions)
            _problems_for_validation_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problems_for_validation_errors(schema: dict[str, Any]) -> None:
    """Every 422 is problem+json (not FastAPI's default `HTTPValidationError`), and every
    operation documents the 431 that `api.limits` answers for oversize headers."""
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault(
                "431",
                {
                    "description": f"Request headers larger than {MAX_HEADER_BYTES} bytes",
                    "content": problem,
                },
            )
            answer = operation.get("responses", {}).get("422")
            if answer is not None:
                answer["content"] = problem
                if answer.get("description") == "Validation Error":
                    answer["description"] = "Invalid request (each field named)"
    schemas = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
