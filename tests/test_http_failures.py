"""One mapping of HTTP failures to Temporal errors for Graph and SCIM: what retries, after how
long, and which type an operator reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from activities.http_failures import GRAPH, SCIM, retry_after


@pytest.mark.parametrize(
    ("service", "status", "type", "retryable"),
    [
        (GRAPH, 429, "GraphThrottled", True),
        (GRAPH, 503, "GraphUnavailable", True),
        (GRAPH, 500, "GraphServerError", True),
        (GRAPH, 403, "GraphForbidden", False),
        (GRAPH, 404, "GraphNotFound", False),
        (GRAPH, 418, "GraphRequestFailed", False),
        (SCIM, 503, "ScimThrottled", True),
        (SCIM, 408, "ScimServerError", True),
        (SCIM, 409, "ScimConflict", False),
        (SCIM, 422, "ScimRequestRefused", False),
    ],
)
def test_statuses_map_to_named_types(service, status, type, retryable) -> None:
    error = service.for_status("create user", status, {})
    assert error.type == type
    assert error.non_retryable is not retryable
    assert error.message == "create user"


def test_throttling_waits_as_long_as_the_server_asks_either_way_it_says_it() -> None:
    assert SCIM.for_status("x", 429, {"retry-after": "17"}).next_retry_delay == timedelta(
        seconds=17
    )
    when = datetime.now(UTC) + timedelta(seconds=120)
    delay = GRAPH.for_status("x", 429, {"Retry-After": format_datetime(when, usegmt=True)})
    assert delay.next_retry_delay is not None
    assert timedelta(seconds=100) < delay.next_retry_delay <= timedelta(seconds=120)
    # Absent or unreadable: the default wait.
    assert GRAPH.for_status("x", 503, None).next_retry_delay == timedelta(seconds=5)
    assert retry_after({"Retry-After": "soon"}) is None


def test_unsendable_requests_fail_for_good_and_transport_errors_retry() -> None:
    bad = GRAPH.unsendable("get user", UnicodeEncodeError("ascii", "é", 0, 1, "no"))
    assert bad.type == "GraphUnsendableRequest" and bad.non_retryable
    down = SCIM.unreachable("crm: find user", ConnectionError("refused"))
    assert down.type == "ScimUnreachable" and not down.non_retryable
