"""End to end over HTTP on a running local stack, over a person's life: movers, leavers, and
scenarios replayed, shuffled or posted backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from domain.lifecycle.birthright import birthright_for
from domain.lifecycle.events import WorkerRecord
from domain.lifecycle.identity import EventOutcome, LifecycleStage
from domain.policy.model import Policy
from tests.support.e2e import (
    Apis,
    assert_provisioned_once,
    hire,
    identity,
    wait_all_applied,
    wait_until,
)

pytestmark = pytest.mark.e2e


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
