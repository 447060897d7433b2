"""PIM benchmark on the local stack (`make bench-pim`): issue 11's targets, in one run.

On one stack with the demo policy (its `user-admin` role: Entra's User Administrator, MFA and a
ticket `INC-[0-9]{4,}`, no approval):
1. an administrator (given the Tenure.Admin app role), the security contact and N people hired
   through the HR intake (API callers must be active identities), each person made eligible for
   `user-admin` through the API; the bench waits until Graph and `GET /v1/pim/eligible` show it;
2. activations: M activations through `POST /v1/pim/activations` with an MFA token, each timed
   from the POST to the role assignment visible in Graph (`roleAssignments` filtered by
   principalId and roleDefinitionId on the emulator). Each person holds one activation of a role
   at a time, so once visible it is deactivated in the background, timed to gone from Graph, and
   the person is used again once that run has closed;
3. incidents: K of the people activate the role again, then K incidents are posted at once to
   `POST /v1/security/incidents` (the SIEM's token) while hires are posted through the intake at
   a steady rate; each incident is timed from its POST until Graph shows (a) accountEnabled false,
   (b) signInSessionsValidFromDateTime moved (sessions revoked) and (c) the person's activation
   gone. Graph is read in two requests a round (every user's two properties; every holder of the
   role), whatever K is, so watching does not load the emulator with K polls;
4. the hires' latency (202 to joiner closed) before and during the burst, where the median and
   slowest activation spent their time (from the run's history), each incident's own steps, and
   CPU seconds per process in each phase.
Figures are printed and written to bench/results/pim-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from bench.joiners import completed_joiners, hire, percentile, post, wait_for_joiner
from bench.reviews import ADMIN, CpuMeter, HireFeed, People, call_api, descendants, wait_hired
from connection.temporal import TemporalSettings, connect
from domain.access.request import AccessActivityNames
from domain.lifecycle.joiner import joiner_workflow_id
from domain.pim.activation import PimContract
from domain.pim.graph import PimGraphActivityNames
from domain.policy.file import DEFAULT_POLICY_PATH
from domain.security.incident import incident_workflow_id
from emulators.graph.tokens import emulated_user_token_form
from stack.launcher import LaunchedStack, launched_stack

RESULTS = Path(__file__).resolve().parent / "results"
ROLE = "user-admin"
TEMPLATE = "fe930be7-5e62-47db-91af-98c3a49a38b1"  # User Administrator, the role's template id
CONTACT = "E0005"  # the demo policy's security contact and user-admin's notify list
ASSIGNMENTS = "/roleManagement/directory/roleAssignments"
ELIGIBILITY_INSTANCES = "/roleManagement/directory/roleEligibilityScheduleInstances"
ACTIVATION_BODY = {
    "role_id": ROLE,
    "duration": "1h",
    "justification": "bench: unlock a locked-out account",
    "ticket": "INC-1234",
}
# Targets of issue 11.
TARGET_ACTIVATION_S = 1.0
TARGET_INCIDENT_P99_S = 5.0
ACTIVATION_POLL_S = 0.02  # one person's assignment, while one activation is timed
SETTLE_TIMEOUT_S = 120.0


def person(index: int) -> str:
    return f"P{index + 1:04d}"


def ms(value: float | None) -> int | None:
    if value is None or value == float("inf"):
        return None
    return round(value * 1000)


def spread(values: list[float]) -> dict[str, Any]:
    """count, p50, p99 and max in milliseconds."""
    if not values:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values)),
    }


# ---- people and Graph ------------------------------------------------------------------------------


class MfaPeople(People):
    """People's tokens as after an MFA sign-in (`amr` names `mfa`): the role needs it."""

    async def token(self, employee_id: str) -> dict[str, str]:
        if employee_id not in self.tokens:
            audience = self._info["api"]["token_audience"]
            form = emulated_user_token_form(employee_id, audience, mfa=True)
            response = await self._http.post(
                self._info["graph"]["token_endpoint"], data=form, headers=self._control
            )
            response.raise_for_status()
            self.tokens[employee_id] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[employee_id]}"}


async def collection(graph: httpx.AsyncClient, url: str, params: dict[str, str]) -> list[Any]:
    """Every page of a Graph collection."""
    items: list[Any] = []
    page = (await graph.get(url, params=params)).raise_for_status().json()
    items.extend(page["value"])
    while page.get("@odata.nextLink"):
        page = (await graph.get(page["@odata.nextLink"])).raise_for_status().json()
        items.extend(page["value"])
    return items


async def users_now(graph: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """Every user's sign-in switch and session epoch, by object id (one request at this size)."""
    found = await collection(
        graph,
        "/users",
        {"$select": "id,accountEnabled,signInSessionsValidFromDateTime", "$top": "999"},
    )
    return {u["id"]: u for u in found}


async def role_holders(graph: httpx.AsyncClient) -> set[str]:
    """Principals Graph shows holding the role now."""
    found = await collection(
        graph, ASSIGNMENTS, {"$filter": f"roleDefinitionId eq '{TEMPLATE}'", "$top": "999"}
    )
    return {str(a["principalId"]).lower() for a in found}


async def holds(graph: httpx.AsyncClient, object_id: str) -> bool:
    """The issue's own check: this principal's assignment of this role."""
    params = {"$filter": f"principalId eq '{object_id}' and roleDefinitionId eq '{TEMPLATE}'"}
    response = await graph.get(ASSIGNMENTS, params=params)
    response.raise_for_status()
    return bool(response.json()["value"])


async def wait_holds(
    graph: httpx.AsyncClient,
    object_id: str,
    present: bool,
    timeout_s: float,
    closed: Callable[[], Awaitable[bool]] | None = None,
) -> float | None:
    """monotonic() when Graph first showed the assignment `present` (or gone); None if not within
    the timeout, or if `closed` says the run ended first (it never will then)."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        if await holds(graph, object_id) == present:
            return time.monotonic()
        polls += 1
        if time.monotonic() > deadline:
            return None
        if closed is not None and polls % 25 == 0 and await closed():
            return None
        await asyncio.sleep(ACTIVATION_POLL_S)


async def run_closed(client: Client, workflow_id: str) -> bool:
    described = await client.get_workflow_handle(workflow_id).describe()
    return described.status != WorkflowExecutionStatus.RUNNING


# ---- setup: people, eligibilities -------------------------------------------------------------------


async def hire_people(
    client: Client, api: httpx.AsyncClient, intake: str, people: list[str]
) -> float:
    """The administrator, the security contact and the bench's people, until each is active."""
    start = time.monotonic()
    admin = hire(ADMIN, "Operations", manager=None)
    await post(api, intake, [admin])
    await wait_for_joiner(client, admin)
    since = datetime.now(UTC)
    events = [hire(e, "Engineering", manager=ADMIN) for e in [CONTACT, *people]]
    for i in range(0, len(events), 250):
        await post(api, intake, events[i : i + 250])
    await completed_joiners(client, since, len(events))
    for employee_id in (ADMIN, CONTACT, *people):
        await wait_hired(client, employee_id)
    return time.monotonic() - start


async def make_eligible(
    api: httpx.AsyncClient,
    graph: httpx.AsyncClient,
    staff: MfaPeople,
    admin: dict[str, str],
    people: list[str],
    object_ids: dict[str, str],
) -> dict[str, float]:
    """Eligibilities through the API, then until Graph and `GET /v1/pim/eligible` show each."""
    start = time.monotonic()
    limit = asyncio.Semaphore(8)

    async def assign(employee_id: str) -> None:
        body = {"employee_id": employee_id, "role_id": ROLE, "justification": "bench on-call"}
        async with limit:
            await call_api(
                lambda: api.post("/v1/pim/eligibilities", json=body, headers=admin),
                (202, 409),
                f"{employee_id}'s eligibility",
            )

    await asyncio.gather(*(assign(e) for e in people))
    posted = time.monotonic() - start
    wanted = {object_ids[e].lower() for e in people}
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        found = await collection(
            graph,
            ELIGIBILITY_INSTANCES,
            {"$filter": f"roleDefinitionId eq '{TEMPLATE}'", "$top": "999"},
        )
        if wanted <= {str(i["principalId"]).lower() for i in found}:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"eligibilities not all in Graph in {SETTLE_TIMEOUT_S}s")
        await asyncio.sleep(0.25)
    in_graph = time.monotonic() - start

    async def listed(employee_id: str) -> None:
        headers = await staff.token(employee_id)
        until = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < until:
            answer = await api.get("/v1/pim/eligible", headers=headers)
            if answer.status_code == 200 and any(
                e["role"]["role_id"] == ROLE for e in answer.json()["eligible"]
            ):
                return
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{employee_id} not listed eligible in {SETTLE_TIMEOUT_S}s")

    for i in range(0, len(people), 8):
        await asyncio.gather(*(listed(e) for e in people[i : i + 8]))
    return {
        "posted_s": round(posted, 2),
        "all_in_graph_s": round(in_graph, 2),
        "all_listed_s": round(time.monotonic() - start, 2),
    }


# ---- activations ------------------------------------------------------------------------------------


@dataclass
class Activation:
    employee_id: str
    object_id: str
    posted_at: datetime
    activation_id: str = ""
    answered_s: float | None = None  # POST -> 202
    visible_s: float | None = None  # POST -> the assignment in Graph
    answer_status: str = ""  # the 202's status
    error: str = ""
    deactivate_answered_s: float | None = None
    deactivate_gone_s: float | None = None  # deactivate POST -> gone from Graph
    deactivate_closed_s: float | None = None  # deactivate POST -> the run closed
    closed_status: str = ""


async def activate(
    api: httpx.AsyncClient,
    graph: httpx.AsyncClient,
    client: Client,
    staff: MfaPeople,
    employee_id: str,
    object_id: str,
) -> Activation:
    headers = {**await staff.token(employee_id), "Idempotency-Key": uuid.uuid4().hex}
    found = Activation(employee_id=employee_id, object_id=object_id, posted_at=datetime.now(UTC))
    t0 = time.monotonic()
    response = await api.post("/v1/pim/activations", json=ACTIVATION_BODY, headers=headers)
    found.answered_s = time.monotonic() - t0
    if response.status_code != 202:
        found.error = f"POST {response.status_code}: {response.text[:300]}"
        return found
    found.activation_id = response.json()["activation_id"]
    found.answer_status = response.json()["status"]
    seen = await wait_holds(
        graph, object_id, True, SETTLE_TIMEOUT_S, lambda: run_closed(client, found.activation_id)
    )
    if seen is None:
        view = await api.get(f"/v1/pim/activations/{found.activation_id}", headers=headers)
        detail = view.json() if view.status_code == 200 else {}
        last = (detail.get("story") or [{}])[-1].get("text", view.text[:200])
        found.error = f"never visible in Graph: {detail.get('status', '?')}: {last}"
        return found
    found.visible_s = seen - t0
    return found


async def deactivate(
    api: httpx.AsyncClient,
    graph: httpx.AsyncClient,
    client: Client,
    staff: MfaPeople,
    found: Activation,
) -> None:
    headers = await staff.token(found.employee_id)
    t0 = time.monotonic()
    response = await api.post(
        f"/v1/pim/activations/{found.activation_id}/deactivate",
        json={"reason": "bench: done"},
        headers=headers,
    )
    found.deactivate_answered_s = time.monotonic() - t0
    if response.status_code != 200:
        found.error = f"deactivate {response.status_code}: {response.text[:300]}"
    gone = await wait_holds(graph, found.object_id, False, SETTLE_TIMEOUT_S)
    found.deactivate_gone_s = None if gone is None else gone - t0
    handle = client.get_workflow_handle(found.activation_id)
    try:
        view = await asyncio.wait_for(handle.result(), SETTLE_TIMEOUT_S)
        found.closed_status = str(view.get("status", "?")) if isinstance(view, dict) else "?"
    except Exception as err:  # a failed or stuck run: said in the results
        found.error = found.error or f"run did not close cleanly: {err!r}"[:300]
    found.deactivate_closed_s = time.monotonic() - t0


async def run_activations(
    api: httpx.AsyncClient,
    graph: httpx.AsyncClient,
    client: Client,
    staff: MfaPeople,
    people: list[str],
    object_ids: dict[str, str],
    total: int,
    concurrency: int,
) -> list[Activation]:
    """`total` activations, `concurrency` at a time, each person holding at most one: a person
    is free again once their last activation's run has closed."""
    free: asyncio.Queue[str] = asyncio.Queue()
    for employee_id in people:
        free.put_nowait(employee_id)
    done: list[Activation] = []
    endings: list[asyncio.Task[None]] = []
    started = 0

    async def end_then_free(found: Activation) -> None:
        if found.activation_id:
            if found.visible_s is not None:
                await deactivate(api, graph, client, staff, found)
            else:  # denied or failed: wait for its run to close before the person goes again
                handle = client.get_workflow_handle(found.activation_id)
                try:
                    await asyncio.wait_for(handle.result(), SETTLE_TIMEOUT_S)
                except Exception as err:
                    found.error += f"; run: {err!r}"[:200]
        free.put_nowait(found.employee_id)

    async def lane() -> None:
        nonlocal started
        while started < total:
            started += 1
            employee_id = await free.get()
            found = await activate(api, graph, client, staff, employee_id, object_ids[employee_id])
            done.append(found)
            endings.append(asyncio.create_task(end_then_free(found)))
            if len(done) % 50 == 0:
                print(f"  {len(done)} activations")

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    await asyncio.gather(*endings)
    return done


async def activation_parts(client: Client, found: Activation) -> dict[str, Any]:
    """Where one activation's time went until its activate_role activity completed, from the
    run's history: before the run started (the API's work), waits for a worker on workflow and
    activity tasks, workflow task run time (local activities included), and each activity."""
    history = await client.get_workflow_handle(found.activation_id).fetch_history()
    events = history.events
    first = events[0].event_time.ToDatetime(tzinfo=UTC)
    parts: dict[str, Any] = dict.fromkeys(
        ("workflow_task_queue", "workflow_task_run", "activity_queue", "activity_run"), 0.0
    )
    parts["before_run"] = (first - found.posted_at).total_seconds()
    activities: dict[str, list[float]] = {}
    scheduled: dict[int, Any] = {}
    names: dict[int, str] = {}
    started: dict[int, Any] = {}
    for event in events:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        if event.HasField("workflow_task_scheduled_event_attributes"):
            scheduled[event.event_id] = at
        elif event.HasField("workflow_task_started_event_attributes"):
            ref = event.workflow_task_started_event_attributes.scheduled_event_id
            parts["workflow_task_queue"] += (at - scheduled[ref]).total_seconds()
            started[event.event_id] = at
        elif event.HasField("workflow_task_completed_event_attributes"):
            ref = event.workflow_task_completed_event_attributes.started_event_id
            parts["workflow_task_run"] += (at - started[ref]).total_seconds()
        elif event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = at
            names[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.HasField("activity_task_started_event_attributes"):
            ref = event.activity_task_started_event_attributes.scheduled_event_id
            parts["activity_queue"] += (at - scheduled[ref]).total_seconds()
            started[event.event_id] = at
        elif event.HasField("activity_task_completed_event_attributes"):
            attrs = event.activity_task_completed_event_attributes
            name = names[attrs.scheduled_event_id]
            queue = (
                started[attrs.started_event_id] - scheduled[attrs.scheduled_event_id]
            ).total_seconds()
            ran = (at - started[attrs.started_event_id]).total_seconds()
            parts["activity_run"] += ran
            activities[name] = [round(queue, 3), round(ran, 3)]
            if name == PimGraphActivityNames.ACTIVATE:
                parts["post_to_activate_done"] = (at - found.posted_at).total_seconds()
                break
    out: dict[str, Any] = {k: round(v, 3) for k, v in parts.items()}
    out["activities_queue_run_s"] = activities
    out["visible_s"] = round(found.visible_s or 0.0, 3)
    return out


# ---- incidents --------------------------------------------------------------------------------------


@dataclass
class Incident:
    incident_id: str
    employee_id: str
    object_id: str
    activation_id: str
    sessions_before: str | None
    t0: float | None = None
    posted_at: datetime | None = None
    status_code: int | None = None
    ack_s: float | None = None
    error: str = ""
    disabled_s: float | None = None
    revoked_s: float | None = None
    gone_s: float | None = None

    @property
    def all_s(self) -> float | None:
        parts = (self.disabled_s, self.revoked_s, self.gone_s)
        return None if None in parts else max(p for p in parts if p is not None)


async def post_incident(api: httpx.AsyncClient, siem: str, incident: Incident) -> None:
    body = {
        "incident_id": incident.incident_id,
        "user": incident.employee_id,
        "severity": "high",
        "title": "Impossible travel and a token replayed (bench)",
        "source": "bench-siem",
    }
    incident.posted_at = datetime.now(UTC)
    incident.t0 = time.monotonic()
    response = await api.post(
        "/v1/security/incidents", json=body, headers={"Authorization": f"Bearer {siem}"}
    )
    incident.ack_s = time.monotonic() - incident.t0
    incident.status_code = response.status_code
    if response.status_code != 202:
        incident.error = f"POST {response.status_code}: {response.text[:300]}"


async def watch_incidents(
    graph: httpx.AsyncClient, incidents: list[Incident], poll_s: float, timeout_s: float
) -> int:
    """Two Graph reads a round until every incident's three effects show; the rounds made."""
    deadline = time.monotonic() + timeout_s
    rounds = 0
    while True:
        users = await users_now(graph)
        users_at = time.monotonic()
        holders = await role_holders(graph)
        holders_at = time.monotonic()
        rounds += 1
        pending = 0
        for inc in incidents:
            if inc.t0 is None or inc.all_s is not None:
                pending += inc.t0 is None
                continue
            user = users.get(inc.object_id, {})
            if inc.disabled_s is None and user.get("accountEnabled") is False:
                inc.disabled_s = users_at - inc.t0
            moved = user.get("signInSessionsValidFromDateTime")
            if inc.revoked_s is None and moved and moved != inc.sessions_before:
                inc.revoked_s = users_at - inc.t0
            if inc.gone_s is None and inc.object_id.lower() not in holders:
                inc.gone_s = holders_at - inc.t0
            pending += inc.all_s is None
        if not pending or time.monotonic() > deadline:
            return rounds
        await asyncio.sleep(poll_s)


async def end_of_activation(
    client: Client, activation_id: str, since: datetime
) -> tuple[dict[str, float], int]:
    """When the activation's run got the incident's signal, released the role in the ledger and
    removed it from Graph, in seconds from `since`; and its history's length."""
    history = await client.get_workflow_handle(activation_id).fetch_history()
    names: dict[int, str] = {}
    found: dict[str, float] = {}
    wanted = {
        AccessActivityNames.RELEASE: "activation_released",
        PimGraphActivityNames.DEACTIVATE: "activation_removed_from_graph",
    }
    for event in history.events:
        at = (event.event_time.ToDatetime(tzinfo=UTC) - since).total_seconds()
        if event.HasField("workflow_execution_signaled_event_attributes"):
            if event.workflow_execution_signaled_event_attributes.signal_name == (
                PimContract.SIGNAL_SUSPENDED
            ):
                found.setdefault("activation_signalled", at)
        elif event.HasField("activity_task_scheduled_event_attributes"):
            names[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.HasField("activity_task_completed_event_attributes"):
            name = names[event.activity_task_completed_event_attributes.scheduled_event_id]
            if name in wanted:
                found.setdefault(wanted[name], at)
        elif event.HasField("workflow_execution_completed_event_attributes"):
            found["activation_run_closed"] = at
    return found, len(history.events)


def _marker_times(event: Any) -> tuple[str, datetime | None]:
    """A local activity's type and completion, from its marker's data."""
    data = event.marker_recorded_event_attributes.details.get("data")
    if data is None or not data.payloads:  # a patch's marker
        return "", None
    found = json.loads(data.payloads[0].data)

    def when(key: str) -> datetime | None:
        raw = found.get(key)
        if not raw:
            return None
        return datetime.fromtimestamp(raw.get("seconds", 0) + raw.get("nanos", 0) / 1e9, UTC)

    name = str(found.get("activity_type", "?")).split(".")[-1]
    return name, when("complete_time")


async def incident_timeline(client: Client, incident: Incident) -> dict[str, float]:
    """Where one incident's run spent its time, in seconds from its POST: the run's start, each
    workflow task's schedule, start and completion, each local activity's end, and the
    acknowledgement's update."""
    assert incident.posted_at is not None
    history = await client.get_workflow_handle(
        incident_workflow_id(incident.incident_id)
    ).fetch_history()
    found: dict[str, float] = {}

    def put(key: str, at: datetime | None) -> None:
        if at is not None:
            n, base = 2, key
            while key in found:  # the second workflow task, and so on
                key, n = f"{base}_{n}", n + 1
            found[key] = round((at - incident.posted_at).total_seconds(), 3)  # type: ignore[operator]

    for event in history.events:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        kind = event.WhichOneof("attributes") or "?"
        if kind.startswith("workflow_task_") or kind.startswith("workflow_execution_update_"):
            put(kind.removesuffix("_event_attributes"), at)
        elif kind == "workflow_execution_started_event_attributes":
            put("run_started", at)
        elif kind == "marker_recorded_event_attributes":
            name, completed = _marker_times(event)
            if name:  # when it ran in the worker, and when its task's completion reached history
                put(f"local_{name}_completed", completed)
                put(f"local_{name}_recorded", at)
        if len(found) > 40:
            break
    return dict(sorted(found.items(), key=lambda kv: kv[1]))


async def incident_steps(
    api: httpx.AsyncClient, client: Client, admin: dict[str, str], incidents: list[Incident]
) -> dict[str, Any]:
    """Each incident's own record: its steps' times from its `received_at` (p50/p99 per kind),
    with the ended activation's own steps from its run's history, and the runs' history lengths.
    Read once every ended activation's run has closed (or a minute has passed)."""

    async def closed(activation_id: str) -> None:
        handle = client.get_workflow_handle(activation_id)
        try:
            await asyncio.wait_for(handle.result(), 60)
        except Exception as err:  # said by its missing steps; the run is not ours to judge here
            print(f"  {activation_id} did not close cleanly: {err!r}"[:300])

    await asyncio.gather(*(closed(i.activation_id) for i in incidents))
    offsets: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    lengths: dict[str, list[float]] = {"incident_run": [], "activation_run": []}
    slowest: dict[str, Any] = {}
    by_speed = sorted(incidents, key=lambda i: i.all_s if i.all_s is not None else float("inf"))
    worst, median = by_speed[-1], by_speed[len(by_speed) // 2]
    for inc in incidents:
        response = await api.get(f"/v1/security/incidents/{inc.incident_id}", headers=admin)
        if response.status_code != 200:
            key = f"http_{response.status_code}"
            statuses[key] = statuses.get(key, 0) + 1
            continue
        view = response.json()
        statuses[view["status"]] = statuses.get(view["status"], 0) + 1
        received = datetime.fromisoformat(view["received_at"])
        mine: dict[str, float] = {}
        for step in view["steps"]:
            mine.setdefault(
                step["kind"], (datetime.fromisoformat(step["at"]) - received).total_seconds()
            )
        ended, length = await end_of_activation(client, inc.activation_id, received)
        mine.update(ended)
        for kind, offset in mine.items():
            offsets.setdefault(kind, []).append(offset)
        lengths["activation_run"].append(length)
        described = await client.get_workflow_handle(
            incident_workflow_id(inc.incident_id)
        ).describe()
        lengths["incident_run"].append(described.history_length)
        if inc.posted_at is not None:
            mine["received_after_post"] = (received - inc.posted_at).total_seconds()
        if inc is worst:
            ordered = sorted(mine.items(), key=lambda kv: kv[1])
            slowest = {"incident_id": inc.incident_id, **{k: round(v, 3) for k, v in ordered}}
            slowest["run_from_post_s"] = await incident_timeline(client, inc)
    by_time = sorted(offsets.items(), key=lambda kv: percentile(kv[1], 50))
    return {
        "median_incident_run_from_post_s": {
            "incident_id": median.incident_id,
            "all_three_s": median.all_s,
            **await incident_timeline(client, median),
        },
        "statuses": statuses,
        "step_offsets_from_received": {k: spread(v) for k, v in by_time},
        "slowest_incident_s": slowest,
        "history_events": {
            k: {"min": min(v), "max": max(v)} if v else {} for k, v in lengths.items()
        },
    }


# ---- hires ------------------------------------------------------------------------------------------


async def hire_latencies(
    client: Client, feed: HireFeed, since: datetime
) -> list[tuple[float, datetime]]:
    """(202 -> joiner closed, when its 202 came) of every hire the feed posted."""
    if not feed.accepted:
        return []
    closes = await completed_joiners(client, since, len(feed.accepted))
    found = []
    for event, at in feed.accepted:
        jid = joiner_workflow_id(event["worker"]["employee_id"], event["event_id"])
        found.append(((closes[jid] - at).total_seconds(), at))
    return found


# ---- the run ----------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="tenure-bench-pim-"))
    with launched_stack(home / "stack", policy=DEFAULT_POLICY_PATH, demo=False) as stack:
        return await run_with_stack(stack, args)


async def run_with_stack(stack: LaunchedStack, args: argparse.Namespace) -> dict[str, Any]:
    info = stack.info()
    client = await connect(
        TemporalSettings(
            address=info["temporal"]["address"], namespace=info["temporal"]["namespace"]
        )
    )
    intake, siem = info["api"]["intake_token"], info["api"]["siem_token"]
    graph_auth = {"Authorization": f"Bearer {info['graph']['token']}"}
    pids = {name: descendants(int(pid)) for name, pid in info["processes"].items()}
    people = [person(i) for i in range(args.people)]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with (
        httpx.AsyncClient(base_url=info["api"]["url"], timeout=120, limits=limits) as api,
        httpx.AsyncClient(
            base_url=info["graph"]["url"], headers=graph_auth, timeout=60, limits=limits
        ) as graph,
        httpx.AsyncClient(timeout=60) as http,
    ):
        staff = MfaPeople(info, http)
        print(f"hiring {ADMIN} (administrator), {CONTACT} and {len(people)} people")
        hired_s = await hire_people(client, api, intake, people)
        await staff.grant_admin(ADMIN)
        admin = await staff.token(ADMIN)
        object_ids = {e: await staff.object_id(e) for e in people}
        print(f"hired in {hired_s:.1f}s; making them eligible for {ROLE}")
        eligibility = await make_eligible(api, graph, staff, admin, people, object_ids)
        print(f"eligible: {eligibility}")

        # ---- 1. activations, no approval ----------------------------------------------------------
        print(f"{args.activations} activations, {args.activation_concurrency} at a time")
        cpu = CpuMeter(pids)
        cpu.begin()
        t0 = time.monotonic()
        activations = await run_activations(
            api,
            graph,
            client,
            staff,
            people,
            object_ids,
            args.activations,
            args.activation_concurrency,
        )
        activation_wall = time.monotonic() - t0
        activation_cpu = cpu.end()
        visible = sorted(
            (a for a in activations if a.visible_s is not None), key=lambda a: a.visible_s or 0
        )
        breakdown = {}
        if visible:
            breakdown = {
                "median": await activation_parts(client, visible[len(visible) // 2]),
                "slowest": await activation_parts(client, visible[-1]),
            }
        visible_s = [a.visible_s for a in visible if a.visible_s is not None]
        print(
            f"activations: p50 {ms(percentile(visible_s, 50)) if visible_s else None} ms, "
            f"p99 {ms(percentile(visible_s, 99)) if visible_s else None} ms"
        )

        # ---- 2. incidents while hires come in -----------------------------------------------------
        targets = people[: args.incidents]
        print(f"{len(targets)} people activate {ROLE} again before their incidents")
        limit = asyncio.Semaphore(5)

        async def hold(employee_id: str) -> Activation | None:
            async with limit:
                found = await activate(
                    api, graph, client, staff, employee_id, object_ids[employee_id]
                )
            if found.visible_s is None:
                print(f"  {employee_id} gets no incident: its activation failed: {found.error}")
                return None
            headers = await staff.token(employee_id)
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while time.monotonic() < deadline:  # until the run has recorded it granted
                view = await api.get(f"/v1/pim/activations/{found.activation_id}", headers=headers)
                if view.status_code == 200 and view.json()["status"] == "granted":
                    return found
                await asyncio.sleep(0.25)
            raise TimeoutError(f"{found.activation_id} not granted in {SETTLE_TIMEOUT_S}s")

        held = [a for a in await asyncio.gather(*(hold(e) for e in targets)) if a is not None]
        before = await users_now(graph)
        enabled_before = sum(1 for a in held if before[a.object_id].get("accountEnabled") is True)
        run = uuid.uuid4().hex[:6]
        incidents = [
            Incident(
                incident_id=f"BENCH-{run}-{n + 1:03d}",
                employee_id=a.employee_id,
                object_id=a.object_id,
                activation_id=a.activation_id,
                sessions_before=before[a.object_id].get("signInSessionsValidFromDateTime"),
            )
            for n, a in enumerate(held)
        ]
        print(f"hires at {args.rate}/s; in {args.lead_in:.0f}s, {len(incidents)} incidents at once")
        feed = HireFeed(api, intake, args.rate)
        stop = asyncio.Event()
        since = datetime.now(UTC)
        cpu = CpuMeter(pids)
        cpu.begin()
        feeding = asyncio.create_task(feed.run(stop))
        await asyncio.sleep(args.lead_in)
        watching = asyncio.create_task(
            watch_incidents(graph, incidents, args.poll_ms / 1000, args.incident_timeout)
        )
        burst_from = datetime.now(UTC)
        burst_t0 = time.monotonic()
        await asyncio.gather(*(post_incident(api, siem, i) for i in incidents))
        posted_in = time.monotonic() - burst_t0
        rounds = await watching
        burst_wall = time.monotonic() - burst_t0
        burst_to = datetime.now(UTC)
        stop.set()
        await feeding
        incident_cpu = cpu.end()
        done = [i.all_s for i in incidents if i.all_s is not None]
        print(
            f"incidents: {len(done)}/{len(incidents)} done in {burst_wall:.1f}s; "
            f"p50 {ms(percentile(done, 50)) if done else None} ms, "
            f"p99 {ms(percentile(done, 99)) if done else None} ms; "
            f"{len(feed.accepted)} hires meanwhile"
        )
        steps = await incident_steps(api, client, admin, incidents)
        hires = await hire_latencies(client, feed, since)

    missing = len(incidents) - len(done)
    # An incident not done within the timeout counts as slower than any that was.
    incident_all = done + [float("inf")] * missing
    during = [s for s, at in hires if burst_from <= at <= burst_to]
    lead = [s for s, at in hires if at < burst_from]
    activation_p50 = percentile(visible_s, 50) if visible_s else None
    activation_p99 = percentile(visible_s, 99) if visible_s else None
    incident_p50 = percentile(incident_all, 50) if incident_all else None
    incident_p99 = percentile(incident_all, 99) if incident_all else None

    def ratio(value: float | None, target: float) -> float | None:
        if value is None or value == float("inf"):
            return None
        return round(value / target, 3)

    failed = [a for a in activations if a.error]
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "policy": str(DEFAULT_POLICY_PATH),
        "role": {"role_id": ROLE, "template_id": TEMPLATE},
        "people": args.people,
        "hire_setup_s": round(hired_s, 1),
        "eligibility_setup": eligibility,
        "activations": {
            "count": len(activations),
            "concurrency": args.activation_concurrency,
            "wall_s": round(activation_wall, 1),
            "post_to_graph": spread(visible_s),
            "post_to_202": spread([a.answered_s for a in activations if a.answered_s is not None]),
            "status_in_202": {
                s: sum(1 for a in activations if a.answer_status == s)
                for s in sorted({a.answer_status for a in activations})
            },
            "deactivate_post_to_gone": spread(
                [a.deactivate_gone_s for a in activations if a.deactivate_gone_s is not None]
            ),
            "deactivate_post_to_run_closed": spread(
                [a.deactivate_closed_s for a in activations if a.deactivate_closed_s is not None]
            ),
            "closed_status": {
                s: sum(1 for a in activations if a.closed_status == s)
                for s in sorted({a.closed_status for a in activations})
            },
            "failed": len(failed),
            "failures": [asdict(a) | {"posted_at": a.posted_at.isoformat()} for a in failed[:10]],
            "breakdown_s": breakdown,
            "cpu_seconds": activation_cpu,
        },
        "incidents": {
            "count": len(incidents),
            "people_without_an_activation_to_end": len(targets) - len(held),
            "posted_within_s": round(posted_in, 3),
            "accepted_202": sum(1 for i in incidents if i.status_code == 202),
            "errors": [i.error for i in incidents if i.error][:10],
            "not_done_in_timeout": missing,
            "timeout_s": args.incident_timeout,
            "graph_poll_ms": args.poll_ms,
            "graph_rounds": rounds,
            "accounts_enabled_before": enabled_before,
            "post_to_all_three": spread(done),
            # None when an unfinished incident is the p99: it never met all three.
            "p99_ms_counting_unfinished": ms(incident_p99),
            "post_to_account_disabled": spread(
                [i.disabled_s for i in incidents if i.disabled_s is not None]
            ),
            "post_to_sessions_revoked": spread(
                [i.revoked_s for i in incidents if i.revoked_s is not None]
            ),
            "post_to_activation_gone": spread(
                [i.gone_s for i in incidents if i.gone_s is not None]
            ),
            "post_to_202": spread([i.ack_s for i in incidents if i.ack_s is not None]),
            "record": steps,
            "cpu_seconds": incident_cpu,
        },
        "hires": {
            "rate_per_s": args.rate,
            "lead_in_s": args.lead_in,
            "during_burst": spread(during),
            "before_burst": spread(lead),
            "all": spread([s for s, _ in hires]),
        },
        "targets": {
            "activation_p50_s": TARGET_ACTIVATION_S,
            "activation_p99_s": TARGET_ACTIVATION_S,
            "incident_p99_s": TARGET_INCIDENT_P99_S,
        },
        "ratios_to_targets": {
            "activation_p50": ratio(activation_p50, TARGET_ACTIVATION_S),
            "activation_p99": ratio(activation_p99, TARGET_ACTIVATION_S),
            "incident_p50": ratio(incident_p50, TARGET_INCIDENT_P99_S),
            "incident_p99": ratio(incident_p99, TARGET_INCIDENT_P99_S),
        },
    }
    result["targets_met"] = {
        "activation_p50": activation_p50 is not None and activation_p50 < TARGET_ACTIVATION_S,
        "activation_p99": activation_p99 is not None and activation_p99 < TARGET_ACTIVATION_S,
        "incident_p99": incident_p99 is not None and incident_p99 < TARGET_INCIDENT_P99_S,
    }
    return result


def table(result: dict[str, Any]) -> str:
    act, inc, hires = result["activations"], result["incidents"], result["hires"]
    ratios, met = result["ratios_to_targets"], result["targets_met"]

    def pair(spread_: dict[str, Any]) -> str:
        return f"{spread_['p50_ms']} / {spread_['p99_ms']} ms"

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rows = [
        ("activation POST -> in Graph p50 / p99", f"{pair(act['post_to_graph'])} ({act['post_to_graph']['count']} of {act['count']}, {act['concurrency']} at a time)", f"< {TARGET_ACTIVATION_S:.0f} s: ratio {ratios['activation_p50']} / {ratios['activation_p99']} {verdict(met['activation_p50'])} / {verdict(met['activation_p99'])}"),
        ("  activation POST -> 202 p50 / p99", pair(act["post_to_202"]), ""),
        ("  deactivate POST -> gone p50 / p99", pair(act["deactivate_post_to_gone"]), ""),
        ("incident POST -> all three p50 / p99", f"{pair(inc['post_to_all_three'])} ({inc['post_to_all_three']['count']} of {inc['count']} done)", f"p99 < {TARGET_INCIDENT_P99_S:.0f} s: ratio {ratios['incident_p50']} / {ratios['incident_p99']} {verdict(met['incident_p99'])}"),
        ("  -> accountEnabled false", pair(inc["post_to_account_disabled"]), ""),
        ("  -> sessions revoked", pair(inc["post_to_sessions_revoked"]), ""),
        ("  -> activation gone from Graph", pair(inc["post_to_activation_gone"]), ""),
        ("  -> 202", pair(inc["post_to_202"]), ""),
        ("hire 202 -> joiner closed, during burst", f"{pair(hires['during_burst'])} ({hires['during_burst']['count']} hires at {hires['rate_per_s']}/s)", ""),
        ("  before the burst", f"{pair(hires['before_burst'])} ({hires['before_burst']['count']} hires)", ""),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:<{value_width}}  {c}" for a, b, c in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100, help="people hired and made eligible")
    parser.add_argument("--activations", type=int, default=200)
    parser.add_argument(
        "--activation-concurrency", type=int, default=1, help="activations timed at once"
    )
    parser.add_argument("--incidents", type=int, default=50, help="posted at once (<= --people)")
    parser.add_argument("--rate", type=float, default=10.0, help="hires per second meanwhile")
    parser.add_argument("--lead-in", type=float, default=3.0, help="seconds of hires before")
    parser.add_argument("--poll-ms", type=float, default=50.0, help="Graph rounds while watching")
    parser.add_argument("--incident-timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.incidents > args.people:
        parser.error("--incidents must not exceed --people (one incident per person)")
    result = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"pim-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(table(result))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
