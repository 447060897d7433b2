"""The access record: requests, their stories and access changes kept in Tenure's own store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.record import AccessRecordActivities
from audit.migrate import head_revision
from audit.store import (
    AccessRecordError,
    AccessRecordStore,
    store_path_from_env,
)
from domain.access.request import (
    RecordRequestInput,
    RequestStatus,
)
from domain.audit import AccessChange, RecordAccessChangesInput, access_changes_from_view
from tests.record.views import REPO, STORY, _at, _env_naming, _line, _stage, _view


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
