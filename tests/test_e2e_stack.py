"""End to end over HTTP on a running local stack: Temporal dev server, worker, API, Graph emulator and
two scim2-server targets, all started by `tenure stack run` on free ports in a throwaway home."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from api.caller import TokenSettings, TokenVerifier
from cli.api_session import load_session
from cli.main import main as tenure
from connection.temporal import TemporalSettings, connect
from domain.birthright import birthright_for
from domain.events import WorkerRecord, identity_workflow_id
from domain.identity import EventOutcome, IdentityContract, IdentityState, LifecycleStage
from domain.joiner import joiner_workflow_id
from domain.policy import Policy
from stack.launcher import LaunchedStack, launched_stack

pytestmark = pytest.mark.e2e

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedStack]:
    with launched_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
async def temporal(stack: LaunchedStack) -> AsyncIterator[Client]:
    info = stack.info()["temporal"]
    yield await connect(TemporalSettings(address=info["address"], namespace=info["namespace"]))


USER_FIELDS = (
    "id,employeeId,givenName,surname,displayName,userPrincipalName,mailNickname,department,"
    "jobTitle,employeeType,employeeHireDate,officeLocation,accountEnabled"
)


class Apis:
    """Thin HTTP views of the stack's API, Graph emulator and SCIM apps, as a test reads them."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.api = httpx.AsyncClient(base_url=info["api"]["url"], timeout=60)
        self.graph = httpx.AsyncClient(
            base_url=info["graph"]["url"],
            headers={"Authorization": f"Bearer {info['graph']['token']}"},
            timeout=30,
        )
        self.control = httpx.AsyncClient(
            base_url=info["graph"]["control_url"],
            headers={"Authorization": f"Bearer {info['graph']['token']}"},
            timeout=30,
        )
        self.scim = {
            app: httpx.AsyncClient(
                base_url=cfg["url"], headers={"Authorization": f"Bearer {cfg['token']}"}, timeout=30
            )
            for app, cfg in info["scim_apps"].items()
        }

    async def post_events(
        self, events: list[dict[str, Any]], token: str | None = "intake"
    ) -> httpx.Response:
        headers = {}
        if token == "intake":
            headers["Authorization"] = f"Bearer {self.info['api']['intake_token']}"
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.api.post("/v1/hr/events", json={"events": events}, headers=headers)

    async def graph_users(self, employee_id: str) -> list[dict[str, Any]]:
        response = await self.graph.get(
            "/users", params={"$filter": f"employeeId eq '{employee_id}'", "$select": USER_FIELDS}
        )
        response.raise_for_status()
        return response.json()["value"]

    async def manager_id(self, user_id: str) -> str | None:
        response = await self.graph.get(f"/users/{user_id}/manager")
        return response.json()["id"] if response.status_code == 200 else None

    async def group_names(self, user_id: str) -> list[str]:
        response = await self.graph.get(f"/users/{user_id}/memberOf")
        response.raise_for_status()
        return [g["displayName"] for g in response.json()["value"]]

    async def scim_users(self, app: str, employee_id: str) -> list[dict[str, Any]]:
        response = await self.scim[app].get(
            "/Users", params={"filter": f'externalId eq "{employee_id}"'}
        )
        response.raise_for_status()
        return response.json().get("Resources", [])

    async def scim_group_members(self, app: str, display_name: str) -> list[str]:
        response = await self.scim[app].get(
            "/Groups", params={"filter": f'displayName eq "{display_name}"'}
        )
        response.raise_for_status()
        groups = response.json().get("Resources", [])
        return [m["value"] for g in groups for m in g.get("members", [])]

    async def request_log(self, since: int = 0) -> list[dict[str, Any]]:
        response = await self.control.get("/requests", params={"since": since})
        response.raise_for_status()
        body = response.json()
        return body["value"]

    async def aclose(self) -> None:
        for client in (self.api, self.graph, self.control, *self.scim.values()):
            await client.aclose()


@pytest.fixture(scope="module")
async def apis(stack: LaunchedStack) -> AsyncIterator[Apis]:
    views = Apis(stack.info())
    yield views
    await views.aclose()


def hire(employee_id: str, *, event_id: str | None = None, **worker: Any) -> dict[str, Any]:
    record = {
        "employee_id": employee_id,
        "given_name": "Test",
        "family_name": f"Person{employee_id}",
    }
    record.update(worker)
    return {
        "event_id": event_id or f"e2e-hire-{employee_id}",
        "type": "hire",
        "effective_at": YESTERDAY.isoformat(),
        "occurred_at": YESTERDAY.isoformat(),
        "worker": record,
    }


DEPARTMENTS = ["Finance", "Engineering", "Sales", "People"]
LOCATIONS = ["London", "Berlin", "Remote"]


def team(manager_id: str, first: int, count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        hire(
            f"{prefix}{first + i:03d}",
            department=DEPARTMENTS[i % 4],
            job_title="Analyst" if i % 4 == 0 else "Specialist",
            location=LOCATIONS[i % 3],
            manager_id=manager_id,
            employment_type="contractor" if i % 7 == 3 else "employee",
            attributes={"on_call": "yes"} if i % 4 == 1 else {},
        )
        for i in range(count)
    ]


async def identity(temporal: Client, employee_id: str) -> IdentityState | None:
    try:
        return await temporal.get_workflow_handle(identity_workflow_id(employee_id)).query(
            IdentityContract.QUERY_DETAILS, result_type=IdentityState
        )
    except RPCError:
        return None


async def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


async def wait_all_applied(
    temporal: Client, events: list[dict[str, Any]], timeout_s: float = 240
) -> None:
    async def all_applied() -> bool:
        for event in events:
            state = await identity(temporal, event["worker"]["employee_id"])
            applied = state and any(
                h.event_id == event["event_id"] and h.outcome is EventOutcome.APPLIED
                for h in state.history
            )
            if not applied:
                return False
        return True

    await wait_until(all_applied, timeout_s, f"{len(events)} hires to be provisioned")


async def assert_provisioned_once(apis: Apis, policy: Policy, events: list[dict[str, Any]]) -> None:
    for event in events:
        record = WorkerRecord.model_validate(event["worker"])
        users = await apis.graph_users(record.employee_id)
        assert len(users) == 1, f"{record.employee_id}: {len(users)} Graph users"
        user = users[0]
        assert user["givenName"] == record.given_name and user["surname"] == record.family_name
        assert user["department"] == record.department and user["jobTitle"] == record.job_title
        assert user["officeLocation"] == record.location
        assert user["employeeType"] == record.employment_type.value
        assert user["accountEnabled"] is True
        assert user["userPrincipalName"].endswith("@contoso.example.com")
        if record.manager_id:
            [manager] = await apis.graph_users(record.manager_id)
            assert await apis.manager_id(user["id"]) == manager["id"]
        groups, apps = birthright_for(policy, record)
        assert sorted(await apis.group_names(user["id"])) == sorted(g.group for g in groups)
        granted = {a.app for a in apps}
        for app in apis.scim:
            accounts = await apis.scim_users(app, record.employee_id)
            assert len(accounts) == (1 if app in granted else 0), f"{record.employee_id} in {app}"
            if accounts:
                assert accounts[0]["userName"] == user["userPrincipalName"]
                assert accounts[0]["active"] is True
                # App roles are SCIM group memberships: each held exactly once.
                for role in next(a.roles for a in apps if a.app == app):
                    members = await apis.scim_group_members(app, role)
                    assert members.count(accounts[0]["id"]) == 1, (record.employee_id, role)


async def test_twenty_hires_are_provisioned_and_a_replay_changes_nothing(
    apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    events = [hire("E7000", department="Finance", job_title="Finance Manager", location="London")]
    events += team("E7000", 1, 19, "E7")
    response = await apis.post_events(events)
    assert response.status_code == 202, response.text
    assert [a["workflow_id"] for a in response.json()["accepted"]] == [
        identity_workflow_id(e["worker"]["employee_id"]) for e in events
    ]
    await wait_all_applied(temporal, events)
    await assert_provisioned_once(apis, demo_policy, events)

    # The same 20 again: acknowledged, recognised as duplicates, and not one more Graph call.
    before = await apis.request_log()
    last_seq = max((r["seq"] for r in before), default=0)
    again = await apis.post_events(events)
    assert again.status_code == 202

    async def duplicates_seen() -> bool:
        for event in events:
            state = await identity(temporal, event["worker"]["employee_id"])
            if not state or not any(h.outcome is EventOutcome.DUPLICATE for h in state.history):
                return False
        return True

    await wait_until(duplicates_seen, 60, "the replayed events to be recognised")
    assert await apis.request_log(since=last_seq) == []
    await assert_provisioned_once(apis, demo_policy, events)


async def test_worker_killed_mid_batch_leaves_no_duplicate_and_no_gap(
    stack: LaunchedStack, apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    events = [
        hire("E7100", department="Engineering", job_title="Head of Engineering", location="Berlin")
    ]
    events += team("E7100", 101, 39, "E7")
    worker_pid = stack.pid_of("worker")
    response = await apis.post_events(events)
    assert response.status_code == 202, response.text

    async def some_provisioned() -> bool:
        return bool(await apis.graph_users("E7100"))

    await wait_until(some_provisioned, 60, "the first hires to start")
    os.kill(worker_pid, signal.SIGKILL)
    # Proof the kill landed mid-batch: some joiners had not finished (users are created first, so
    # counting Graph users would not tell). Describing a workflow needs no worker.
    unfinished = 0
    for event in events:
        joiner = joiner_workflow_id(event["worker"]["employee_id"], event["event_id"])
        try:
            status = (await temporal.get_workflow_handle(joiner).describe()).status
        except RPCError:
            unfinished += 1  # not even started yet
            continue
        unfinished += status == WorkflowExecutionStatus.RUNNING
    assert unfinished > 0, "the worker should die in the middle of the batch"

    # The stack's supervisor restarts the worker; Temporal hands it the unfinished work.
    async def restarted() -> bool:
        return stack.pid_of("worker") != worker_pid

    await wait_until(restarted, 60, "the worker to be restarted")
    await wait_all_applied(temporal, events)
    await assert_provisioned_once(apis, demo_policy, events)
    for event in events:
        state = await identity(temporal, event["worker"]["employee_id"])
        assert state is not None and state.stage is LifecycleStage.ACTIVE


async def test_throttled_graph_calls_are_retried_no_sooner_than_retry_after(
    apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    start = await apis.request_log()
    since = max((r["seq"] for r in start), default=0)
    fault = await apis.control.post(
        "/faults", json={"status": 429, "retry_after": 2, "path": "/v1.0/", "share": 0.3, "seed": 7}
    )
    assert fault.status_code in (200, 201), fault.text
    try:
        events = [hire("E7200", department="Sales", job_title="Head of Sales", location="London")]
        events += team("E7200", 201, 9, "E7")
        assert (await apis.post_events(events)).status_code == 202
        await wait_all_applied(temporal, events)
    finally:
        await apis.control.delete("/faults")
    await assert_provisioned_once(apis, demo_policy, events)

    log = await apis.request_log(since=since)
    throttled = [r for r in log if r["status"] == 429]
    assert len(throttled) >= 3, "the fault should have throttled several calls"

    # Every activity attempt tags its calls (workflow:activity:attempt). No later attempt of an
    # activity that was throttled may call Graph before the Retry-After it was given.
    def parse(tag: str) -> tuple[str, int]:
        activity, attempt = tag.rsplit(":", 1)
        return activity, int(attempt)

    tagged = [(parse(r["activity"]), r) for r in log if r.get("activity")]
    retried = 0
    for t in throttled:
        activity, attempt = parse(t["activity"])
        later = [r for (a, n), r in tagged if a == activity and n > attempt]
        for retry in later:
            assert retry["time"] >= t["time"] + t["retry_after"] - 0.05, (t, retry)
        retried += bool(later)
    # Most throttled calls show up again as a later attempt (a manager lookup shared by several
    # activities may be retried under another activity's tag).
    assert retried >= len(throttled) / 2, (retried, len(throttled))


async def test_intake_refuses_missing_tokens_and_bad_events(apis: Apis, temporal: Client) -> None:
    good = hire("E7300", department="People")
    assert (await apis.post_events([good], token=None)).status_code == 401
    assert (await apis.post_events([good], token="not-the-token")).status_code == 401

    bad = hire("E7301", department="People")
    bad["effective_at"] = "next tuesday"
    del bad["worker"]["given_name"]
    response = await apis.post_events([good, bad])
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in response.json()["errors"]}
    assert any("effective_at" in f for f in fields), fields
    # Nothing of a bad batch is accepted: not even the good event's identity exists.
    assert await identity(temporal, "E7300") is None
    assert Counter(e["index"] for e in response.json()["errors"]).keys() == {1}


async def test_login_gets_a_token_the_stacks_api_settings_accept(
    stack: LaunchedStack, apis: Apis, temporal: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    joiner = hire("E7350", department="People")
    assert (await apis.post_events([joiner])).status_code == 202
    await wait_all_applied(temporal, [joiner])
    monkeypatch.setenv("TENURE_HOME", str(stack.home))

    assert await asyncio.to_thread(tenure, ["login", "--as", "E7350"]) == 0

    session = load_session(stack.home)
    assert session is not None and session.api_url == apis.info["api"]["url"]
    # Verified as the API verifies: the issuer and audience the stack gives it, keys discovered.
    settings = TokenSettings(
        issuer=apis.info["api"]["token_issuer"], audience=apis.info["api"]["token_audience"]
    )
    verifier = TokenVerifier(settings)
    try:
        caller = await verifier.caller(f"Bearer {session.token}")
    finally:
        await verifier.aclose()
    assert caller.employee_id == "E7350" and caller.roles == frozenset()
    assert await asyncio.to_thread(tenure, ["logout"]) == 0


# --- movers, leavers, replays ------------------------------------------------------------------


def change(
    kind: str, employee_id: str, at: datetime, event_id: str, **worker: Any
) -> dict[str, Any]:
    """An `update` (pass the full record) or a `terminate` (the employee id is enough)."""
    return {
        "event_id": event_id,
        "type": kind,
        "effective_at": at.isoformat(),
        "occurred_at": at.isoformat(),
        "worker": {"employee_id": employee_id, **worker},
    }


async def wait_all_recorded(
    temporal: Client, events: list[dict[str, Any]], timeout_s: float = 120
) -> None:
    """Until every event has a final outcome (applied or ignored) in its identity's history."""

    async def all_recorded() -> bool:
        for event in events:
            state = await identity(temporal, event["worker"]["employee_id"])
            if not state or not any(
                h.event_id == event["event_id"]
                and h.outcome in (EventOutcome.APPLIED, EventOutcome.IGNORED)
                for h in state.history
            ):
                return False
            if state.running_transition:
                return False
        return True

    await wait_until(all_recorded, timeout_s, f"outcomes of {len(events)} events")


async def access_snapshot(apis: Apis, employee_id: str) -> dict[str, Any]:
    [user] = await apis.graph_users(employee_id)
    scim = {}
    for app in apis.scim:
        scim[app] = sorted(bool(a["active"]) for a in await apis.scim_users(app, employee_id))
    return {
        "enabled": user["accountEnabled"],
        "groups": sorted(await apis.group_names(user["id"])),
        "scim": scim,
    }


async def assert_access_follows(apis: Apis, policy: Policy, record: WorkerRecord) -> None:
    """Graph groups and active SCIM accounts are exactly the policy's birthright for `record`."""
    [user] = await apis.graph_users(record.employee_id)
    groups, apps = birthright_for(policy, record)
    assert sorted(await apis.group_names(user["id"])) == sorted(g.group for g in groups)
    granted = {a.app for a in apps}
    for app in apis.scim:
        active = [a for a in await apis.scim_users(app, record.employee_id) if a["active"]]
        assert len(active) == (1 if app in granted else 0), f"{record.employee_id} in {app}"


async def test_mover_access_and_attributes_follow_the_new_record(
    apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    managers = [
        hire("E7500", department="Sales", job_title="Head of Sales", location="London"),
        hire("E7502", department="Finance", job_title="Finance Manager", location="Berlin"),
    ]
    movers = [
        hire(
            "E7501",
            department="Sales",
            job_title="Account Executive",
            location="London",
            manager_id="E7500",
        ),
        hire(
            "E7503",
            department="Finance",
            job_title="Analyst",
            location="London",
            manager_id="E7502",
        ),
    ]
    assert (await apis.post_events(managers + movers)).status_code == 202
    await wait_all_applied(temporal, managers + movers, timeout_s=120)
    await assert_provisioned_once(apis, demo_policy, movers)

    now = datetime.now(UTC).replace(microsecond=0)
    base = {"given_name": "Test", "employment_type": "employee"}
    updates = [
        # Sales/London -> Finance/Berlin under a new manager: gains Finance groups and the ledger.
        change(
            "update",
            "E7501",
            now,
            "e2e-move-E7501",
            family_name="PersonE7501",
            department="Finance",
            job_title="Analyst",
            location="Berlin",
            manager_id="E7502",
            **base,
        ),
        # Finance -> Sales: loses the ledger (the demo policy has no grace period).
        change(
            "update",
            "E7503",
            now,
            "e2e-move-E7503",
            family_name="PersonE7503",
            department="Sales",
            job_title="Account Executive",
            location="London",
            manager_id="E7500",
            **base,
        ),
    ]
    assert (await apis.post_events(updates)).status_code == 202
    await wait_all_applied(temporal, updates, timeout_s=120)
    await wait_all_recorded(temporal, updates)

    for update in updates:
        record = WorkerRecord.model_validate(update["worker"])
        [user] = await apis.graph_users(record.employee_id)
        assert user["department"] == record.department
        assert user["officeLocation"] == record.location
        assert user["jobTitle"] == record.job_title
        assert user["accountEnabled"] is True
        [manager] = await apis.graph_users(record.manager_id or "")
        assert await apis.manager_id(user["id"]) == manager["id"]
        await assert_access_follows(apis, demo_policy, record)
    # The mover into Finance holds one active ledger account; the mover out holds none active.
    assert [a["active"] for a in await apis.scim_users("ledger", "E7501")] == [True]
    assert not any(a["active"] for a in await apis.scim_users("ledger", "E7503"))


async def test_leaver_is_disabled_everywhere(
    apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    joiner = hire("E7510", department="Finance", job_title="Analyst", location="London")
    assert (await apis.post_events([joiner])).status_code == 202
    await wait_all_applied(temporal, [joiner], timeout_s=120)
    await assert_provisioned_once(apis, demo_policy, [joiner])

    leave = change(
        "terminate", "E7510", datetime.now(UTC).replace(microsecond=0), "e2e-leave-E7510"
    )
    assert (await apis.post_events([leave])).status_code == 202
    await wait_all_applied(temporal, [leave], timeout_s=120)
    await wait_all_recorded(temporal, [leave])

    [user] = await apis.graph_users("E7510")
    assert user["accountEnabled"] is False
    assert await apis.group_names(user["id"]) == []
    accounts = [a for app in apis.scim for a in await apis.scim_users(app, "E7510")]
    assert accounts, "the leaver's app accounts are kept (disabled) until retention"
    assert all(a["active"] is False for a in accounts)
    state = await identity(temporal, "E7510")
    assert state is not None and state.stage is LifecycleStage.DISABLED


def scenario(employee_id: str, *, leaves: bool) -> list[dict[str, Any]]:
    """Hired 3 days ago in Sales/London, moved to Engineering/Berlin 2 days ago, maybe left 1 day ago."""
    now = datetime.now(UTC).replace(microsecond=0)
    record = {
        "given_name": "Test",
        "family_name": f"Person{employee_id}",
        "job_title": "Specialist",
        "employment_type": "employee",
    }
    events = [
        change(
            "hire",
            employee_id,
            now - timedelta(days=3),
            f"e2e-s-hire-{employee_id}",
            department="Sales",
            location="London",
            **record,
        ),
        change(
            "update",
            employee_id,
            now - timedelta(days=2),
            f"e2e-s-move-{employee_id}",
            department="Engineering",
            location="Berlin",
            **record,
        ),
    ]
    if leaves:
        events.append(
            change("terminate", employee_id, now - timedelta(days=1), f"e2e-s-leave-{employee_id}")
        )
    return events


async def test_scenario_replayed_changes_nothing_and_shuffled_ends_the_same(
    apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    in_order = {"leaver": "E7520", "mover": "E7521"}

    def events_of(ids: dict[str, str]) -> list[dict[str, Any]]:
        return scenario(ids["leaver"], leaves=True) + scenario(ids["mover"], leaves=False)

    ordered = events_of(in_order)
    for event in ordered:  # one by one, each in its own request, in effective order
        assert (await apis.post_events([event])).status_code == 202
    await wait_all_recorded(temporal, ordered)
    before = {role: await access_snapshot(apis, eid) for role, eid in in_order.items()}
    assert before["leaver"]["enabled"] is False and before["leaver"]["groups"] == []
    assert not any(any(flags) for flags in before["leaver"]["scim"].values())
    moved = WorkerRecord.model_validate(ordered[-1]["worker"])
    assert moved.employee_id == in_order["mover"] and moved.department == "Engineering"
    await assert_access_follows(apis, demo_policy, moved)
    assert before["mover"]["enabled"] is True

    # The very same events again: nothing written to Graph (reads are fine), nothing changes.
    log = await apis.request_log()
    since = max((r["seq"] for r in log), default=0)
    assert (await apis.post_events(ordered)).status_code == 202

    async def duplicates_seen() -> bool:
        for event in ordered:
            state = await identity(temporal, event["worker"]["employee_id"])
            if not state or not any(
                h.event_id == event["event_id"] and h.outcome is EventOutcome.DUPLICATE
                for h in state.history
            ):
                return False
        return True

    await wait_until(duplicates_seen, 60, "the replayed scenario to be recognised")
    writes = [r for r in await apis.request_log(since=since) if r["method"] != "GET"]
    assert writes == []
    assert {role: await access_snapshot(apis, eid) for role, eid in in_order.items()} == before


async def test_scenario_posted_backwards_ends_as_in_order(
    apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    # The same story as above for two other people, posted backwards: terminate, update, hire.
    shuffled = {"leaver": "E7530", "mover": "E7531"}
    backwards = scenario(shuffled["leaver"], leaves=True) + scenario(
        shuffled["mover"], leaves=False
    )
    by_type = {"terminate": 0, "update": 1, "hire": 2}
    backwards.sort(key=lambda e: by_type[e["type"]])
    for event in backwards:
        assert (await apis.post_events([event])).status_code == 202
    await wait_all_recorded(temporal, backwards)
    moved = WorkerRecord.model_validate(
        next(e for e in backwards if e["event_id"] == f"e2e-s-move-{shuffled['mover']}")["worker"]
    )
    await assert_access_follows(apis, demo_policy, moved)
    mover = await access_snapshot(apis, shuffled["mover"])
    assert mover["enabled"] is True
    leaver = await access_snapshot(apis, shuffled["leaver"])
    assert leaver["enabled"] is False and leaver["groups"] == []
    assert not any(any(flags) for flags in leaver["scim"].values())
