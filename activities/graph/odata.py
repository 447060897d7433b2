"""Low-level Graph helpers with no I/O: OData quoting, Graph's time format, $batch chunks and errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from temporalio.exceptions import ApplicationError

from activities.graph import errors as graph_errors

BATCH_LIMIT = 20  # Graph's maximum number of requests in one $batch


def odata_quote(value: str) -> str:
    """A string literal for $filter: quoted, with quotes doubled (URL-encode the result too)."""
    return "'" + value.replace("'", "''") + "'"


def segment(value: str) -> str:
    """One URL path segment (an object id), percent-encoded: never a second segment or a query."""
    return quote(value, safe="")


def filter_url(collection: str, expression: str, select: str) -> str:
    """A relative URL `collection?$filter=...&$select=...` for a $batch item, hand-built: every
    character of the expression that a query could mistake (`&`, `+`, `#`, `%`, non-ASCII) is
    percent-encoded, so a group called `R&D` or `Zoë+Team` is looked up as itself."""
    return f"{collection}?$filter={quote(expression, safe='')}&$select={quote(select, safe=',')}"


def graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_graph_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sub_response_error(call: str, failed: list[dict[str, Any]]) -> ApplicationError:
    """One error for a $batch's failed sub-requests: retry after the longest Retry-After if any
    were throttled, otherwise fail on the first permanent error."""
    throttled = [a for a in failed if int(a.get("status", 0)) in (429, 503, 504)]
    if throttled:
        worst = max(throttled, key=lambda a: graph_errors.retry_after_seconds(a.get("headers")))
        failed = [worst]
    first = failed[0]
    error = (first.get("body") or {}).get("error") or {}
    where = f" (group {first['group']!r})" if "group" in first else ""
    return graph_errors.for_status(
        f"{call}{where}, {len(failed)} of the batch failed",
        int(first.get("status", 0)) or 500,
        error.get("code"),
        error.get("message"),
        first.get("headers"),
    )
