"""The demo company: 25 people and a few changes (two movers, two leavers, a rehire), written once as
an HR feed in TENURE_HOME and posted to the API.

The feed is written on the first run only, with hire dates relative to that day, and reused after:
the same event ids on every run, so Tenure acknowledges the repeats and applies each hire once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx

from domain.inbound import INBOUND
from domain.lifecycle.events import MAX_EVENTS_PER_BATCH, HrEvent


@dataclass(frozen=True)
class DemoPerson:
    employee_id: str
    given_name: str
    family_name: str
    department: str
    job_title: str
    manager_id: str | None
    location: str
    hire_offset_days: int  # relative to the first run; positive = a future (scheduled) hire
    employment_type: str = "employee"
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


P = DemoPerson
# Managers come before their reports, so a manager's identity exists when a report's hire runs.
ROSTER: tuple[DemoPerson, ...] = (
    P("E0001", "Olivia", "Bennett", "People", "Chief Executive Officer", None, "London", -30),
    # Department heads.
    P("E0002", "Marcus", "Reed", "Finance", "Finance Manager", "E0001", "London", -28),
    P("E0003", "Priya", "Nair", "Engineering", "Head of Engineering", "E0001", "Berlin", -28),
    P("E0004", "Daniel", "Okafor", "Sales", "Head of Sales", "E0001", "London", -27),
    P("E0005", "Hannah", "Schmidt", "People", "Head of People", "E0001", "Berlin", -27),
    # Finance.
    P("E0006", "Grace", "Liu", "Finance", "Controller", "E0002", "London", -21),
    P("E0007", "Sam", "Taylor", "Finance", "Financial Analyst", "E0002", "London", -14),
    P("E0008", "Tomás", "García", "Finance", "Accounts Payable Specialist", "E0002", "Remote", -9),
    P("E0009", "Ada", "Lovelace", "Finance", "Analyst", "E0002", "London", 12),
    # Engineering.
    P(
        "E0010",
        "Lukas",
        "Müller",
        "Engineering",
        "Site Reliability Engineer",
        "E0003",
        "Berlin",
        -20,
        attributes={"on_call": "yes"},
    ),
    P("E0011", "Sam", "Taylor", "Engineering", "Software Engineer", "E0003", "Remote", -12),
    P("E0012", "Amara", "Mensah", "Engineering", "Software Engineer", "E0003", "Berlin", -7),
    P("E0013", "Jonas", "Becker", "Engineering", "Data Engineer", "E0003", "Berlin", -3),
    P(
        "E0014",
        "Chloe",
        "Dubois",
        "Engineering",
        "Security Consultant",
        "E0003",
        "Remote",
        -5,
        employment_type="contractor",
    ),
    P("E0015", "Ravi", "Patel", "Engineering", "Platform Engineer", "E0003", "London", -1),
    P("E0016", "Zoë", "O'Brien", "Engineering", "Software Engineer", "E0003", "Remote", 21),
    # Sales.
    P("E0017", "Ethan", "Walker", "Sales", "Account Executive", "E0004", "London", -18),
    P("E0018", "Sofia", "Rossi", "Sales", "Account Executive", "E0004", "Remote", -10),
    P("E0019", "Noah", "Fischer", "Sales", "Sales Engineer", "E0004", "Berlin", -4),
    P(
        "E0020",
        "Mia",
        "Johansson",
        "Sales",
        "Sales Consultant",
        "E0004",
        "Remote",
        -2,
        employment_type="contractor",
    ),
    P("E0021", "Leo", "Costa", "Sales", "Sales Development Rep", "E0004", "London", 30),
    # People.
    P("E0022", "Isla", "Campbell", "People", "HR Business Partner", "E0005", "London", -16),
    P("E0023", "Felix", "Wagner", "People", "Recruiter", "E0005", "Berlin", 0),
    P("E0024", "Ada", "Lovelace", "People", "Talent Partner", "E0005", "Remote", 45),
    # Left 20 days ago and hired again 2 days ago (see CHANGES): a rehire inside retention.
    P("E0025", "Omar", "Haddad", "Sales", "Account Executive", "E0004", "London", -28),
)
del P


@dataclass(frozen=True)
class DemoChange:
    """An event after the hire: an `update` (the changed fields), a `terminate`, or a rehire."""

    event_id: str
    type: str  # "update" | "terminate" | "hire" (a rehire)
    employee_id: str
    offset_days: int  # relative to the first run; positive = in the future
    changes: dict[str, str] = field(default_factory=dict)


C = DemoChange
# Kept apart from the hires so their event ids never change; posted after them.
CHANGES: tuple[DemoChange, ...] = (
    # Movers: a new department (and so new groups and apps) and a new manager.
    C(
        "demo-move-E0011",
        "update",
        "E0011",
        -3,
        {"department": "Finance", "job_title": "Financial Analyst", "manager_id": "E0002"},
    ),
    C(
        "demo-move-E0018",
        "update",
        "E0018",
        -4,
        {
            "department": "People",
            "job_title": "Recruiter",
            "manager_id": "E0005",
            "location": "Berlin",
        },
    ),
    # Leavers: one in ten days (the leave waits on a timer), one today.
    C("demo-leave-E0019", "terminate", "E0019", 10),
    C("demo-leave-E0008", "terminate", "E0008", 0),
    # A rehire: left 20 days ago, back 2 days ago, before retention deleted the accounts.
    C("demo-leave-E0025", "terminate", "E0025", -20),
    C("demo-rehire-E0025", "hire", "E0025", -2, {"job_title": "Senior Account Executive"}),
)
del C

FEED_FILE = Path("demo") / "hr_feed.jsonl"
HIRE_HOUR_UTC = time(9, 0, tzinfo=UTC)


def _at(today: datetime, offset_days: int) -> datetime:
    at = datetime.combine((today + timedelta(days=offset_days)).date(), HIRE_HOUR_UTC)
    if offset_days <= 0:
        at = min(at, today)  # an event of today, run before 09:00, has still happened already
    return at


def _record(person: DemoPerson) -> dict[str, Any]:
    worker: dict[str, Any] = {
        "employee_id": person.employee_id,
        "given_name": person.given_name,
        "family_name": person.family_name,
        "department": person.department,
        "job_title": person.job_title,
        "location": person.location,
        "employment_type": person.employment_type,
        "attributes": dict(person.attributes),
    }
    if person.manager_id:
        worker["manager_id"] = person.manager_id
    return worker


def _event(
    event_id: str, kind: str, at: datetime, today: datetime, worker: dict[str, Any]
) -> dict[str, Any]:
    event = {
        "event_id": event_id,
        "type": kind,
        "effective_at": at.isoformat().replace("+00:00", "Z"),
        "occurred_at": min(at, today).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "worker": worker,
    }
    HrEvent.model_validate(event, context=INBOUND)  # the same contract as any HR source
    return event


def hire_event(person: DemoPerson, today: datetime) -> dict[str, Any]:
    at = _at(today, person.hire_offset_days)
    event = _event(f"demo-hire-{person.employee_id}", "hire", at, today, _record(person))
    event["occurred_at"] = today.isoformat(timespec="seconds").replace("+00:00", "Z")
    return event


def change_event(change: DemoChange, today: datetime) -> dict[str, Any]:
    """An update or rehire carries the full record (the roster's, with the changes); a terminate
    needs the employee id only."""
    person = next(p for p in ROSTER if p.employee_id == change.employee_id)
    worker = {"employee_id": person.employee_id}
    if change.type != "terminate":
        worker = _record(person) | change.changes
    return _event(change.event_id, change.type, _at(today, change.offset_days), today, worker)


def demo_feed_path(home: Path) -> Path:
    return home / FEED_FILE


def ensure_demo_feed(home: Path, now: datetime | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """The demo feed's file and events: written on the first call, read back on every later one."""
    path = demo_feed_path(home)
    if path.exists():
        return path, [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    today = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    events = [hire_event(person, today) for person in ROSTER]
    events += [change_event(change, today) for change in CHANGES]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    tmp.replace(path)
    return path, events


async def post_feed(
    api_url: str, intake_token: str, events: Sequence[dict[str, Any]], batch_size: int = 100
) -> int:
    """Post the events in batches; the number the API accepted (202). Raises on any other answer."""
    batch_size = max(1, min(batch_size, MAX_EVENTS_PER_BATCH))
    accepted = 0
    headers = {"Authorization": f"Bearer {intake_token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as http:
        for start in range(0, len(events), batch_size):
            batch = list(events[start : start + batch_size])
            response = await http.post("/v1/hr/events", json={"events": batch})
            if response.status_code != 202:
                raise RuntimeError(
                    f"POST {api_url}/v1/hr/events answered {response.status_code}: "
                    f"{response.text[:500]}"
                )
            accepted += len(batch)
    return accepted
