"""The access record: requests, their stories and access changes kept in Tenure's own store.

Every test that takes `store` runs twice: on a SQLite file and on a fresh PostgreSQL database of a
real server the tests start (`tests/support/postgres.py`; skipped where PostgreSQL is not installed).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.engine import URL
from temporalio.testing import ActivityEnvironment

from activities.audit import AccessRecordActivities
from api.settings import ApiSettings, SettingsError
from audit import migrate as migrate_module
from audit.location import sqlite_url
from audit.migrate import head_revision
from audit.schema import hr_events, metadata
from audit.store import (
    AccessRecordError,
    AccessRecordStore,
    ReceivedHrEvent,
    record_url_from_env,
    store_path_from_env,
)
from domain.access_request import (
    RecordRequestInput,
    RequestStatus,
    RequestView,
    StageView,
    StoryEntry,
)
from domain.audit import AccessChange, RecordAccessChangesInput, access_changes_from_view
from stack.launcher import free_port
from tests.support.postgres import PostgresServer, postgres  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _line(seq: int, kind: str, actor: str = "system", **data: object) -> StoryEntry:
    return StoryEntry(
        seq=seq, at=_at(seq), kind=kind, actor=actor, text=f"{kind} #{seq}", data=data
    )


def _stage(approvers: list[str], **fields: object) -> StageView:
    return StageView(
        index=0,
        name="Manager",
        round="request",
        require="all",
        approvers=approvers,
        opened_at=_at(2),
        deadline=_at(2) + timedelta(days=7),
        **fields,
    )


def _view(
    story: list[StoryEntry],
    status: RequestStatus,
    *,
    request_id: str = "access-request-E2-ledger-ap-1",
    beneficiary: str = "E2",
    requester: str = "E2",
    submitted_at: datetime = T0,
    waiting_on: StageView | None = None,
) -> RequestView:
    return RequestView(
        request_id=request_id,
        package_id="ledger-ap",
        package_name="Ledger accounts payable",
        beneficiary_id=beneficiary,
        requester_id=requester,
        status=status,
        justification="Month-end close",
        submitted_at=submitted_at,
        resources=["group:Finance", "app:ledger:ap-clerk"],
        waiting_on=waiting_on,
        stages=[waiting_on] if waiting_on else [],
        story=story,
        updated_at=story[-1].at if story else submitted_at,
    )


# The life of one request, line by line: submitted, approved in two stages, granted, extended, removed.
STORY = [
    _line(1, "submitted", "E2"),
    _line(2, "stage_opened"),
    _line(3, "decision", "M1", stage=0, decision="approve", comment="ok for close"),
    _line(4, "stage_closed"),
    _line(5, "stage_opened"),
    _line(6, "decision", "O1", stage=1, decision="approve", comment=""),
    _line(7, "stage_closed"),
    _line(
        8,
        "granted",
        resources=["group:Finance", "app:ledger:ap-clerk"],
        until=_at(60 * 24 * 30).isoformat(),
    ),
    _line(9, "extended", "A1", until=_at(60 * 24 * 60).isoformat()),
    _line(10, "removed", resources=["group:Finance", "app:ledger:ap-clerk"], reason="expired"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def record_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """A record nobody has opened yet: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "record" / "access.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def store(record_url: URL) -> Iterator[AccessRecordStore]:
    opened = AccessRecordStore(record_url)
    yield opened
    opened.close()


def _env_naming(store: AccessRecordStore) -> dict[str, str]:
    """The environment of a process that should open this same record."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_ACCESS_RECORD_")}
    if store.path is not None:
        env["TENURE_ACCESS_RECORD_DB"] = str(store.path)
    else:
        env["TENURE_ACCESS_RECORD_URL"] = store.url.render_as_string(hide_password=False)
    return env


def test_a_view_is_read_back_with_its_story(store: AccessRecordStore) -> None:
    view = _view(STORY[:3], RequestStatus.PENDING_APPROVAL, waiting_on=_stage(["M1"]))
    store.record_request(view)
    assert store.get_request(view.request_id) == view
    assert store.get_request("access-request-nobody") is None


def test_the_same_view_twice_keeps_one_copy_of_each_story_line(store: AccessRecordStore) -> None:
    view = _view(STORY, RequestStatus.EXPIRED)
    store.record_request(view)
    store.record_request(view)
    again = store.get_request(view.request_id)
    assert again is not None and [e.seq for e in again.story] == list(range(1, 11))
    assert len(store.list_requests()) == 1


def test_an_older_view_after_a_newer_one_does_not_roll_back(store: AccessRecordStore) -> None:
    older = _view(STORY[:2], RequestStatus.PENDING_APPROVAL, waiting_on=_stage(["M1"]))
    newer = _view(STORY[:8], RequestStatus.GRANTED)
    store.record_request(newer)
    store.record_request(older)  # a retried activity from before the grant
    kept = store.get_request(newer.request_id)
    assert kept is not None and kept.status is RequestStatus.GRANTED
    assert len(kept.story) == 8 and kept.waiting_on is None
    assert store.awaiting_decision("M1") == []
    assert [r.request_id for r in store.list_requests(status="pending_approval")] == []


def test_same_story_with_an_older_updated_at_does_not_roll_back(store: AccessRecordStore) -> None:
    later = _view(STORY[:3], RequestStatus.PENDING_APPROVAL, waiting_on=_stage(["M1", "M2"]))
    later.waiting_on = _stage(["M1", "M2"], approved_by=["M1"])
    later.updated_at = _at(30)
    earlier = _view(STORY[:3], RequestStatus.PENDING_APPROVAL, waiting_on=_stage(["M1", "M2"]))
    store.record_request(later)
    store.record_request(earlier)
    assert store.awaiting_decision("M1") == []
    assert [r.updated_at for r in store.awaiting_decision("M2")] == [_at(30)]


def test_awaiting_decision_follows_the_waiting_stage(store: AccessRecordStore) -> None:
    opened = _view(STORY[:2], RequestStatus.PENDING_APPROVAL, waiting_on=_stage(["M1", "M2"]))
    store.record_request(opened)
    assert [r.request_id for r in store.awaiting_decision("M1")] == [opened.request_id]
    assert [r.request_id for r in store.awaiting_decision("M2")] == [opened.request_id]
    assert store.awaiting_decision("E2") == []

    # M1 approved; the stage (require all) still waits for M2 only.
    one_decided = _view(
        STORY[:3],
        RequestStatus.PENDING_APPROVAL,
        waiting_on=_stage(["M1", "M2"], approved_by=["M1"]),
    )
    store.record_request(one_decided)
    assert store.awaiting_decision("M1") == []
    assert [r.request_id for r in store.awaiting_decision("M2")] == [opened.request_id]

    # The stage closes and nothing waits any more.
    store.record_request(_view(STORY[:4], RequestStatus.GRANTING))
    assert store.awaiting_decision("M2") == []


def test_a_waiting_stage_with_an_outcome_waits_for_nobody(store: AccessRecordStore) -> None:
    closed = _stage(["M1"], outcome="timed out (deny)")
    store.record_request(_view(STORY[:2], RequestStatus.DENIED, waiting_on=closed))
    assert store.awaiting_decision("M1") == []


def test_list_by_requester_or_beneficiary_newest_first(store: AccessRecordStore) -> None:
    own = _view(STORY[:1], RequestStatus.SUBMITTED, request_id="r-own", submitted_at=_at(0))
    for_report = _view(
        STORY[:1],
        RequestStatus.SUBMITTED,
        request_id="r-report",
        requester="M1",
        beneficiary="E3",
        submitted_at=_at(5),
    )
    for_m1 = _view(
        STORY[:8],
        RequestStatus.GRANTED,
        request_id="r-m1",
        requester="M9",
        beneficiary="M1",
        submitted_at=_at(10),
    )
    for view in (own, for_report, for_m1):
        store.record_request(view)

    assert [r.request_id for r in store.list_requests()] == ["r-m1", "r-report", "r-own"]
    assert [r.request_id for r in store.list_requests(employee_id="M1")] == ["r-m1", "r-report"]
    assert [r.request_id for r in store.list_requests(employee_id="E3")] == ["r-report"]
    assert [r.request_id for r in store.list_requests(employee_id="E2")] == ["r-own"]
    assert [r.request_id for r in store.list_requests(employee_id="M1", status="granted")] == [
        "r-m1"
    ]
    assert [r.request_id for r in store.list_requests(limit=1)] == ["r-m1"]
    with pytest.raises(ValueError):
        store.list_requests(status="maybe")


def test_access_changes_derive_from_the_story_with_approvals_as_cause() -> None:
    changes = access_changes_from_view(_view(STORY, RequestStatus.EXPIRED))
    assert [(c.action, c.resource) for c in changes] == [
        ("granted", "group:Finance"),
        ("granted", "app:ledger:ap-clerk"),
        ("extended", "group:Finance"),
        ("extended", "app:ledger:ap-clerk"),
        ("removed", "group:Finance"),
        ("removed", "app:ledger:ap-clerk"),
    ]
    granted, _, extended, _, removed, _ = changes
    assert granted.change_id == "access-request-E2-ledger-ap-1:8:group:Finance"
    assert granted.employee_id == "E2" and granted.package_id == "ledger-ap"
    assert granted.at == _at(8) and granted.until == _at(60 * 24 * 30)
    assert extended.until == _at(60 * 24 * 60) and extended.cause["by"] == "A1"
    assert removed.until is None and removed.cause["reason"] == "expired"
    cause = granted.cause
    assert cause["type"] == "access_request"
    assert cause["request_id"] == "access-request-E2-ledger-ap-1"
    assert cause["requester"] == "E2" and cause["justification"] == "Month-end close"
    assert cause["approvals"] == [
        {"stage": 0, "by": "M1", "at": _at(3).isoformat(), "comment": "ok for close"},
        {"stage": 1, "by": "O1", "at": _at(6).isoformat(), "comment": ""},
    ]


def test_deny_decisions_are_not_approvals_and_nothing_is_removed_twice() -> None:
    story = [
        _line(1, "submitted", "E2"),
        _line(2, "decision", "M1", stage=0, decision="approve", comment=""),
        _line(3, "decision", "M2", stage=0, decision="deny", comment="no"),
        _line(4, "granted", resources=["group:Finance"], until=None),
        _line(5, "revoked", "A1", resources=["group:Finance"], reason="audit finding"),
        _line(6, "removed", resources=["group:Finance"], reason="revoked"),
    ]
    changes = access_changes_from_view(_view(story, RequestStatus.REVOKED))
    assert [(c.action, c.at, c.until) for c in changes] == [
        ("granted", _at(4), None),
        ("removed", _at(5), None),
    ]
    assert [a["by"] for a in changes[0].cause["approvals"]] == ["M1"]
    assert changes[1].cause["by"] == "A1" and changes[1].cause["reason"] == "audit finding"


def test_a_longer_story_derives_the_same_earlier_changes() -> None:
    shorter = access_changes_from_view(_view(STORY[:8], RequestStatus.GRANTED))
    longer = access_changes_from_view(_view(STORY, RequestStatus.EXPIRED))
    assert longer[: len(shorter)] == shorter


def test_access_changes_are_exported_in_order_without_duplicates(
    store: AccessRecordStore,
) -> None:
    # The request is recorded as it goes: each step's view, some of them twice (retries).
    for end in (3, 8, 8, 9, 10, 9, 10):
        store.record_request(_view(STORY[:end], RequestStatus.GRANTED))
    birthright = AccessChange(
        change_id="hr-1:granted:app:collab",
        at=_at(0),
        employee_id="E2",
        action="granted",
        resource="app:collab",
        cause={"type": "birthright", "rule": "everyone", "event_id": "hr-1"},
    )
    store.record_access_changes([birthright])
    store.record_access_changes([birthright])

    exported = list(store.iter_access_changes())
    assert exported[0] == birthright
    assert [(c.action, c.resource, c.at) for c in exported[1:]] == [
        ("granted", "app:ledger:ap-clerk", _at(8)),
        ("granted", "group:Finance", _at(8)),
        ("extended", "app:ledger:ap-clerk", _at(9)),
        ("extended", "group:Finance", _at(9)),
        ("removed", "app:ledger:ap-clerk", _at(10)),
        ("removed", "group:Finance", _at(10)),
    ]
    assert len({c.change_id for c in exported}) == len(exported) == 7
    assert [c.action for c in store.iter_access_changes(since=_at(9))] == ["extended"] * 2 + [
        "removed"
    ] * 2
    assert list(store.iter_access_changes(employee_id="E9")) == []
    assert list(store.iter_access_changes(since=_at(0), employee_id="E2")) == exported
    # Written to JSON lines as an export would, each change reads back the same.
    lines = [c.model_dump_json() for c in exported]
    assert [AccessChange.model_validate(json.loads(line)) for line in lines] == exported


def test_the_export_pages_through_many_changes(store: AccessRecordStore) -> None:
    changes = [
        AccessChange(
            change_id=f"hr-{i:04d}:granted:group:All",
            at=_at(i // 3),  # ties across page boundaries
            employee_id=f"E{i}",
            action="granted",
            resource="group:All",
            cause={"type": "birthright", "rule": "everyone", "event_id": f"hr-{i:04d}"},
        )
        for i in range(1203)
    ]
    store.record_access_changes(reversed(changes))
    assert [c.change_id for c in store.iter_access_changes()] == [c.change_id for c in changes]


def test_an_older_record_of_changes_never_changes_the_first(store: AccessRecordStore) -> None:
    first = AccessChange(
        change_id="c1", at=_at(1), employee_id="E2", action="granted", resource="group:A"
    )
    store.record_access_changes([first])
    store.record_access_changes([first.model_copy(update={"resource": "group:B"})])
    assert list(store.iter_access_changes()) == [first]


def test_another_store_and_another_process_read_what_the_writer_wrote(
    store: AccessRecordStore,
) -> None:
    view = _view(STORY[:3], RequestStatus.PENDING_APPROVAL, waiting_on=_stage(["M1", "M2"]))
    store.record_request(view)
    store.record_request(_view(STORY[:8], RequestStatus.GRANTED, request_id="r-2"))

    reader = AccessRecordStore(store.url)
    assert reader.get_request(view.request_id) == view
    reader.close()

    script = (
        "import json, sys\n"
        "from audit.store import AccessRecordStore\n"
        "store = AccessRecordStore.from_env()\n"
        "view = store.get_request(sys.argv[1])\n"
        "print(json.dumps({'status': view.status.value, 'story': len(view.story),\n"
        "    'waiting': [r.request_id for r in store.awaiting_decision('M2')],\n"
        "    'changes': [c.change_id for c in store.iter_access_changes()]}))\n"
    )
    env = {
        **_env_naming(store),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, view.request_id],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "status": "pending_approval",
        "story": 3,
        "waiting": [view.request_id],
        "changes": ["r-2:8:app:ledger:ap-clerk", "r-2:8:group:Finance"],
    }


def test_readers_in_threads_while_the_writer_writes(store: AccessRecordStore) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        reader = AccessRecordStore(store.url)
        try:
            while not stop.is_set():
                for view in reader.list_requests():
                    assert [e.seq for e in view.story] == list(range(1, len(view.story) + 1))
                list(reader.iter_access_changes())
        except BaseException as error:
            errors.append(error)
        finally:
            reader.close()

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for n in range(40):
            for end in range(1, len(STORY) + 1):
                store.record_request(_view(STORY[:end], RequestStatus.GRANTED, request_id=f"r{n}"))
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert errors == []
    assert len(store.list_requests(limit=1000)) == 40
    assert len(list(store.iter_access_changes())) == 40 * 6


def test_the_store_path_comes_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "access.db"
    assert store_path_from_env({"TENURE_ACCESS_RECORD_DB": str(path)}) == path
    for environ in ({}, {"TENURE_ACCESS_RECORD_DB": "  "}):
        with pytest.raises(AccessRecordError, match="TENURE_ACCESS_RECORD_DB"):
            store_path_from_env(environ)


def test_a_sqlite_record_runs_in_wal_mode_at_the_newest_revision(tmp_path: Path) -> None:
    path = tmp_path / "record" / "access.db"
    store = AccessRecordStore(path)
    assert store.path == path and store.revision == head_revision()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "schema_version" not in tables
    assert AccessRecordStore(path).revision == head_revision()  # opening again changes nothing


async def test_the_activities_record_through_the_store(store: AccessRecordStore) -> None:
    activities = AccessRecordActivities(store)
    env = ActivityEnvironment()
    view = _view(STORY[:8], RequestStatus.GRANTED)
    await env.run(activities.record_request, RecordRequestInput(view=view))
    await env.run(activities.record_request, RecordRequestInput(view=view))
    change = AccessChange(
        change_id="leaver-hr-9:removed:group:All Staff",
        at=_at(100),
        employee_id="E2",
        action="removed",
        resource="group:All Staff",
        cause={"type": "leaver", "event_id": "hr-9"},
    )
    await env.run(activities.record_access_changes, RecordAccessChangesInput(changes=[change]))

    assert store.get_request(view.request_id) == view
    assert [c.change_id for c in store.iter_access_changes()] == [
        f"{view.request_id}:8:app:ledger:ap-clerk",
        f"{view.request_id}:8:group:Finance",
        change.change_id,
    ]


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
                            " AND column_name IN ('request_id', 'change_id', 'event_id')"
                        )
                    ).all()
                )
                assert set(collations.values()) == {"C"}, collations
                types = dict(
                    conn.execute(
                        text(
                            "SELECT table_name || '.' || column_name, data_type"
                            " FROM information_schema.columns WHERE table_schema = 'public'"
                            " AND column_name IN ('at', 'submitted_at', 'received_at')"
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
    # A next revision, as a new table would land, that fails halfway through.
    migrations = tmp_path / "migrations"
    shutil.copytree(migrate_module.MIGRATIONS, migrations)
    (migrations / "versions" / "0003_broken.py").write_text(
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        "revision = '0003'\n"
        "down_revision = '0002'\n"
        "def upgrade():\n"
        "    op.create_table('pim_activations', sa.Column('id', sa.Text, primary_key=True))\n"
        '    op.execute("DELETE FROM hr_events")\n'
        "    raise RuntimeError('revision 0003 failed')\n"
    )
    monkeypatch.setattr(migrate_module, "MIGRATIONS", migrations)
    migrate_module._script.cache_clear()
    try:
        assert migrate_module.head_revision() == "0003"
        with pytest.raises(RuntimeError, match="revision 0003 failed"):
            AccessRecordStore(store.url)
    finally:
        monkeypatch.undo()
        migrate_module._script.cache_clear()
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("0002",)
            ]
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


# ---- naming the record -------------------------------------------------------------------------


def test_the_record_url_comes_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "access.db"
    assert record_url_from_env({"TENURE_ACCESS_RECORD_DB": str(path)}) == sqlite_url(path)
    assert record_url_from_env({"TENURE_ACCESS_RECORD_URL": f"sqlite:///{path}"}) == sqlite_url(
        path
    )
    pg = record_url_from_env({"TENURE_ACCESS_RECORD_URL": "postgresql://tenure@db:5432/record"})
    assert pg is not None and pg.drivername == "postgresql+psycopg" and pg.database == "record"
    assert record_url_from_env({}, required=False) is None
    with pytest.raises(
        AccessRecordError, match=r"TENURE_ACCESS_RECORD_DB.*TENURE_ACCESS_RECORD_URL"
    ):
        record_url_from_env({})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://u@h:notaport/db", "is not a database URL"),
        ("no scheme here://", "is not a database URL"),
        ("mysql://u@h/db", "'mysql' is not a database"),
        ("postgresql+asyncpg://u@h/db", "psycopg 3"),
        ("postgresql://u@h:5432", "names no database"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "names no file"),
        ("sqlite://host/record.db", "names a file only"),
    ],
)
def test_a_bad_record_url_is_refused_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(AccessRecordError, match=message) as refused:
        record_url_from_env({"TENURE_ACCESS_RECORD_URL": value})
    assert str(refused.value).startswith("TENURE_ACCESS_RECORD_URL=")


def test_both_variables_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AccessRecordError, match="both TENURE_ACCESS_RECORD_URL and"):
        record_url_from_env(
            {
                "TENURE_ACCESS_RECORD_URL": "postgresql://u@h/db",
                "TENURE_ACCESS_RECORD_DB": str(tmp_path / "a.db"),
            }
        )


def test_the_password_comes_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr%t:@/\n")
    env = {
        "TENURE_ACCESS_RECORD_URL": "postgresql+psycopg://tenure@db.internal:5432/record",
        "TENURE_ACCESS_RECORD_PASSWORD_FILE": str(secret),
    }
    url = record_url_from_env(env)
    assert url is not None and url.password == "s3cr%t:@/"
    assert "s3cr" not in str(url) and "s3cr" not in repr(url)

    def refused(**changes: str) -> str:
        with pytest.raises(AccessRecordError) as err:
            record_url_from_env({**env, **changes})
        assert "s3cr" not in str(err.value)
        return str(err.value)

    assert "give the password one way" in refused(
        TENURE_ACCESS_RECORD_URL="postgresql://tenure:other@db/record"
    )
    assert "No such file" in refused(TENURE_ACCESS_RECORD_PASSWORD_FILE=str(tmp_path / "none"))
    (tmp_path / "empty").write_text("\n")
    assert "is empty" in refused(TENURE_ACCESS_RECORD_PASSWORD_FILE=str(tmp_path / "empty"))
    assert "takes no password" in refused(TENURE_ACCESS_RECORD_URL="sqlite:///record.db")
    with pytest.raises(AccessRecordError, match="only for a PostgreSQL server"):
        record_url_from_env(
            {"TENURE_ACCESS_RECORD_DB": "a.db", "TENURE_ACCESS_RECORD_PASSWORD_FILE": str(secret)}
        )
    with pytest.raises(AccessRecordError, match="TENURE_ACCESS_RECORD_PASSWORD_FILE is set but"):
        record_url_from_env({"TENURE_ACCESS_RECORD_PASSWORD_FILE": str(secret)})
    with pytest.raises(AccessRecordError, match="is not a database URL") as bad:
        record_url_from_env({"TENURE_ACCESS_RECORD_URL": "postgresql://u:s3cret@h:x/db"})
    assert "s3cret" not in str(bad.value)


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql+psycopg://tenure:s3cret@127.0.0.1:{free_port()}/record"
    with pytest.raises(AccessRecordError, match="cannot open the access record at") as refused:
        AccessRecordStore(url)
    assert "s3cret" not in str(refused.value) and "127.0.0.1" in str(refused.value)


def test_the_migrate_command_migrates_the_record_the_environment_names(
    record_url: URL,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_ACCESS_RECORD_")}
    env["TENURE_ACCESS_RECORD_URL"] = record_url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "audit", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"schema revision {head_revision()}" in done.stdout
    env["TENURE_ACCESS_RECORD_URL"] = "mysql://nowhere/db"
    refused = subprocess.run(
        [sys.executable, "-m", "audit", "migrate"], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "TENURE_ACCESS_RECORD_URL=" in refused.stderr


def test_the_api_settings_take_the_record_url_and_refuse_both_variables(tmp_path: Path) -> None:
    base = {"TENURE_INTAKE_TOKEN": "t"}
    settings = ApiSettings.from_env({**base, "TENURE_ACCESS_RECORD_URL": "postgresql://u@h/db"})
    assert settings.access_record_url == record_url_from_env(
        {"TENURE_ACCESS_RECORD_URL": "postgresql+psycopg://u@h/db"}
    )
    assert settings.access_record_db is None
    on_file = ApiSettings.from_env({**base, "TENURE_ACCESS_RECORD_DB": str(tmp_path / "r.db")})
    assert on_file.access_record_url is None and on_file.access_record_db == tmp_path / "r.db"
    with pytest.raises(SettingsError, match="both TENURE_ACCESS_RECORD_URL and"):
        ApiSettings.from_env(
            {**base, "TENURE_ACCESS_RECORD_URL": "postgresql://u@h/db",
             "TENURE_ACCESS_RECORD_DB": "r.db"}
        )  # fmt: skip
