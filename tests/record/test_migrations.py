"""The record's schema and its migrations, and files of the releases before Alembic."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.engine import URL

from audit import migrate as migrate_module
from audit.location import sqlite_url
from audit.migrate import head_revision
from audit.schema import hr_events, metadata
from audit.store import (
    AccessRecordError,
    AccessRecordStore,
    ReceivedHrEvent,
)
from domain.access.request import (
    RequestStatus,
    RequestView,
)
from domain.audit import AccessChange, access_changes_from_view
from tests.record.views import STORY, T0, _at, _stage, _view

# ---- the schema and its migrations -------------------------------------------------------------


def test_the_migrated_record_matches_the_schema_module(store: AccessRecordStore) -> None:
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            if store.backend == "postgresql":
                collations = dict(
                    conn.execute(
                        text(
                            "SELECT table_name || '.' || column_name, collation_name"
                            " FROM information_schema.columns WHERE table_schema = 'public'"
                            " AND column_name IN ('request_id', 'change_id', 'event_id', 'campaign_id',"
                            " 'item_id', 'reviewer_id', 'actor_id')"
                        )
                    ).all()
                )
                assert set(collations.values()) == {"C"}, collations
                types = dict(
                    conn.execute(
                        text(
                            "SELECT table_name || '.' || column_name, data_type"
                            " FROM information_schema.columns WHERE table_schema = 'public'"
                            " AND column_name IN ('at', 'submitted_at', 'received_at', 'started_at',"
                            " 'decided_at', 'final_decided_at', 'applied_at')"
                        )
                    ).all()
                )
                assert set(types.values()) == {"timestamp with time zone"}, types
    finally:
        engine.dispose()


def test_ids_order_byte_wise_and_times_in_time_order_whatever_the_zone(
    store: AccessRecordStore,
) -> None:
    # Byte order puts "B" before "a"; a locale's (the PostgreSQL test databases sort by ICU en-US)
    # would not. Ids sort as bytes on both backends.
    for request_id in ("r-a", "r-B"):
        store.record_request(_view(STORY[:1], RequestStatus.SUBMITTED, request_id=request_id))
    assert [r.request_id for r in store.list_requests()] == ["r-a", "r-B"]  # newest first, DESC

    plus_two = timezone(timedelta(hours=2))
    changes = [
        # 09:00:00.000001Z written as 11:00:00.000001+02:00; 09:00Z as a naive time (UTC).
        AccessChange(change_id="c-late", at=(T0 + timedelta(microseconds=1)).astimezone(plus_two),
                     employee_id="E2", action="granted", resource="group:A"),
        AccessChange(change_id="c-a", at=T0.replace(tzinfo=None), employee_id="E2",
                     action="granted", resource="group:A"),
        AccessChange(change_id="c-B", at=T0, employee_id="E2", action="granted",
                     resource="group:A"),
        AccessChange(change_id="c-early", at=T0 - timedelta(microseconds=1), employee_id="E2",
                     action="granted", resource="group:A"),
    ]  # fmt: skip
    store.record_access_changes(changes)
    exported = list(store.iter_access_changes())
    assert [c.change_id for c in exported] == ["c-early", "c-B", "c-a", "c-late"]
    assert exported[-1].at == T0 + timedelta(microseconds=1)
    since = T0.astimezone(plus_two)
    assert [c.change_id for c in store.iter_access_changes(since=since)] == ["c-B", "c-a", "c-late"]


def test_concurrent_claims_of_one_id_with_other_content_exactly_one_wins(
    store: AccessRecordStore,
) -> None:
    claimants = [AccessRecordStore(store.url) for _ in range(2)]
    now = datetime.now(UTC)
    try:
        for round_ in range(25):
            events = [ReceivedHrEvent(f"race-{round_}", "E1", f"digest-{n}", now) for n in (0, 1)]
            results = _at_once([partial(claimants[n].claim_hr_events, [events[n]]) for n in (0, 1)])
            outcomes = sorted(results, key=bool)
            assert outcomes[0] == [], (round_, results)
            [conflict] = outcomes[1]
            assert conflict.first.digest != conflict.event.digest
    finally:
        for claimant in claimants:
            claimant.close()


def _at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        results[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("other_commits", [True, False])
def test_a_claim_waits_for_an_uncommitted_claim_of_the_same_id(
    store: AccessRecordStore, other_commits: bool
) -> None:
    now = datetime.now(UTC)
    other = create_engine(store.url)
    results: list[object] = []
    try:
        with other.connect() as conn:
            transaction = conn.begin()
            conn.execute(
                insert(hr_events).values(
                    event_id="held", employee_id="E1", digest="theirs", received_at=now
                )
            )
            mine = ReceivedHrEvent("held", "E1", "mine", now)
            thread = threading.Thread(target=lambda: results.append(store.claim_hr_events([mine])))
            thread.start()
            time.sleep(0.5)
            assert thread.is_alive(), "the claim should wait for the other transaction"
            (transaction.commit if other_commits else transaction.rollback)()
        thread.join(timeout=30)
    finally:
        other.dispose()
    [outcome] = results
    if other_commits:
        [conflict] = outcome  # type: ignore[misc]
        assert conflict.first.digest == "theirs" and conflict.event.digest == "mine"
    else:
        assert outcome == []
        assert store.claim_hr_events([ReceivedHrEvent("held", "E1", "theirs", now)])


def test_stores_opening_a_new_record_at_once_migrate_it_once(record_url: URL) -> None:
    barrier = threading.Barrier(4)
    opened: list[AccessRecordStore] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            opened.append(AccessRecordStore(record_url))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and [s.revision for s in opened] == [head_revision()] * 4
    opened[0].record_request(_view(STORY[:2], RequestStatus.PENDING_APPROVAL))
    assert opened[3].get_request(_view([], RequestStatus.SUBMITTED).request_id) is not None
    for store in opened:
        store.close()


def test_a_record_migrated_by_a_newer_tenure_is_refused(store: AccessRecordStore) -> None:
    engine = create_engine(store.url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(AccessRecordError, match="'9999', newer than this Tenure's"):
        AccessRecordStore(store.url)


def test_a_failed_migration_leaves_the_record_as_it_was(
    store: AccessRecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.claim_hr_events([ReceivedHrEvent("hr-1", "E1", "d", T0)])
    # A next revision after the current head, as a new table would land, that fails halfway.
    head = head_revision()
    migrations = tmp_path / "migrations"
    shutil.copytree(migrate_module.MIGRATIONS, migrations)
    (migrations / "versions" / "9000_broken.py").write_text(
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        "revision = '9000'\n"
        f"down_revision = {head!r}\n"
        "def upgrade():\n"
        "    op.create_table('pim_activations', sa.Column('id', sa.Text, primary_key=True))\n"
        '    op.execute("DELETE FROM hr_events")\n'
        "    raise RuntimeError('revision 9000 failed')\n"
    )
    monkeypatch.setattr(migrate_module, "MIGRATIONS", migrations)
    migrate_module._script.cache_clear()
    try:
        assert migrate_module.head_revision() == "9000"
        with pytest.raises(RuntimeError, match="revision 9000 failed"):
            AccessRecordStore(store.url)
    finally:
        monkeypatch.undo()
        migrate_module._script.cache_clear()
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(head,)]
            assert "pim_activations" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    assert store.claim_hr_events([ReceivedHrEvent("hr-1", "E1", "other", T0)]) != []


# ---- files made by the releases before Alembic -------------------------------------------------

# The DDL of schema version 1 (the first release of the record) and what version 2 added, as those
# releases ran it (audit/store.py before the move to SQLAlchemy).
LEGACY_V1_DDL = """
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
"""
LEGACY_V2_DDL = """
CREATE TABLE IF NOT EXISTS hr_events (
    event_id TEXT PRIMARY KEY,
    employee_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    received_at TEXT NOT NULL
) WITHOUT ROWID;
"""


def _old_ts(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _legacy_file(path: Path, version: int, views: list[RequestView]) -> None:
    """A record as the release with schema `version` left it, holding `views` and their changes."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(LEGACY_V1_DDL + (LEGACY_V2_DDL if version >= 2 else ""))
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        for view in views:
            conn.executemany(
                "INSERT INTO story_lines VALUES (?, ?, ?, ?, ?, ?)",
                [(view.request_id, e.seq, _old_ts(e.at), e.kind, e.actor, e.model_dump_json())
                 for e in view.story],
            )  # fmt: skip
            conn.execute(
                "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (view.request_id, view.package_id, view.beneficiary_id, view.requester_id,
                 view.status.value, _old_ts(view.submitted_at), _old_ts(view.updated_at),
                 view.story[-1].seq, view.model_dump_json(exclude={"story"})),
            )  # fmt: skip
            if view.waiting_on is not None:
                conn.executemany(
                    "INSERT INTO waiting_approvers VALUES (?, ?)",
                    [(view.request_id, a) for a in view.waiting_on.approvers],
                )
            conn.executemany(
                "INSERT INTO access_changes VALUES (?, ?, ?, ?)",
                [(c.change_id, _old_ts(c.at), c.employee_id, c.model_dump_json())
                 for c in access_changes_from_view(view)],
            )  # fmt: skip
        if version >= 2:
            conn.execute(
                "INSERT INTO hr_events VALUES ('hr-1', 'E2', 'digest-1', ?)", (_old_ts(_at(1)),)
            )


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_of_an_earlier_release_is_adopted_with_its_data(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "access-record.db"
    pending = _view(STORY[:3], RequestStatus.PENDING_APPROVAL, waiting_on=_stage(["M1"]))
    granted = _view(STORY[:8], RequestStatus.GRANTED, request_id="r-2", submitted_at=_at(1))
    _legacy_file(path, version, [pending, granted])

    store = AccessRecordStore(path)
    assert store.revision == head_revision()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]
    assert "schema_version" not in tables and "hr_events" in tables
    # What the earlier release wrote reads back as it was.
    assert store.get_request(pending.request_id) == pending
    assert [r.request_id for r in store.list_requests()] == ["r-2", pending.request_id]
    assert [r.request_id for r in store.awaiting_decision("M1")] == [pending.request_id]
    assert [c.change_id for c in store.iter_access_changes()] == [
        "r-2:8:app:ledger:ap-clerk",
        "r-2:8:group:Finance",
    ]
    engine = create_engine(sqlite_url(path))
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    # The one difference: in SQLite's rowid tables, the earlier `TEXT PRIMARY KEY` let a NULL in
    # (SQLite's long-standing quirk). Nothing writes one; rebuilding the tables is not worth it.
    assert sorted((d[0][0], d[0][2], d[0][3]) for d in differences) == [
        ("modify_nullable", "access_changes", "change_id"),
        ("modify_nullable", "requests", "request_id"),
    ]

    # And it goes on: newer views replace older ones, the intake's ids are kept.
    store.record_request(_view(STORY[:4], RequestStatus.GRANTING))
    assert store.awaiting_decision("M1") == []
    claim = ReceivedHrEvent("hr-1", "E2", "digest-other", _at(50))
    conflicts = store.claim_hr_events([claim])
    if version >= 2:
        [conflict] = conflicts
        assert conflict.first == ReceivedHrEvent("hr-1", "E2", "digest-1", _at(1))
    else:
        assert conflicts == [] and store.claim_hr_events([claim]) == []
    assert AccessRecordStore(path).revision == head_revision()


def test_a_file_of_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "access-record.db"
    _legacy_file(path, 2, [])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 3")
    with pytest.raises(AccessRecordError, match="schema version 3 is newer than this Tenure's"):
        AccessRecordStore(path)
    with sqlite3.connect(path) as conn:  # left as it was
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(3,)]


def test_a_file_whose_tables_do_not_match_its_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "access-record.db"
    _legacy_file(path, 1, [])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 2")  # version 2, without hr_events
    with pytest.raises(AccessRecordError, match="says schema version 2 but has the tables"):
        AccessRecordStore(path)
