"""The access record: requests, their stories, who must decide, every access change, and the HR
events the intake has taken (by event id and content digest).

It lives on SQLite (the embedded default: one file, `TENURE_ACCESS_RECORD_DB`) or on PostgreSQL
(`TENURE_ACCESS_RECORD_URL`); `audit/location.py` says how either is named and reached. The store
is SQLAlchemy Core: the tables are in `audit/schema.py`, the writes in `audit/writes.py`, the reads
in `audit/reads.py`, and opening a store migrates the record to the newest schema
(`audit/migrate.py`, Alembic revisions under `audit/migrations/versions/`), adopting files made by
releases before Alembic.

Two writers share the record: the worker (requests and access changes, through the activities in
`activities/record.py`) and the API (the HR events it takes); any number of readers (the API, the
CLI) read it. On SQLite the file runs in WAL mode, so readers never block the writer nor each
other, and the writes of one process queue on a lock here. Every call takes a pooled connection
and gives it back, so a store object may be used from any thread (`asyncio.to_thread`). The
methods are synchronous.

Every write is idempotent and monotonic (see `audit/writes.py`): story lines and access changes
are inserted once each and never changed, and a request's view is replaced only by a view at least
as far along. Nothing here ever deletes a story line or an access change.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from audit import reads, writes
from audit.location import (
    BUSY_TIMEOUT_MS,
    ENV_VAR,
    PASSWORD_FILE_VAR,
    URL_VAR,
    WRITE,
    create_record_engine,
    ensure_wal,
    record_url,
    record_url_from_env,
    redacted,
    store_path_from_env,
)
from audit.migrate import migrate
from audit.model import AccessRecordError, HrEventConflict, ReceivedHrEvent
from domain.access.request import RequestView
from domain.audit import AccessChange

__all__ = [
    "BUSY_TIMEOUT_MS",
    "ENV_VAR",
    "PASSWORD_FILE_VAR",
    "URL_VAR",
    "AccessRecordError",
    "AccessRecordStore",
    "HrEventConflict",
    "ReceivedHrEvent",
    "record_url_from_env",
    "store_path_from_env",
]

_PAGE = 500  # access changes read per connection while exporting


class AccessRecordStore:
    """Requests and access changes on SQLite or PostgreSQL; safe for several writers and readers.

    `location`: a SQLite file (a Path, or text without a scheme), or a database URL (text or a
    `sqlalchemy.URL`; a password in it is never shown). `AccessRecordStore.from_env()` reads the
    environment (`record_url_from_env`).
    """

    def __init__(self, location: str | Path | URL) -> None:
        self.url = record_url(location)
        self.backend = self.url.get_backend_name()
        # The SQLite file, or None on PostgreSQL.
        self.path = Path(self.url.database) if self.backend == "sqlite" else None  # type: ignore[arg-type]
        self.where = str(self.path) if self.path is not None else redacted(self.url)
        # SQLite: one writer at a time within this process; threads queue here instead of in
        # SQLite's busy handler, which sleeps in steps of up to 100 ms between retries of a held
        # lock. PostgreSQL locks rows, not the database: its writers need no queue.
        self._write_lock: contextlib.AbstractContextManager[object] = (
            threading.Lock() if self.backend == "sqlite" else contextlib.nullcontext()
        )
        self._engine = create_record_engine(self.url)
        try:
            if self.backend == "sqlite":
                ensure_wal(self._engine, self.where)
            self.revision = migrate(self._engine, self.where)
        except DBAPIError as err:
            self._engine.dispose()
            raise AccessRecordError(
                f"cannot open the access record at {self.where}: {_reason(err)}"
            ) from err
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def from_env(cls) -> AccessRecordStore:
        """The store the environment names (TENURE_ACCESS_RECORD_URL or _DB), or AccessRecordError."""
        url = record_url_from_env()
        assert url is not None
        return cls(url)

    def __repr__(self) -> str:
        return f"AccessRecordStore({self.where!r})"

    def close(self) -> None:
        """Close the pooled connections (the store opens new ones if used again)."""
        self._engine.dispose()

    # ---- writes (the worker; the API for HR events) --------------------------------------------

    def record_request(self, view: RequestView) -> None:
        """Keep the request's view, its story lines and who must decide; idempotent and monotonic."""
        with self._writing() as conn:
            writes.record_request(conn, view)

    def record_access_changes(self, changes: Iterable[AccessChange]) -> None:
        """Keep each change once: a change id already recorded keeps its first copy."""
        with self._writing() as conn:
            writes.record_access_changes(conn, list(changes))

    def claim_hr_events(self, events: Sequence[ReceivedHrEvent]) -> list[HrEventConflict]:
        """Bind each event id to its content, all or nothing.

        Returns the events whose id is already bound to other content; then nothing is written.
        Otherwise every new id is bound (a repeat with the same digest changes nothing). One
        transaction: of two concurrent requests reusing an id, exactly one binds it and the other
        gets the conflict, on either backend.
        """
        with self._write_lock, self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin() as transaction:
                conflicts = writes.claim_hr_events(conn, events)
                if conflicts:
                    transaction.rollback()
        return conflicts

    # ---- reads (the API, the CLI) --------------------------------------------------------------

    def get_request(self, request_id: str) -> RequestView | None:
        with self._engine.connect() as conn:
            return reads.get_request(conn, request_id)

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
        with self._engine.connect() as conn:
            return reads.list_requests(conn, employee_id=employee_id, status=status, limit=limit)

    def awaiting_decision(self, employee_id: str) -> list[RequestView]:
        """Requests whose waiting stage still needs this person's decision, longest waiting first."""
        with self._engine.connect() as conn:
            return reads.awaiting_decision(conn, employee_id)

    def iter_access_changes(
        self, *, since: datetime | None = None, employee_id: str | None = None
    ) -> Iterator[AccessChange]:
        """Every recorded change in time order (ties by change id), from `since` on if given.

        Reads a page at a time, each on its own short connection, so a slow consumer holds no
        connection open and may resume the iterator from another thread.
        """
        after: tuple[datetime, str] | None = None
        while True:
            with self._engine.connect() as conn:
                rows = reads.access_changes_page(
                    conn, since=since, employee_id=employee_id, after=after, limit=_PAGE
                )
            for row in rows:
                yield AccessChange.model_validate_json(row.change)
            if len(rows) < _PAGE:
                return
            after = (rows[-1].at, rows[-1].change_id)

    # ---- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """One write transaction, committed on leaving (rolled back on an exception)."""
        with self._write_lock, self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn


def _reason(err: DBAPIError) -> str:
    return str(err.orig).strip().splitlines()[0] if err.orig is not None else str(err)
