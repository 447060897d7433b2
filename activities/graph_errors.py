"""Turn Graph failures into Temporal ApplicationErrors (DESIGN.md rule 4: Temporal owns retries).

Throttling and unavailability retry after the server's Retry-After; a request that can never succeed
(400, 401, 403, a 404 where the object must exist) fails at once with a type an operator can read.
Messages name the call and Graph's error code, never request bodies (a TAP must never leak).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from kiota_abstractions.api_error import APIError
from temporalio.exceptions import ApplicationError

from activities.unsendable import UNSENDABLE

DEFAULT_RETRY_AFTER_SECONDS = 5.0

_THROTTLED = {429: "GraphThrottled", 503: "GraphUnavailable", 504: "GraphUnavailable"}
_PERMANENT = {
    400: "GraphBadRequest",
    401: "GraphUnauthorized",
    403: "GraphForbidden",
    404: "GraphNotFound",
}


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float:
    """Retry-After as seconds (delta-seconds or an HTTP date); the fallback when absent or bad."""
    value = None
    if headers:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    text = str(value).strip()
    if text.isdigit():
        return float(text)
    try:
        return max((parsedate_to_datetime(text) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_SECONDS


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
    if status in _THROTTLED:
        delay = retry_after_seconds(headers)
        return ApplicationError(
            detail,
            type=_THROTTLED[status],
            next_retry_delay=timedelta(seconds=delay),
        )
    if status >= 500:
        return ApplicationError(detail, type="GraphServerError")
    return ApplicationError(
        detail, type=_PERMANENT.get(status, "GraphRequestFailed"), non_retryable=True
    )


def unsendable(err: BaseException, call: str) -> ApplicationError:
    """A request that could not even be put on the wire (a value no header or URL can hold):
    every attempt would fail the same way, so it fails for good instead of retrying forever."""
    return ApplicationError(
        f"{call}: the request cannot be sent ({type(err).__name__}: {err})",
        type="GraphUnsendableRequest",
        non_retryable=True,
    )


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
        return unsendable(err, call)
    if isinstance(err, httpx.TransportError):
        # Connection refused, reset, timeouts: the next attempt may well succeed.
        return ApplicationError(
            f"{call}: transport error {type(err).__name__}", type="GraphTransportError"
        )
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
