"""Graph-shaped errors: what the SDK's ODataError parser expects to read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


class GraphError(Exception):
    """Raised by handlers; the dispatcher turns it into Graph's error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_body(code: str, message: str, client_request_id: str | None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now_iso(),
                "request-id": str(uuid.uuid4()),
                "client-request-id": client_request_id or str(uuid.uuid4()),
            },
        }
    }


def not_found(key: str) -> GraphError:
    # Graph's wording for a missing directory object, whichever segment named it.
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)
