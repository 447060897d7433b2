"""The record of privileged access (audit/privileged.py): security incidents, PIM alerts and SoD
violations, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import create_engine, text

from audit.store import AccessRecordStore
from domain.detective.sod_violations import SodViolation, ViolationStatus
from domain.pim.alerts import AlertFinding, AlertKind, AlertScanResult, PimAlert
from domain.security.incident import (
    IncidentStatus,
    IncidentStep,
    IncidentView,
    Severity,
)
from tests.record.views import T0, _at

# ---- security incidents -----------------------------------------------------------------------


def _step(seq: int, kind: str, text: str | None = None) -> IncidentStep:
    return IncidentStep(
        seq=seq, at=_at(seq), kind=kind, text=text or f"{kind} #{seq}", data={"n": seq}
    )


STEPS = [
    _step(1, "received"),
    _step(2, "disabled_sign_in"),
    _step(3, "revoked_sessions"),
    _step(4, "suspended"),
]


def _incident(
    steps: list[IncidentStep],
    status: IncidentStatus,
    *,
    incident_id: str = "inc-1",
    employee: str = "E2",
    received: int = 0,
    updated: int | None = None,
) -> IncidentView:
    return IncidentView(
        incident_id=incident_id,
        employee_id=employee,
        user=f"{employee.lower()}@example.com",
        severity=Severity.HIGH,
        title="Impossible travel",
        source="sentinel",
        status=status,
        received_at=_at(received),
        suspended_at=_at(4) if status == IncidentStatus.SUSPENDED else None,
        steps=steps,
        updated_at=_at(updated if updated is not None else received + len(steps)),
    )


def test_an_incident_is_kept_with_its_steps_and_never_rolled_back(
    store: AccessRecordStore,
) -> None:
    assert store.get_incident("inc-1") is None
    received = _incident(STEPS[:1], IncidentStatus.RECEIVED)
    store.record_incident(received)
    assert store.get_incident("inc-1") == received

    suspended = _incident(STEPS, IncidentStatus.SUSPENDED)
    store.record_incident(suspended)
    assert store.get_incident("inc-1") == suspended

    # A retried write of an older view: fewer steps, or as many and an earlier updated_at.
    store.record_incident(received)
    store.record_incident(_incident(STEPS[:2], IncidentStatus.SUSPENDING, updated=99))
    store.record_incident(_incident(STEPS, IncidentStatus.FAILED, updated=3))
    assert store.get_incident("inc-1") == suspended
    store.record_incident(suspended)  # the same view again: idempotent
    assert store.get_incident("inc-1") == suspended

    # As many steps and a later update: replaced.
    later = _incident(STEPS, IncidentStatus.FAILED, updated=30)
    store.record_incident(later)
    assert store.get_incident("inc-1") == later


def test_each_incident_step_is_kept_once_as_first_written(store: AccessRecordStore) -> None:
    store.record_incident(_incident(STEPS[:2], IncidentStatus.SUSPENDING))
    # A later view whose step 2 says something else (and repeats step 3): the first copies stay.
    rewritten = [STEPS[0], _step(2, "disabled_sign_in", "other text"), STEPS[2], STEPS[2]]
    store.record_incident(_incident(rewritten, IncidentStatus.SUSPENDING, updated=10))
    got = store.get_incident("inc-1")
    assert got is not None
    assert got.steps == STEPS[:3]
    assert got.updated_at == _at(10)
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT seq, kind FROM incident_steps WHERE incident_id = 'inc-1' ORDER BY seq"
                )
            ).all()
            last_step = conn.execute(text("SELECT last_step FROM incidents")).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        (1, "received"),
        (2, "disabled_sign_in"),
        (3, "revoked_sessions"),
    ]
    assert last_step == 3


def test_incidents_are_listed_newest_first_by_person_and_status(store: AccessRecordStore) -> None:
    views = [
        _incident(STEPS[:1], IncidentStatus.RECEIVED, incident_id="inc-a", received=0),
        _incident(STEPS, IncidentStatus.SUSPENDED, incident_id="inc-b", received=10),
        _incident(STEPS, IncidentStatus.SUSPENDED, incident_id="inc-c", employee="E3", received=20),
        _incident(STEPS[:2], IncidentStatus.FAILED, incident_id="inc-B", received=20),
    ]
    for view in views:
        store.record_incident(view)
    listed = store.list_incidents()
    # Newest first; ties (inc-B and inc-c at 20) by id descending, byte-wise ("B" before "c").
    assert [v.incident_id for v in listed] == ["inc-c", "inc-B", "inc-b", "inc-a"]
    assert listed[0] == views[2]  # steps put back
    assert [v.incident_id for v in store.list_incidents(employee_id="E2")] == [
        "inc-B",
        "inc-b",
        "inc-a",
    ]
    assert [v.incident_id for v in store.list_incidents(status="suspended")] == ["inc-c", "inc-b"]
    assert [
        v.incident_id
        for v in store.list_incidents(employee_id="E2", status=IncidentStatus.SUSPENDED)
    ] == ["inc-b"]
    assert [v.incident_id for v in store.list_incidents(limit=2)] == ["inc-c", "inc-B"]
    assert store.list_incidents(employee_id="E9") == []
    with pytest.raises(ValueError):
        store.list_incidents(status="bogus")
    with pytest.raises(ValueError):
        store.list_incidents(limit=0)


# ---- PIM alerts ---------------------------------------------------------------------------------

ROLE_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
ROLE_USERS = "fe930be7-5e62-47db-91af-98c3a49a38b1"
SCANNED = {AlertKind.OUTSIDE_TENURE, AlertKind.TOO_MANY_HOLDERS}


def _finding(
    kind: AlertKind, role_id: str = ROLE_ADMIN, subject: str = "", text: str = "", **detail: object
) -> AlertFinding:
    return AlertFinding(
        kind=kind,
        role_id=role_id,
        subject=subject,
        text=text or f"{kind.value} on {role_id} {subject}".strip(),
        detail=detail,
    )


OUTSIDE = _finding(AlertKind.OUTSIDE_TENURE, subject="E2")
CROWDED = _finding(AlertKind.TOO_MANY_HOLDERS, holders=6, threshold=5)


def _all(store: AccessRecordStore) -> dict[str, PimAlert]:
    return {a.alert_id: a for a in store.list_alerts(open_only=False)}


def test_a_scan_raises_keeps_open_resolves_and_raises_again(store: AccessRecordStore) -> None:
    assert store.list_alerts() == []
    first = store.apply_alert_scan(SCANNED, [OUTSIDE, CROWDED], _at(0))
    assert [a.alert_id for a in first.raised] == sorted([OUTSIDE.alert_id, CROWDED.alert_id])
    assert first.persisting == [] and first.resolved == []
    crowded = next(a for a in first.raised if a.alert_id == CROWDED.alert_id)
    assert crowded == PimAlert(
        alert_id=f"too_many_holders:{ROLE_ADMIN}:",
        kind=AlertKind.TOO_MANY_HOLDERS,
        role_id=ROLE_ADMIN,
        subject="",
        text=CROWDED.text,
        detail={"holders": 6, "threshold": 5},
        first_raised_at=_at(0),
        last_seen_at=_at(0),
        resolved_at=None,
        times_raised=1,
    )
    assert _all(store)[CROWDED.alert_id] == crowded

    # Still there: persisting, not raised again; the latest finding's text and detail are kept.
    crowded_more = _finding(AlertKind.TOO_MANY_HOLDERS, holders=7, threshold=5, text="seven")
    second = store.apply_alert_scan(SCANNED, [OUTSIDE, crowded_more], _at(60))
    assert second.raised == [] and second.resolved == []
    assert second.persisting == sorted([OUTSIDE.alert_id, CROWDED.alert_id])
    kept = _all(store)[CROWDED.alert_id]
    assert (kept.first_raised_at, kept.last_seen_at, kept.times_raised) == (_at(0), _at(60), 1)
    assert (kept.text, kept.detail) == ("seven", {"holders": 7, "threshold": 5})

    # Gone: resolved at the scan's time.
    third = store.apply_alert_scan(SCANNED, [OUTSIDE], _at(120))
    assert third.raised == [] and third.persisting == [OUTSIDE.alert_id]
    assert third.resolved == [CROWDED.alert_id]
    assert [a.alert_id for a in store.list_alerts()] == [OUTSIDE.alert_id]
    assert _all(store)[CROWDED.alert_id].resolved_at == _at(120)
    assert store.list_alerts(kind=AlertKind.TOO_MANY_HOLDERS) == []

    # Back again: raised a second time, open, first raised as before.
    fourth = store.apply_alert_scan(SCANNED, [OUTSIDE, CROWDED], _at(180))
    [again] = fourth.raised
    assert again.alert_id == CROWDED.alert_id
    assert (again.times_raised, again.resolved_at) == (2, None)
    assert (again.first_raised_at, again.last_seen_at) == (_at(0), _at(180))
    assert fourth.persisting == [OUTSIDE.alert_id] and fourth.resolved == []
    assert _all(store)[CROWDED.alert_id] == again
    assert [a.alert_id for a in store.list_alerts(kind="too_many_holders")] == [CROWDED.alert_id]


def test_the_same_scan_applied_twice_changes_nothing_the_second_time(
    store: AccessRecordStore,
) -> None:
    store.apply_alert_scan(SCANNED, [OUTSIDE, CROWDED], _at(0))
    store.apply_alert_scan(SCANNED, [OUTSIDE], _at(60))  # CROWDED resolved
    scan = (SCANNED, [CROWDED], _at(120))  # CROWDED back, OUTSIDE resolved
    first = store.apply_alert_scan(*scan)
    assert [a.alert_id for a in first.raised] == [CROWDED.alert_id]
    assert first.resolved == [OUTSIDE.alert_id]
    after_first = _all(store)

    repeat = store.apply_alert_scan(*scan)
    assert repeat.raised == [] and repeat.resolved == []
    assert repeat.persisting == [CROWDED.alert_id]
    assert _all(store) == after_first
    assert after_first[CROWDED.alert_id].times_raised == 2

    # An older scan retried after a newer one leaves the newer one's word: nothing resolved by
    # what the newer scan saw, nothing raised again that it resolved.
    stale = store.apply_alert_scan(SCANNED, [OUTSIDE], _at(60))
    assert stale.raised == [] and stale.resolved == []
    assert _all(store) == after_first


def test_a_scan_leaves_the_kinds_it_did_not_cover_alone(store: AccessRecordStore) -> None:
    never = _finding(AlertKind.NEVER_ACTIVATED, ROLE_USERS, subject="E7", days=90)
    store.apply_alert_scan({AlertKind.NEVER_ACTIVATED}, [never], _at(0))
    store.apply_alert_scan(SCANNED, [OUTSIDE, CROWDED], _at(10))

    # A scan of one kind that sees nothing resolves only that kind's alerts.
    result = store.apply_alert_scan({AlertKind.OUTSIDE_TENURE}, [], _at(20))
    assert result.raised == [] and result.persisting == []
    assert result.resolved == [OUTSIDE.alert_id]
    assert sorted(a.alert_id for a in store.list_alerts()) == sorted(
        [never.alert_id, CROWDED.alert_id]
    )
    # A scan covering nothing changes nothing.
    assert store.apply_alert_scan(set(), [], _at(30)).model_dump() == {
        "raised": [],
        "persisting": [],
        "resolved": [],
    }
    assert len(store.list_alerts()) == 2
    assert [a.alert_id for a in store.list_alerts(kind=AlertKind.NEVER_ACTIVATED)] == [
        never.alert_id
    ]
    # Listed most recently first raised first (ties by id, descending); resolved ones too when
    # asked.
    assert [a.alert_id for a in store.list_alerts(open_only=False)] == [
        CROWDED.alert_id,
        OUTSIDE.alert_id,
        never.alert_id,
    ]
    assert [a.alert_id for a in store.list_alerts(open_only=False, limit=1)] == [CROWDED.alert_id]
    with pytest.raises(ValueError):
        store.list_alerts(kind="bogus")


def test_concurrent_runs_of_one_scan_raise_each_alert_once(store: AccessRecordStore) -> None:
    scanners = [AccessRecordStore(store.url) for _ in range(2)]
    findings = [_finding(AlertKind.OUTSIDE_TENURE, subject=f"E{n}") for n in range(20)]
    try:
        for round_ in range(5):
            at = _at(round_)
            # Each round sees every other finding (alternating halves), then all at once.
            seen = findings[round_ % 2 :: 2] if round_ < 4 else findings
            results = _together(
                [partial(scanner.apply_alert_scan, SCANNED, seen, at) for scanner in scanners]
            )
            raised = [a.alert_id for r in results for a in r.raised]
            # Exactly once, by one of the two: the half the round before did not see.
            expected = seen if round_ < 4 else findings[0::2]
            assert sorted(raised) == sorted(f.alert_id for f in expected), round_
    finally:
        for scanner in scanners:
            scanner.close()
    alerts = _all(store)
    assert len(alerts) == 20 and all(a.resolved_at is None for a in alerts.values())
    # Raised at 0 (even) or 1 (odd), again at 2 (even) and 3 (odd), and the even ones at 4.
    assert sorted(a.times_raised for a in alerts.values()) == [2] * 10 + [3] * 10


def _together(calls: list[Callable[[], AlertScanResult]]) -> list[AlertScanResult]:
    """Run the calls in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[AlertScanResult | None] = [None] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        results[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in results), results
    return [r for r in results if r is not None]


# ---- separation-of-duties violations ------------------------------------------------------------


def _violation(
    status: ViolationStatus,
    *,
    rule: str = "ap-vs-vendor-master",
    employee: str = "E2",
    detected: int = 0,
    updated: int = 0,
    until: datetime | None = None,
) -> SodViolation:
    return SodViolation(
        violation_id=f"{rule}:{employee}",
        rule=rule,
        employee_id=employee,
        sides=[
            {"resource": "group:AP", "granted_by": ["package ledger-ap (ar-1)"]},
            {"resource": "app:erp:vendor-master", "granted_by": ["birthright rule finance"]},
        ],
        status=status,
        remediation="exception" if until is not None else "notify",
        detected_at=_at(detected),
        updated_at=_at(updated),
        exception_until=until,
        workflow_id=f"sod-{rule}-{employee}",
        detail={"found_by": "sweep"},
    )


def test_a_violation_is_upserted_and_never_rolled_back(store: AccessRecordStore) -> None:
    violation_id = "ap-vs-vendor-master:E2"
    assert store.get_sod_violation(violation_id) is None
    found = _violation(ViolationStatus.OPEN)
    store.record_sod_violation(found)
    assert store.get_sod_violation(violation_id) == found

    excepted = _violation(ViolationStatus.EXCEPTED, updated=30, until=T0 + timedelta(days=90))
    store.record_sod_violation(excepted)
    assert store.get_sod_violation(violation_id) == excepted

    store.record_sod_violation(found)  # a retried older write
    store.record_sod_violation(_violation(ViolationStatus.EXCEPTION_PENDING, updated=10))
    assert store.get_sod_violation(violation_id) == excepted

    # The same updated_at again (a retry of the latest write) is taken.
    same_time = _violation(ViolationStatus.RESOLVED, updated=30)
    store.record_sod_violation(same_time)
    assert store.get_sod_violation(violation_id) == same_time


def test_violations_are_listed_newest_first_by_status_and_person(store: AccessRecordStore) -> None:
    rows = [
        _violation(ViolationStatus.OPEN, detected=0),
        _violation(ViolationStatus.NOTIFIED, rule="payroll-vs-hr", detected=10, updated=10),
        _violation(ViolationStatus.OPEN, employee="E3", detected=20, updated=20),
        _violation(ViolationStatus.REMOVED, employee="E4", detected=30, updated=30),
    ]
    for row in rows:
        store.record_sod_violation(row)
    assert [v.violation_id for v in store.list_sod_violations()] == [
        "ap-vs-vendor-master:E4",
        "ap-vs-vendor-master:E3",
        "payroll-vs-hr:E2",
        "ap-vs-vendor-master:E2",
    ]
    assert store.list_sod_violations(status=ViolationStatus.OPEN) == [rows[2], rows[0]]
    assert store.list_sod_violations(status="notified") == [rows[1]]
    assert store.list_sod_violations(employee_id="E2") == [rows[1], rows[0]]
    assert store.list_sod_violations(status="open", employee_id="E3") == [rows[2]]
    assert store.list_sod_violations(limit=1) == [rows[3]]
    assert store.list_sod_violations(status="excepted") == []
    with pytest.raises(ValueError):
        store.list_sod_violations(status="bogus")

    # A status change moves it between the lists.
    store.record_sod_violation(_violation(ViolationStatus.RESOLVED, detected=0, updated=50))
    assert store.list_sod_violations(status="open") == [rows[2]]
    assert [v.violation_id for v in store.list_sod_violations(status="resolved")] == [
        "ap-vs-vendor-master:E2"
    ]


# ---- the tables ----------------------------------------------------------------------------------


def test_the_new_ids_order_byte_wise_and_times_are_timestamps(store: AccessRecordStore) -> None:
    if store.backend != "postgresql":
        pytest.skip("SQLite compares TEXT as bytes and keeps times as fixed-width text")
    engine = create_engine(store.url)
    try:
        with engine.connect() as conn:
            columns = conn.execute(
                text(
                    "SELECT table_name || '.' || column_name, data_type, collation_name"
                    " FROM information_schema.columns WHERE table_schema = 'public' AND"
                    " table_name IN ('incidents', 'incident_steps', 'pim_alerts', 'sod_violations')"
                )
            ).all()
    finally:
        engine.dispose()
    types = {name: (data_type, collation) for name, data_type, collation in columns}
    for key in ("incidents.incident_id", "incident_steps.incident_id", "pim_alerts.alert_id",
                "sod_violations.violation_id"):  # fmt: skip
        assert types[key] == ("text", "C"), key
    for key in ("incidents.received_at", "incidents.updated_at", "incident_steps.at",
                "pim_alerts.first_raised_at", "pim_alerts.last_seen_at", "pim_alerts.resolved_at",
                "sod_violations.detected_at", "sod_violations.updated_at",
                "sod_violations.exception_until"):  # fmt: skip
        assert types[key][0] == "timestamp with time zone", key
