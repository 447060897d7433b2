"""Turn Graph failures into Temporal ApplicationErrors (docs/architecture.md, rule 4: Temporal owns retries).

The status mapping is activities/http_failures.py (shared with SCIM); this module reads Graph's
SDK errors: the status, Graph's error code and message.
Messages name the call and Graph's error code, never request bodies (a TAP must never leak).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
from kiota_abstractions.api_error import APIError
from temporalio.exceptions import ApplicationError

from activities import http_failures
from activities.http_failures import GRAPH
from activities.unsendable import UNSENDABLE


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float:
    """Retry-After in seconds, for choosing the longest wait among $batch sub-responses."""
    return (http_failures.retry_after(headers) or http_failures.DEFAULT_RETRY_AFTER).total_seconds()


def for_status(
    call: str,
    status: int,
    code: str | None,
    message: str | None,
    headers: Mapping[str, Any] | None = None,
) -> ApplicationError:
    """The ApplicationError for one failed Graph call (also used for $batch sub-responses)."""
    detail = f"{call}: Graph answered {status}" + (f" {code}" if code else "")
    if message:
        detail += f": {message}"
    return GRAPH.for_status(detail, status, headers)


def to_application_error(err: BaseException, call: str) -> ApplicationError:
    if isinstance(err, APIError):
        status = err.response_status_code or 0
        main = getattr(err, "error", None)  # ODataError carries Graph's {"error": {...}}
        code = getattr(main, "code", None)
        message = getattr(main, "message", None)
        if status == 0:
            return ApplicationError(
                f"{call}: Graph call failed without a status", type="GraphError"
            )
        return for_status(call, status, code, message, err.response_headers)
    if isinstance(err, UNSENDABLE):
        return GRAPH.unsendable(call, err)
    if isinstance(err, httpx.TransportError):
        # Connection refused, reset, timeouts: the next attempt may well succeed.
        return GRAPH.unreachable(call, err)
    raise TypeError(f"not a Graph error: {type(err).__name__}")


def status_of(err: BaseException) -> int | None:
    return err.response_status_code if isinstance(err, APIError) else None


def graph_code(err: BaseException) -> str:
    main = getattr(err, "error", None)
    return str(getattr(main, "code", "") or "")


def graph_message(err: BaseException) -> str:
    main = getattr(err, "error", None)
    return str(getattr(main, "message", "") or "")


@contextmanager
def graph_call(call: str) -> Iterator[None]:
    """Map Graph and transport failures inside the block to ApplicationErrors naming `call`."""
    try:
        yield
    except (APIError, httpx.TransportError, *UNSENDABLE) as err:
        # `from None`: the SDK's exception text is long and may quote the request; our message is
        # self-contained and is all that Temporal records.
        raise to_application_error(err, call) from None
