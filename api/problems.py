"""RFC 9457 problem details (`application/problem+json`): the shape of every API error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemError(BaseModel):
    """One thing wrong with the request: which event (by position and id) and which field."""

    index: int | None = Field(None, description="Position of the event in the batch (0-based).")
    event_id: str | None = None
    field: str = Field(description='Dotted path, e.g. "events[3].worker.employee_id".')
    message: str


class Problem(BaseModel):
    """Documents the error body; responses are built by `problem_response`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = None


class ProblemException(Exception):
    """Raised anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def from_exception(exc: ProblemException) -> JSONResponse:
    return problem_response(
        exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers
    )


_INTAKE_DESCRIPTIONS = {
    401: "Missing or wrong intake token",
    413: "Body too large",
    422: "Invalid body; nothing of the batch was accepted",
    503: "Temporal unreachable; retry the whole batch",
}


def openapi_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries so /docs shows the problem shape for each error status.

    `descriptions` says what each status means for this operation (the HR intake's by default).
    """
    meaning = _INTAKE_DESCRIPTIONS if descriptions is None else descriptions
    return {
        status: {
            # Schema by reference only: `model=` would also advertise application/json.
            "description": meaning.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
