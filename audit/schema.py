"""The access record's tables, as SQLAlchemy Core metadata: what the store reads and writes.

The tables are created and changed only by Alembic revisions (`audit/migrations/versions/`), which
the store applies when it opens (`audit.migrate`). This module describes the schema at the newest
revision; `tests/test_access_record.py` checks on every backend that the two agree.

How a new table lands (PIM activations, access-review campaign items, ...):
1. add an Alembic revision `audit/migrations/versions/NNNN_<what>.py` whose `down_revision` is the
   current head, creating the table with `op.create_table` and spelling its types out (a revision
   is history: it must not import this module, which will keep changing);
2. add the same `Table` here, and the reads and writes that use it (`audit/reads.py`,
   `audit/writes.py`) behind new `AccessRecordStore` methods;
3. run the record tests: they open a fresh record on SQLite and on PostgreSQL, compare it with this
   metadata, and open records made by earlier revisions.
Revisions only add (tables, columns with defaults, indexes): a record migrated by a newer Tenure is
refused by an older one, so nothing needs to be undone on a rollback of the code alone.

Types. Text columns are TEXT. Identifiers that order results (request and change ids) sort
byte-wise on both backends: SQLite compares TEXT as bytes, and PostgreSQL is told `COLLATE "C"`, so
the order never depends on the server's locale. Timestamps are `UtcTimestamp`: fixed-width UTC
text on SQLite (`2026-12-01T09:00:00.000000Z`, so text order is time order, as files made by earlier
releases have them) and `timestamptz` on PostgreSQL; both keep microseconds and read back as aware
UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, Index, Integer, MetaData, Table, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()

# Byte-wise order on PostgreSQL too (SQLite's TEXT already compares bytes).
OrderedText = Text().with_variant(Text(collation="C"), "postgresql")


class UtcTimestamp(TypeDecorator[datetime]):
    """A UTC instant: fixed-width text on SQLite, timestamptz on PostgreSQL. Naive values are UTC."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = as_utc(value)
        return utc if dialect.name == "postgresql" else utc_text(utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return as_utc(value)
        return datetime.fromisoformat(str(value).removesuffix("Z")).replace(tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@lru_cache(maxsize=4096)
def utc_text(value: datetime) -> str:
    """Fixed-width UTC text: text order is time order. (Cached: a batch often shares one time.)"""
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# Each request's latest view (without its story, which is in story_lines).
requests = Table(
    "requests",
    metadata,
    Column("request_id", OrderedText, primary_key=True),
    Column("package_id", Text, nullable=False),
    Column("beneficiary_id", Text, nullable=False),
    Column("requester_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("submitted_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    Column("last_seq", Integer, nullable=False, autoincrement=False),
    Column("view", Text, nullable=False),
    Index("requests_beneficiary", "beneficiary_id", "submitted_at"),
    Index("requests_requester", "requester_id", "submitted_at"),
    Index("requests_status", "status", "submitted_at"),
    Index("requests_submitted", "submitted_at"),
)

# One row per story line, never changed once written.
story_lines = Table(
    "story_lines",
    metadata,
    Column("request_id", OrderedText, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("kind", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("entry", Text, nullable=False),
    sqlite_with_rowid=False,
)

# Who the request's open stage still waits for (replaced with each newer view).
waiting_approvers = Table(
    "waiting_approvers",
    metadata,
    Column("request_id", OrderedText, primary_key=True),
    Column("employee_id", Text, primary_key=True),
    Index("waiting_approvers_employee", "employee_id"),
    sqlite_with_rowid=False,
)

# Every access change, each kept once, as first written.
access_changes = Table(
    "access_changes",
    metadata,
    Column("change_id", OrderedText, primary_key=True),
    Column("at", UtcTimestamp, nullable=False),
    Column("employee_id", Text, nullable=False),
    Column("change", Text, nullable=False),
    Index("access_changes_at", "at", "change_id"),
    Index("access_changes_employee", "employee_id", "at", "change_id"),
)

# The intake's idempotency keys: each HR event id bound to its content's digest.
hr_events = Table(
    "hr_events",
    metadata,
    Column("event_id", OrderedText, primary_key=True),
    Column("employee_id", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("received_at", UtcTimestamp, nullable=False),
    sqlite_with_rowid=False,
)
