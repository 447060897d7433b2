"""The access record on SQLite: requests, their stories, who must decide, every access change, and
the HR events the intake has taken (by event id and content digest).

Two writers share one file: the worker (requests and access changes, through the activities in
`activities/audit.py`) and the API (the HR events it takes); any number of readers (the API, the
CLI) read it. The database runs in WAL mode, so readers never block the
writer nor each other; every call opens its own connection, so a store object may be used from any
thread (`asyncio.to_thread`). The methods are synchronous.

Activities run at least once and may be retried after a newer write, so every write is idempotent
and monotonic: story lines and access changes are inserted once each and never changed, and a
request's view is replaced only by a view at least as far along (more story lines, or as many and a
later `updated_at`). Nothing here ever deletes a story line or an access change.

Timestamps are kept as fixed-width UTC text (`2026-12-01T09:00:00.000000Z`), so text order is time
order.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from domain.access_request import RequestStatus, RequestView, StoryEntry
from domain.audit import AccessChange, access_changes_from_view

ENV_VAR = "TENURE_ACCESS_RECORD_DB"
# 2: hr_events (the intake's idempotency keys). Each version only adds tables.
SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000
_PAGE = 500  # access changes read per connection while exporting

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    package_id TEXT NOT NULL,
    beneficiary_id TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    status TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    view TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_beneficiary ON requests (beneficiary_id, submitted_at);
CREATE INDEX IF NOT EXISTS requests_requester ON requests (requester_id, submitted_at);
CREATE INDEX IF NOT EXISTS requests_status ON requests (status, submitted_at);
CREATE INDEX IF NOT EXISTS requests_submitted ON requests (submitted_at);
CREATE TABLE IF NOT EXISTS story_lines (
    request_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS waiting_approvers (
    request_id TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    PRIMARY KEY (request_id, employee_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS waiting_approvers_employee ON waiting_approvers (employee_id);
CREATE TABLE IF NOT EXISTS access_changes (
    change_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    employee_id TEXT NOT NULL,
    change TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_changes_at ON access_changes (at, change_id);
CREATE INDEX IF NOT EXISTS access_changes_employee ON access_changes (employee_id, at, change_id);
CREATE TABLE IF NOT EXISTS hr_events (
    event_id TEXT PRIMARY KEY,
    employee_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class ReceivedHrEvent:
    """An HR event the intake took: its id bound to its content's digest (`event_digest`)."""

    event_id: str
    employee_id: str
    digest: str
    received_at: datetime


@dataclass(frozen=True)
class HrEventConflict:
    """An event whose id was first taken with other content."""

    event: ReceivedHrEvent
    first: ReceivedHrEvent


class AccessRecordError(RuntimeError):
    """The access record cannot be used as configured; the message says what to fix."""


def store_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The record's SQLite file, from TENURE_ACCESS_RECORD_DB (required)."""
    env = os.environ if environ is None else environ
    value = (env.get(ENV_VAR) or "").strip()
    if not value:
        raise AccessRecordError(
            f"{ENV_VAR} is not set: name the SQLite file that keeps the access record "
            "(for example .tenure/access-record.db); the worker writes it, the API reads it"
        )
    return Path(value).expanduser()


class AccessRecordStore:
    """Requests and access changes on one SQLite file; safe for one writer and several readers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # One writer at a time within this process: threads queue here instead of in SQLite's
        # busy handler, which sleeps in steps of up to 100 ms between retries of a held lock.
        self._write_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            # Persistent in the file: every later connection uses the write-ahead log.
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise AccessRecordError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
            with _transaction(conn):
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
                row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                if row[0] is None:
                    conn.execute(
                        "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                    )
                elif row[0] > SCHEMA_VERSION:
                    raise AccessRecordError(
                        f"{self.path}: schema version {row[0]} is newer than this Tenure's "
                        f"({SCHEMA_VERSION}); upgrade Tenure before using this file"
                    )
                elif row[0] < SCHEMA_VERSION:
                    # The script above has just added what the newer version has.
                    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    # ---- writes (the worker) -------------------------------------------------------------------

    def record_request(self, view: RequestView) -> None:
        """Keep the request's view, its story lines and who must decide; idempotent and monotonic."""
        story = sorted(view.story, key=lambda e: e.seq)
        last_seq = story[-1].seq if story else 0
        updated_at = _ts(view.updated_at)
        changes = access_changes_from_view(view)
        with self._write_lock, closing(self._connect()) as conn, _transaction(conn):
            conn.executemany(
                "INSERT OR IGNORE INTO story_lines (request_id, seq, at, kind, actor, entry)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (view.request_id, e.seq, _ts(e.at), e.kind, e.actor, e.model_dump_json())
                    for e in story
                ],
            )
            _insert_changes(conn, changes)
            row = conn.execute(
                "SELECT last_seq, updated_at FROM requests WHERE request_id = ?",
                (view.request_id,),
            ).fetchone()
            if row is not None and (last_seq, updated_at) < (row[0], row[1]):
                return  # a retried write of an older view: the newer one stays
            conn.execute(
                "INSERT INTO requests (request_id, package_id, beneficiary_id, requester_id, status,"
                " submitted_at, updated_at, last_seq, view) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (request_id) DO UPDATE SET package_id = excluded.package_id,"
                " beneficiary_id = excluded.beneficiary_id, requester_id = excluded.requester_id,"
                " status = excluded.status, submitted_at = excluded.submitted_at,"
                " updated_at = excluded.updated_at, last_seq = excluded.last_seq,"
                " view = excluded.view",
                (
                    view.request_id,
                    view.package_id,
                    view.beneficiary_id,
                    view.requester_id,
                    view.status.value,
                    _ts(view.submitted_at),
                    updated_at,
                    last_seq,
                    # The story lives in story_lines, one row per line, and is put back on read.
                    view.model_dump_json(exclude={"story"}),
                ),
            )
            conn.execute("DELETE FROM waiting_approvers WHERE request_id = ?", (view.request_id,))
            conn.executemany(
                "INSERT OR IGNORE INTO waiting_approvers (request_id, employee_id) VALUES (?, ?)",
                [(view.request_id, employee_id) for employee_id in _undecided(view)],
            )

    def record_access_changes(self, changes: Iterable[AccessChange]) -> None:
        """Keep each change once: a change id already recorded keeps its first copy."""
        with self._write_lock, closing(self._connect()) as conn, _transaction(conn):
            _insert_changes(conn, list(changes))

    def claim_hr_events(self, events: Sequence[ReceivedHrEvent]) -> list[HrEventConflict]:
        """Bind each event id to its content, all or nothing.

        Returns the events whose id is already bound to other content; then nothing is written.
        Otherwise every new id is bound (a repeat with the same digest changes nothing). One
        transaction: of two concurrent requests reusing an id, the second sees the first.
        """
        ids = list(dict.fromkeys(e.event_id for e in events))
        with self._write_lock, closing(self._connect()) as conn, _transaction(conn):
            known: dict[str, ReceivedHrEvent] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                for event_id, employee_id, digest, received_at in conn.execute(
                    "SELECT event_id, employee_id, digest, received_at FROM hr_events"
                    f" WHERE event_id IN ({marks})",
                    chunk,
                ):
                    known[event_id] = ReceivedHrEvent(
                        event_id=event_id,
                        employee_id=employee_id,
                        digest=digest,
                        received_at=_parse_ts(received_at),
                    )
            conflicts = [
                HrEventConflict(event=e, first=known[e.event_id])
                for e in events
                if e.event_id in known and known[e.event_id].digest != e.digest
            ]
            if conflicts:
                return conflicts
            conn.executemany(
                "INSERT OR IGNORE INTO hr_events (event_id, employee_id, digest, received_at)"
                " VALUES (?, ?, ?, ?)",
                [(e.event_id, e.employee_id, e.digest, _ts(e.received_at)) for e in events],
            )
        return []

    # ---- reads (the API, the CLI) --------------------------------------------------------------

    def get_request(self, request_id: str) -> RequestView | None:
        with closing(self._connect()) as conn:
            row = conn.execute(
                "SELECT view FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if row is None:
                return None
            return _views(conn, [row[0]])[0]

    def list_requests(
        self,
        *,
        employee_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[RequestView]:
        """Requests newest first (by submission); `employee_id` matches requester or beneficiary."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where: list[str] = []
        params: list[object] = []
        if employee_id is not None:
            where.append("(requester_id = ? OR beneficiary_id = ?)")
            params += [employee_id, employee_id]
        if status is not None:
            where.append("status = ?")
            params.append(RequestStatus(status).value)  # an unknown status is a ValueError
        sql = "SELECT view FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at DESC, request_id DESC LIMIT ?"
        params.append(limit)
        with closing(self._connect()) as conn:
            rows = conn.execute(sql, params).fetchall()
            return _views(conn, [r[0] for r in rows])

    def awaiting_decision(self, employee_id: str) -> list[RequestView]:
        """Requests whose waiting stage still needs this person's decision, longest waiting first."""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT r.view FROM waiting_approvers w JOIN requests r USING (request_id)"
                " WHERE w.employee_id = ? ORDER BY r.submitted_at, r.request_id",
                (employee_id,),
            ).fetchall()
            return _views(conn, [r[0] for r in rows])

    def iter_access_changes(
        self, *, since: datetime | None = None, employee_id: str | None = None
    ) -> Iterator[AccessChange]:
        """Every recorded change in time order (ties by change id), from `since` on if given.

        Reads a page at a time, each on its own short connection, so a slow consumer holds no
        connection open and may resume the iterator from another thread.
        """
        cursor: tuple[str, str] | None = None
        while True:
            where: list[str] = []
            params: list[object] = []
            if since is not None:
                where.append("at >= ?")
                params.append(_ts(since))
            if employee_id is not None:
                where.append("employee_id = ?")
                params.append(employee_id)
            if cursor is not None:
                where.append("(at, change_id) > (?, ?)")
                params += list(cursor)
            sql = "SELECT at, change_id, change FROM access_changes"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY at, change_id LIMIT ?"
            params.append(_PAGE)
            with closing(self._connect()) as conn:
                rows = conn.execute(sql, params).fetchall()
            for _, _, change in rows:
                yield AccessChange.model_validate_json(change)
            if len(rows) < _PAGE:
                return
            cursor = (rows[-1][0], rows[-1][1])

    # ---- plumbing ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # Autocommit: writes open their own transaction (`_transaction`), reads see the latest commit.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so a write never fails upgrading a read lock.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _insert_changes(conn: sqlite3.Connection, changes: list[AccessChange]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO access_changes (change_id, at, employee_id, change)"
        " VALUES (?, ?, ?, ?)",
        [(c.change_id, _ts(c.at), c.employee_id, c.model_dump_json()) for c in changes],
    )


def _views(conn: sqlite3.Connection, view_rows: list[str]) -> list[RequestView]:
    """Views with their full story put back from story_lines, in the order given."""
    views = [json.loads(v) for v in view_rows]
    ids = [v["request_id"] for v in views]
    stories: dict[str, list[StoryEntry]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):  # well under SQLite's limit of bound parameters
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for request_id, entry in conn.execute(
            f"SELECT request_id, entry FROM story_lines WHERE request_id IN ({marks})"
            " ORDER BY request_id, seq",
            chunk,
        ):
            stories[request_id].append(StoryEntry.model_validate_json(entry))
    result = []
    for view in views:
        model = RequestView.model_validate(view)
        model.story = stories[model.request_id]
        result.append(model)
    return result


def _undecided(view: RequestView) -> list[str]:
    stage = view.waiting_on
    if stage is None or stage.outcome is not None:
        return []
    decided = set(stage.approved_by) | set(stage.denied_by)
    return [a for a in dict.fromkeys(stage.approvers) if a not in decided]


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def _ts(value: datetime) -> str:
    """Fixed-width UTC text: text order is time order. A naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
