"""OData query options on our collections: $filter (eq/and), $select, $top and paging."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from emulators.graph.errors import GraphError, bad_request
from emulators.graph.wire import Call

MAX_TOP = 999
DEFAULT_TOP = 100

# `prop eq 'text'` (quotes doubled inside), `prop eq true|false|null`, `prop eq <guid>` (Graph
# writes Edm.Guid values bare, e.g. `resourceId eq 8e881353-...`), joined by `and`.
_CLAUSE = re.compile(
    r"\s*(?P<prop>[A-Za-z]+)\s+eq\s+(?:'(?P<text>(?:[^']|'')*)'|(?P<lit>true|false|null)"
    r"|(?P<guid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))\s*",
    re.IGNORECASE,
)
_AND = re.compile(r"and\b", re.IGNORECASE)

Clause = tuple[str, Any]


def parse_filter(expression: str, allowed: Sequence[str], resource: str) -> list[Clause]:
    clauses: list[Clause] = []
    canonical = {name.lower(): name for name in allowed}
    pos = 0
    while True:
        match = _CLAUSE.match(expression, pos)
        if match is None:
            raise bad_request(
                f"Invalid filter clause: unsupported expression near position {pos}.",
                "BadRequest",
            )
        prop = canonical.get(match["prop"].lower())
        if prop is None:
            raise bad_request(
                "Unsupported or invalid query filter clause specified for property "
                f"'{match['prop']}' of resource '{resource}'.",
                "Request_UnsupportedQuery",
            )
        if match["text"] is not None:
            value: Any = match["text"].replace("''", "'")
        elif match["guid"] is not None:
            value = match["guid"].lower()
        else:
            value = {"true": True, "false": False, "null": None}[match["lit"].lower()]
        clauses.append((prop, value))
        pos = match.end()
        if pos == len(expression):
            return clauses
        more = _AND.match(expression, pos)
        if more is None:
            raise bad_request("Invalid filter clause: only 'eq' joined by 'and' is supported.")
        pos = more.end()


def matches(obj: dict[str, Any], clauses: list[Clause]) -> bool:
    for prop, expected in clauses:
        actual = obj.get(prop)
        if isinstance(expected, str) and isinstance(actual, str):
            if actual.lower() != expected.lower():
                return False
        elif actual != expected:
            return False
    return True


def page_size(call: Call) -> int:
    raw = call.query.get("top")
    if raw is None:
        return DEFAULT_TOP
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return int(raw)


def selection(call: Call) -> list[str] | None:
    raw = call.query.get("select")
    return [p.strip() for p in raw.split(",") if p.strip()] if raw else None


def collection(
    call: Call,
    items: Sequence[dict[str, Any]],
    render: Callable[[dict[str, Any]], dict[str, Any]],
    context: str,
    max_page: int | None = None,
) -> dict[str, Any]:
    """One page of `items` with Graph's @odata.context and, when more remain, @odata.nextLink.

    `max_page` caps a page below what $top asks, as Graph does for some queries (a larger $top
    is not an error there, the pages are just shorter).
    """
    top = page_size(call)
    if max_page is not None:
        top = min(top, max_page)
    token = call.query.get("skiptoken", "0")
    offset = int(token) if token.isdigit() else 0
    page = items[offset : offset + top]
    body: dict[str, Any] = {
        "@odata.context": f"{call.service_root}/$metadata#{context}",
        "value": [render(item) for item in page],
    }
    if offset + top < len(items):
        params = {f"${k}": v for k, v in call.query.items() if k != "skiptoken"}
        params["$skiptoken"] = str(offset + top)
        query = urlencode(params, quote_via=quote, safe="$,'@")
        body["@odata.nextLink"] = f"{call.service_root}{call.path}?{query}"
    return body
