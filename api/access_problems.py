"""The problems the access endpoints answer with, and how their OpenAPI operations document them."""

from __future__ import annotations

from typing import Any

from api import problems
from api.problems import ProblemException

UNAUTHENTICATED = "Missing, expired or invalid access token"
NOT_AN_IDENTITY = "The token is valid, but names nobody Tenure manages as a hired identity"
UNCONFIGURED = (
    "The API is not configured for this (the detail says what to set), or Temporal is unreachable"
)


def problem_responses(**meanings: str) -> dict[int | str, dict[str, Any]]:
    """Problem responses for an operation: `problem_responses(s401="...", s404="...")`."""
    statuses = {int(key.removeprefix("s")): text for key, text in meanings.items()}
    return problems.openapi_responses(*statuses, descriptions=statuses)


def invalid_request(messages: list[str]) -> ProblemException:
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


def request_not_found(request_id: str) -> ProblemException:
    return ProblemException(404, "Not Found", f"There is no access request {request_id!r}.")


def temporal_unavailable(cause: str) -> ProblemException:
    return ProblemException(
        503,
        "Temporal unavailable",
        f"Temporal did not answer; retry shortly. Cause: {cause}",
        headers={"Retry-After": "5"},
    )
