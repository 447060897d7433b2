"""The record of privileged access: security incidents and their steps, PIM alerts, and
separation-of-duties violations.

Each function runs on a connection the store opens for it (`AccessRecordStore`); a write runs in
one transaction. Activities run at least once and may be retried after a newer write, so every
write is idempotent and monotonic, like those of `audit/writes.py`:
- an incident's steps are inserted once each (`DO NOTHING`) and never changed; its row is replaced
  only by a view at least as far along: as many steps or more, and with as many a later (or the
  same) `updated_at` (`DO UPDATE ... WHERE (last_step, updated_at) <= (excluded...)`);
- a SoD violation's row is replaced only by one with a later (or the same) `updated_at`;
- a PIM alert scan (`apply_alert_scan`) raises, keeps open and resolves alerts by what it sees at
  its `at`; a scan older than what the record already says of an alert leaves that alert alone,
  and the same scan applied twice leaves the record as the first left it.
Rows are written in key order, so concurrent transactions take their row locks in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, bindparam, select, text, tuple_, update

from audit.schema import as_utc, incident_steps, incidents, pim_alerts, sod_violations
from audit.writes import CHUNK, _insert
from domain.detective.sod_violations import SodViolation, ViolationStatus
from domain.pim.alerts import AlertFinding, AlertKind, AlertScanResult, PimAlert
from domain.security.incident import IncidentStatus, IncidentStep, IncidentView

# pg_advisory_xact_lock key that makes alert scans take turns ("pimalert" in ASCII).
_PG_ALERT_SCAN_LOCK = 0x70696D616C657274

_T = TypeVar("_T")


def _chunks(values: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# ---- security incidents ---------------------------------------------------------------------------


def record_incident(conn: Connection, view: IncidentView) -> None:
    steps: dict[int, IncidentStep] = {}
    for step in view.steps:
        steps.setdefault(step.seq, step)
    if steps:
        conn.execute(
            _insert(conn, incident_steps).on_conflict_do_nothing(),
            [
                {
                    "incident_id": view.incident_id,
                    "seq": seq,
                    "at": step.at,
                    "kind": step.kind,
                    "entry": step.model_dump_json(),
                }
                for seq, step in sorted(steps.items())
            ],
        )
    insert = _insert(conn, incidents).values(
        incident_id=view.incident_id,
        employee_id=view.employee_id,
        severity=view.severity.value,
        status=view.status.value,
        received_at=view.received_at,
        updated_at=view.updated_at,
        last_step=len(steps),
        # The steps live in incident_steps, one row per step, and are put back on read.
        view=view.model_dump_json(exclude={"steps"}),
    )
    excluded = insert.excluded
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[incidents.c.incident_id],
            set_={c.name: excluded[c.name] for c in incidents.c if c.name != "incident_id"},
            # A retried write of an older view leaves the newer one.
            where=tuple_(incidents.c.last_step, incidents.c.updated_at)
            <= tuple_(excluded.last_step, excluded.updated_at),
        )
    )


def get_incident(conn: Connection, incident_id: str) -> IncidentView | None:
    view = conn.execute(
        select(incidents.c.view).where(incidents.c.incident_id == incident_id)
    ).scalar_one_or_none()
    return None if view is None else _incident_views(conn, [view])[0]


def list_incidents(
    conn: Connection,
    *,
    employee_id: str | None = None,
    status: IncidentStatus | str | None = None,
    limit: int = 100,
) -> list[IncidentView]:
    """Incidents newest first (by when they were received)."""
    c = incidents.c
    query = select(c.view)
    if employee_id is not None:
        query = query.where(c.employee_id == employee_id)
    if status is not None:
        query = query.where(c.status == IncidentStatus(status).value)
    query = query.order_by(c.received_at.desc(), c.incident_id.desc()).limit(limit)
    return _incident_views(conn, list(conn.execute(query).scalars()))


def _incident_views(conn: Connection, view_rows: list[str]) -> list[IncidentView]:
    """Views with their steps put back from incident_steps (in step order), in the order given."""
    views = [json.loads(v) for v in view_rows]
    ids = list(dict.fromkeys(v["incident_id"] for v in views))
    steps: dict[str, list[IncidentStep]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        rows = conn.execute(
            select(incident_steps.c.incident_id, incident_steps.c.entry)
            .where(incident_steps.c.incident_id.in_(chunk))
            .order_by(incident_steps.c.incident_id, incident_steps.c.seq)
        )
        for incident_id, entry in rows:
            steps[incident_id].append(IncidentStep.model_validate_json(entry))
    result = []
    for view in views:
        model = IncidentView.model_validate(view)
        model.steps = list(steps[model.incident_id])
        result.append(model)
    return result


# ---- PIM alerts -----------------------------------------------------------------------------------


def apply_alert_scan(
    conn: Connection,
    kinds: Iterable[AlertKind | str],
    findings: Sequence[AlertFinding],
    at: datetime,
) -> AlertScanResult:
    """Apply what a scan at `at` saw: every cause it sees now (`findings`), for the kinds of
    alert it looked for (`kinds`).

    A finding without an alert raises one; one whose alert is open keeps it open (persisting,
    `last_seen_at` moves to `at`); one whose alert was resolved before `at` raises it again
    (`times_raised` + 1). Open alerts of the covered kinds that the scan no longer sees, and that
    no later scan saw, are resolved at `at`. Kinds not covered are left as they are, but for their
    findings (a finding is always taken). An alert the record knows of from after `at` (seen or
    resolved later) is left alone, and is in none of the result's lists if resolved.
    """
    at = as_utc(at)
    covered = sorted({AlertKind(k).value for k in kinds})
    seen: dict[str, AlertFinding] = {}
    for finding in findings:
        seen.setdefault(finding.alert_id, finding)
    ids = sorted(seen)
    a = pim_alerts.c
    if conn.dialect.name == "postgresql":
        # Scans take turns: each decides on the alerts as the one before left them. (SQLite's
        # write transactions already do: BEGIN IMMEDIATE.)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_ALERT_SCAN_LOCK})

    stored: dict[str, Row[Any]] = {}
    for chunk in _chunks(ids):
        query = select(a.alert_id, a.last_seen_at, a.resolved_at).where(a.alert_id.in_(chunk))
        stored.update((row.alert_id, row) for row in conn.execute(query))
    new = [i for i in ids if i not in stored]
    still_open = [i for i in ids if i in stored and stored[i].resolved_at is None]
    # Raised again: resolved before this scan (one resolved later, by a later scan, stays so).
    back = [
        i
        for i in ids
        if i in stored and stored[i].resolved_at is not None and stored[i].resolved_at < at
    ]

    if new:
        conn.execute(
            _insert(conn, pim_alerts).on_conflict_do_nothing(),
            [
                {
                    "alert_id": i,
                    "kind": seen[i].kind.value,
                    "role_id": seen[i].role_id,
                    "subject": seen[i].subject,
                    "first_raised_at": at,
                    "last_seen_at": at,
                    "resolved_at": None,
                    "times_raised": 1,
                    "alert": seen[i].model_dump_json(),
                }
                for i in new
            ],
        )
    fresh = [i for i in still_open if stored[i].last_seen_at <= at]
    if fresh:
        conn.execute(
            update(pim_alerts)
            .where(a.alert_id == bindparam("b_id"), a.resolved_at.is_(None), a.last_seen_at <= at)
            .values(last_seen_at=at, alert=bindparam("b_alert")),
            [{"b_id": i, "b_alert": seen[i].model_dump_json()} for i in fresh],
        )
    if back:
        conn.execute(
            update(pim_alerts)
            .where(a.alert_id == bindparam("b_id"), a.resolved_at < at)
            .values(
                resolved_at=None,
                last_seen_at=at,
                times_raised=a.times_raised + 1,
                alert=bindparam("b_alert"),
            ),
            [{"b_id": i, "b_alert": seen[i].model_dump_json()} for i in back],
        )

    resolved: list[str] = []
    if covered:
        query = (
            select(a.alert_id)
            .where(a.resolved_at.is_(None), a.kind.in_(covered), a.last_seen_at <= at)
            .order_by(a.alert_id)
        )
        gone = [i for i in conn.execute(query).scalars() if i not in seen]
        for chunk in _chunks(gone):
            conn.execute(
                update(pim_alerts)
                .where(a.alert_id.in_(chunk), a.resolved_at.is_(None), a.last_seen_at <= at)
                .values(resolved_at=at)
            )
        resolved = gone

    raised = _alerts_by_id(conn, sorted(new + back))
    return AlertScanResult(
        raised=[raised[i] for i in sorted(raised)], persisting=still_open, resolved=resolved
    )


def list_alerts(
    conn: Connection,
    *,
    open_only: bool = True,
    kind: AlertKind | str | None = None,
    limit: int = 200,
) -> list[PimAlert]:
    """Alerts most recently first raised first (the open ones only, unless `open_only` is False)."""
    a = pim_alerts.c
    query = select(pim_alerts)
    if open_only:
        query = query.where(a.resolved_at.is_(None))
    if kind is not None:
        query = query.where(a.kind == AlertKind(kind).value)
    query = query.order_by(a.first_raised_at.desc(), a.alert_id.desc()).limit(limit)
    return [_alert(row) for row in conn.execute(query)]


def _alerts_by_id(conn: Connection, alert_ids: Sequence[str]) -> dict[str, PimAlert]:
    found: dict[str, PimAlert] = {}
    for chunk in _chunks(alert_ids):
        for row in conn.execute(select(pim_alerts).where(pim_alerts.c.alert_id.in_(chunk))):
            found[row.alert_id] = _alert(row)
    return found


def _alert(row: Row[Any]) -> PimAlert:
    finding = AlertFinding.model_validate_json(row.alert)
    return PimAlert(
        alert_id=row.alert_id,
        kind=AlertKind(row.kind),
        role_id=row.role_id,
        subject=row.subject,
        text=finding.text,
        detail=finding.detail,
        first_raised_at=row.first_raised_at,
        last_seen_at=row.last_seen_at,
        resolved_at=row.resolved_at,
        times_raised=row.times_raised,
    )


# ---- separation-of-duties violations --------------------------------------------------------------


def record_sod_violation(conn: Connection, violation: SodViolation) -> None:
    insert = _insert(conn, sod_violations).values(
        violation_id=violation.violation_id,
        rule=violation.rule,
        employee_id=violation.employee_id,
        status=violation.status.value,
        detected_at=violation.detected_at,
        updated_at=violation.updated_at,
        exception_until=violation.exception_until,
        violation=violation.model_dump_json(),
    )
    excluded = insert.excluded
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[sod_violations.c.violation_id],
            set_={c.name: excluded[c.name] for c in sod_violations.c if c.name != "violation_id"},
            # A retried write of an older state leaves the newer one.
            where=sod_violations.c.updated_at <= excluded.updated_at,
        )
    )


def get_sod_violation(conn: Connection, violation_id: str) -> SodViolation | None:
    violation = conn.execute(
        select(sod_violations.c.violation).where(sod_violations.c.violation_id == violation_id)
    ).scalar_one_or_none()
    return None if violation is None else SodViolation.model_validate_json(violation)


def list_sod_violations(
    conn: Connection,
    *,
    status: ViolationStatus | str | None = None,
    employee_id: str | None = None,
    limit: int = 500,
) -> list[SodViolation]:
    """Violations newest first (by when they were detected)."""
    v = sod_violations.c
    query = select(v.violation)
    if status is not None:
        query = query.where(v.status == ViolationStatus(status).value)
    if employee_id is not None:
        query = query.where(v.employee_id == employee_id)
    query = query.order_by(v.detected_at.desc(), v.violation_id.desc()).limit(limit)
    return [SodViolation.model_validate_json(raw) for raw in conn.execute(query).scalars()]
