"""HTTP failures as Temporal ApplicationErrors, for Graph and SCIM alike (docs/architecture.md,
rule 4: Temporal owns retries).

Throttling and outages are retryable, after the server's Retry-After when it sends one; a request
that can never succeed fails at once as non-retryable. Each service names its error types with
its own prefix (`GraphThrottled`, `ScimNotFound`, ...), so operators reading Temporal UI see which
system refused, and workflows can match on the type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from temporalio.exceptions import ApplicationError

DEFAULT_RETRY_AFTER = timedelta(seconds=5)


@dataclass(frozen=True)
class HttpService:
    """How one service's HTTP statuses map to error types (names without the prefix)."""

    prefix: str
    # Retried after Retry-After (throttling, a service that says it is unavailable).
    throttled: Mapping[int, str]
    # Never retried: the same request would be refused again.
    permanent: Mapping[int, str]
    # Any other 4xx, also permanent.
    refused: str
    # A failure before any answer (connection refused, reset, timeout): retried.
    transport: str
    # Statuses below 500 that still mean "try again later".
    retry_statuses: frozenset[int] = field(default_factory=frozenset)

    def error_type(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def for_status(
        self, detail: str, status: int, headers: Mapping[str, Any] | None = None
    ) -> ApplicationError:
        """The error for one failed call answered with `status`; `detail` names the call."""
        if status in self.throttled:
            return ApplicationError(
                detail,
                type=self.error_type(self.throttled[status]),
                next_retry_delay=retry_after(headers) or DEFAULT_RETRY_AFTER,
            )
        if status >= 500 or status in self.retry_statuses:
            return ApplicationError(detail, type=self.error_type("ServerError"))
        return ApplicationError(
            detail,
            type=self.error_type(self.permanent.get(status, self.refused)),
            non_retryable=True,
        )

    def unsendable(self, detail: str, err: BaseException) -> ApplicationError:
        """A request that could not even be put on the wire (a value no header or URL can
        hold): every attempt would fail alike, so it fails for good instead of for ever."""
        return ApplicationError(
            f"{detail}: the request cannot be sent ({type(err).__name__}: {err})",
            type=self.error_type("UnsendableRequest"),
            non_retryable=True,
        )

    def unreachable(self, detail: str, err: BaseException) -> ApplicationError:
        return ApplicationError(
            f"{detail}: {type(err).__name__}: {err}", type=self.error_type(self.transport)
        )


GRAPH = HttpService(
    prefix="Graph",
    throttled={429: "Throttled", 503: "Unavailable", 504: "Unavailable"},
    permanent={400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"},
    refused="RequestFailed",
    transport="TransportError",
)

SCIM = HttpService(
    prefix="Scim",
    throttled={429: "Throttled", 503: "Throttled"},
    permanent={
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
    },
    refused="RequestRefused",
    transport="Unreachable",
    retry_statuses=frozenset({408}),
)


def retry_after(headers: Mapping[str, Any] | None) -> timedelta | None:
    """Retry-After as delta-seconds or an HTTP date (RFC 9110 §10.2.3), matched without regard
    to case; None when absent or unreadable."""
    value = None
    if headers:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - datetime.now(UTC), timedelta(0))
