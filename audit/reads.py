"""The access record's reads: requests with their stories put back, and pages of access changes.

Each function runs on a connection the store opens for it; on SQLite that connection reads one
snapshot (a deferred transaction), on PostgreSQL it reads committed rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, Select, or_, select, tuple_

from audit.schema import access_changes, requests, story_lines, waiting_approvers
from audit.writes import CHUNK
from domain.access.request import RequestStatus, RequestView, StoryEntry


def get_request(conn: Connection, request_id: str) -> RequestView | None:
    view = conn.execute(
        select(requests.c.view).where(requests.c.request_id == request_id)
    ).scalar_one_or_none()
    return None if view is None else _views(conn, [view])[0]


def list_requests(
    conn: Connection,
    *,
    employee_id: str | None,
    status: str | None,
    limit: int,
    package_prefix: str | None = None,
) -> list[RequestView]:
    query: Select[tuple[str]] = select(requests.c.view)
    if package_prefix is not None:
        # PIM runs are kept as requests whose package is `pim:<role>` or `pim-eligible:<role>`.
        query = query.where(requests.c.package_id.startswith(package_prefix, autoescape=True))
    if employee_id is not None:
        query = query.where(
            or_(requests.c.requester_id == employee_id, requests.c.beneficiary_id == employee_id)
        )
    if status is not None:
        query = query.where(requests.c.status == RequestStatus(status).value)
    query = query.order_by(requests.c.submitted_at.desc(), requests.c.request_id.desc())
    return _views(conn, list(conn.execute(query.limit(limit)).scalars()))


def awaiting_decision(conn: Connection, employee_id: str) -> list[RequestView]:
    query = (
        select(requests.c.view)
        .join(waiting_approvers, waiting_approvers.c.request_id == requests.c.request_id)
        .where(waiting_approvers.c.employee_id == employee_id)
        .order_by(requests.c.submitted_at, requests.c.request_id)
    )
    return _views(conn, list(conn.execute(query).scalars()))


def access_changes_page(
    conn: Connection,
    *,
    since: datetime | None,
    employee_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Row[tuple[datetime, str, str]]]:
    """Up to `limit` changes in time order (ties by change id), after the (at, change_id) given."""
    query = select(access_changes.c.at, access_changes.c.change_id, access_changes.c.change)
    if since is not None:
        query = query.where(access_changes.c.at >= since)
    if employee_id is not None:
        query = query.where(access_changes.c.employee_id == employee_id)
    if after is not None:
        query = query.where(tuple_(access_changes.c.at, access_changes.c.change_id) > after)
    query = query.order_by(access_changes.c.at, access_changes.c.change_id).limit(limit)
    return conn.execute(query).all()


def _views(conn: Connection, view_rows: list[str]) -> list[RequestView]:
    """Views with their full story put back from story_lines, in the order given."""
    views = [json.loads(v) for v in view_rows]
    ids = list(dict.fromkeys(v["request_id"] for v in views))
    stories: dict[str, list[StoryEntry]] = {i: [] for i in ids}
    for start in range(0, len(ids), CHUNK):
        rows = conn.execute(
            select(story_lines.c.request_id, story_lines.c.entry)
            .where(story_lines.c.request_id.in_(ids[start : start + CHUNK]))
            .order_by(story_lines.c.request_id, story_lines.c.seq)
        )
        for request_id, entry in rows:
            stories[request_id].append(StoryEntry.model_validate_json(entry))
    result = []
    for view in views:
        model = RequestView.model_validate(view)
        model.story = list(stories[model.request_id])
        result.append(model)
    return result
