"""The access record's tables, as SQLAlchemy Core metadata: what the store reads and writes.

The tables are created and changed only by Alembic revisions (`audit/migrations/versions/`), which
the store applies when it opens (`audit.migrate`). This module describes the schema at the newest
revision; `tests/record/test_migrations.py` checks on every backend that the two agree.

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

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, Table, Text
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


# ---- access-review campaigns (revision 0003). Kept with no retention cap: nothing prunes them.

# Each campaign's latest progress (CampaignProgress JSON), as the campaign workflow records it.
review_campaigns = Table(
    "review_campaigns",
    metadata,
    Column("campaign_id", OrderedText, primary_key=True),
    Column("review_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("phase", Text, nullable=False),
    Column("started_at", UtcTimestamp, nullable=False),
    Column("finished_at", UtcTimestamp, nullable=True),
    Column("progress", Text, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    Index("review_campaigns_review", "review_id", "started_at"),
    Index("review_campaigns_started", "started_at"),
)

# One row per item a campaign reviews (the ReviewItem JSON, with what is filtered on as columns),
# and its final outcome and removal once known. (On PostgreSQL, revision 0003 also sets `item`'s
# statistics target to 0: nothing filters on it, and ANALYZE is then much cheaper.)
review_items = Table(
    "review_items",
    metadata,
    Column("campaign_id", OrderedText, primary_key=True),
    Column("item_id", OrderedText, primary_key=True),
    Column("holder_kind", Text, nullable=False),
    Column("holder_id", Text, nullable=False),
    Column("employee_id", OrderedText, nullable=True),
    Column("holder_name", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("recommendation", Text, nullable=False),
    Column("protected", Boolean, nullable=False),
    Column("item", Text, nullable=False),
    Column("final_stage", Integer, nullable=True, autoincrement=False),
    Column("final_outcome", Text, nullable=True),
    Column("final_decided_by", OrderedText, nullable=True),
    Column("final_justification", Text, nullable=True),
    Column("final_decided_at", UtcTimestamp, nullable=True),
    Column("applied", Text, nullable=False),
    Column("applied_at", UtcTimestamp, nullable=True),
    Column("apply_detail", Text, nullable=False),
    Column("apply_batch", Integer, nullable=True, autoincrement=False),
    Index("review_items_employee", "campaign_id", "employee_id"),
    Index("review_items_apply_batch", "campaign_id", "apply_batch"),
)

# An item's place in one stage (0-based): its batch, its reviewers (JSON list) and the outcome.
review_stage_items = Table(
    "review_stage_items",
    metadata,
    Column("campaign_id", OrderedText, primary_key=True),
    Column("stage", Integer, primary_key=True, autoincrement=False),
    Column("item_id", OrderedText, primary_key=True),
    Column("batch", Integer, nullable=False, autoincrement=False),
    Column("reviewers", Text, nullable=False),
    Column("outcome", Text, nullable=True),
    Column("decided_by", OrderedText, nullable=True),
    Column("justification", Text, nullable=False),
    Column("decided_at", UtcTimestamp, nullable=True),
    Index("review_stage_items_batch", "campaign_id", "stage", "batch"),
    # An item's stages in order: finalizing (its highest stage) and the report.
    Index("review_stage_items_item", "campaign_id", "item_id", "stage"),
)

# Who reviews which item in a stage; the key's prefix routes a reviewer's decisions and reminders.
review_reviewers = Table(
    "review_reviewers",
    metadata,
    Column("campaign_id", OrderedText, primary_key=True),
    Column("stage", Integer, primary_key=True, autoincrement=False),
    Column("reviewer_id", OrderedText, primary_key=True),
    Column("item_id", OrderedText, primary_key=True),
    Column("batch", Integer, nullable=False, autoincrement=False),
    sqlite_with_rowid=False,
)

# Decisions the API refused (not a reviewer of the item, own access, stage closed, ...).
review_refusals = Table(
    "review_refusals",
    metadata,
    Column("campaign_id", OrderedText, primary_key=True),
    Column("at", UtcTimestamp, primary_key=True),
    Column("actor_id", OrderedText, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("item_ids", Text, nullable=False),
    sqlite_with_rowid=False,
)


# ---- privileged access (revision 0004): security incidents, PIM alerts, SoD violations
# (`audit/privileged.py`). Kept with no retention cap: nothing prunes them.

# Each incident's latest view (IncidentView JSON without its steps, which are in incident_steps);
# `last_step` is how many steps that view holds (a view with more steps is further along).
incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", OrderedText, primary_key=True),
    Column("employee_id", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("received_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    Column("last_step", Integer, nullable=False, autoincrement=False),
    Column("view", Text, nullable=False),
    Index("incidents_employee", "employee_id", "received_at"),
    Index("incidents_received", "received_at"),
)

# One row per incident step (IncidentStep JSON), never changed once written.
incident_steps = Table(
    "incident_steps",
    metadata,
    Column("incident_id", OrderedText, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("kind", Text, nullable=False),
    Column("entry", Text, nullable=False),
    sqlite_with_rowid=False,
)

# One row per alert (one cause: kind, role and subject), as the detective scans keep it: open
# while `resolved_at` is NULL. `alert` is the latest finding's JSON (AlertFinding: its text and
# detail); the times and count are the columns.
pim_alerts = Table(
    "pim_alerts",
    metadata,
    Column("alert_id", OrderedText, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("role_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("first_raised_at", UtcTimestamp, nullable=False),
    Column("last_seen_at", UtcTimestamp, nullable=False),
    Column("resolved_at", UtcTimestamp, nullable=True),
    Column("times_raised", Integer, nullable=False, autoincrement=False),
    Column("alert", Text, nullable=False),
    # The open alerts (of the kinds a scan covers).
    Index("pim_alerts_open", "resolved_at", "kind"),
)

# Each separation-of-duties violation's latest state (SodViolation JSON).
sod_violations = Table(
    "sod_violations",
    metadata,
    Column("violation_id", OrderedText, primary_key=True),
    Column("rule", Text, nullable=False),
    Column("employee_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("detected_at", UtcTimestamp, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False),
    Column("exception_until", UtcTimestamp, nullable=True),
    Column("violation", Text, nullable=False),
    Index("sod_violations_status", "status", "detected_at"),
    Index("sod_violations_employee", "employee_id", "detected_at"),
)
