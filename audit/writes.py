"""The access record's writes, each run in one transaction the store opens (`AccessRecordStore`).

Activities run at least once and may be retried after a newer write, so every write is idempotent
and monotonic, on SQLite and PostgreSQL alike, with the dialects' `INSERT ... ON CONFLICT`:
- story lines and access changes are inserted once each (`DO NOTHING`) and never changed;
- a request's row is replaced only by a view at least as far along, more story lines, or as many
  and a later (or the same) `updated_at`: `DO UPDATE ... WHERE (last_seq, updated_at) <=
  (excluded.last_seq, excluded.updated_at)`, decided by the database on the row it locks, so two
  concurrent writers cannot roll it back either;
- the HR event ids are claimed insert-first (`DO NOTHING RETURNING`): the primary key decides
  which of two concurrent claims of an id is first, and the loser sees the winner's row once it
  commits (PostgreSQL makes the second insert wait for the first transaction).
Rows are written in key order, so concurrent transactions take their row locks in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from audit.model import HrEventConflict, ReceivedHrEvent
from audit.schema import access_changes, hr_events, requests, story_lines, waiting_approvers
from domain.access.request import RequestView
from domain.audit import AccessChange, access_changes_from_view

# Ids per IN (...) list: well under SQLite's limit of bound parameters.
CHUNK = 500


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_nothing` / `on_conflict_do_update`."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def record_request(conn: Connection, view: RequestView) -> None:
    story = sorted(view.story, key=lambda e: e.seq)
    last_seq = story[-1].seq if story else 0
    if story:
        conn.execute(
            _insert(conn, story_lines).on_conflict_do_nothing(),
            [
                {
                    "request_id": view.request_id,
                    "seq": e.seq,
                    "at": e.at,
                    "kind": e.kind,
                    "actor": e.actor,
                    "entry": e.model_dump_json(),
                }
                for e in story
            ],
        )
    record_access_changes(conn, access_changes_from_view(view))
    insert = _insert(conn, requests).values(
        request_id=view.request_id,
        package_id=view.package_id,
        beneficiary_id=view.beneficiary_id,
        requester_id=view.requester_id,
        status=view.status.value,
        submitted_at=view.submitted_at,
        updated_at=view.updated_at,
        last_seq=last_seq,
        # The story lives in story_lines, one row per line, and is put back on read.
        view=view.model_dump_json(exclude={"story"}),
    )
    excluded = insert.excluded
    upsert = insert.on_conflict_do_update(
        index_elements=[requests.c.request_id],
        set_={c.name: excluded[c.name] for c in requests.c if c.name != "request_id"},
        where=tuple_(requests.c.last_seq, requests.c.updated_at)
        <= tuple_(excluded.last_seq, excluded.updated_at),
    )
    # RETURNING names the row only if it was inserted or replaced (rowcount is not reliable for an
    # INSERT across drivers).
    if conn.execute(upsert.returning(requests.c.request_id)).first() is None:
        return  # a retried write of an older view: the newer one stays, and who it waits for
    conn.execute(delete(waiting_approvers).where(waiting_approvers.c.request_id == view.request_id))
    undecided = _undecided(view)
    if undecided:
        conn.execute(
            _insert(conn, waiting_approvers).on_conflict_do_nothing(),
            [{"request_id": view.request_id, "employee_id": e} for e in sorted(undecided)],
        )


def record_access_changes(conn: Connection, changes: Sequence[AccessChange]) -> None:
    """Keep each change once: a change id already recorded keeps its first copy."""
    first: dict[str, AccessChange] = {}
    for change in changes:
        first.setdefault(change.change_id, change)
    if not first:
        return
    conn.execute(
        _insert(conn, access_changes).on_conflict_do_nothing(),
        [
            {
                "change_id": c.change_id,
                "at": c.at,
                "employee_id": c.employee_id,
                "change": c.model_dump_json(),
            }
            for _, c in sorted(first.items())
        ],
    )


def claim_hr_events(conn: Connection, events: Sequence[ReceivedHrEvent]) -> list[HrEventConflict]:
    """Bind the new ids; returns the events whose id is bound to other content (then the caller
    rolls the transaction back, so nothing is written)."""
    first: dict[str, ReceivedHrEvent] = {}
    for e in events:
        first.setdefault(e.event_id, e)
    if not first:
        return []
    inserted = set(
        conn.execute(
            _insert(conn, hr_events).on_conflict_do_nothing().returning(hr_events.c.event_id),
            [
                {
                    "event_id": e.event_id,
                    "employee_id": e.employee_id,
                    "digest": e.digest,
                    "received_at": e.received_at,
                }
                for _, e in sorted(first.items())
            ],
        ).scalars()
    )
    taken = [event_id for event_id in first if event_id not in inserted]
    known: dict[str, ReceivedHrEvent] = {}
    for start in range(0, len(taken), CHUNK):
        rows = conn.execute(
            select(hr_events).where(hr_events.c.event_id.in_(taken[start : start + CHUNK]))
        )
        for row in rows:
            known[row.event_id] = ReceivedHrEvent(
                event_id=row.event_id,
                employee_id=row.employee_id,
                digest=row.digest,
                received_at=row.received_at,
            )
    return [
        HrEventConflict(event=e, first=known[e.event_id])
        for e in events
        if e.event_id in known and known[e.event_id].digest != e.digest
    ]


def _undecided(view: RequestView) -> list[str]:
    stage = view.waiting_on
    if stage is None or stage.outcome is not None:
        return []
    decided = set(stage.approved_by) | set(stage.denied_by)
    return [a for a in dict.fromkeys(stage.approvers) if a not in decided]
