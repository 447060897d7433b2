"""Access reviews end to end over HTTP with tokens, on a running local stack: a campaign over a
group's members and a SCIM app, one over workload identities, reviewers deciding in bulk, a
stranger refused and recorded, the cap confirmed by an operator, denials gone from Graph and
SCIM, the report naming every decider, and the Schedules `tenure schedules sync` made."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from domain.reviews.campaign import ReviewContract, schedule_id
from emulators.graph.tokens import emulated_user_token_form
from tests.support.e2e import Apis, hire, identity, wait_until

pytestmark = pytest.mark.e2e

DOMAIN = "contoso.example.com"
ADMIN, OWNER, STRANGER = "E8001", "E8002", "E8003"


async def token(apis: Apis, employee_id: str) -> dict[str, str]:
    form = emulated_user_token_form(employee_id, apis.info["api"]["token_audience"])
    response = await apis.control.post(apis.info["graph"]["token_endpoint"], data=form)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def upn_of(apis: Apis, employee_id: str) -> str:
    users = await apis.graph_users(employee_id)
    return users[0]["userPrincipalName"]


@pytest.fixture(scope="module")
async def people(apis: Apis, temporal: Client) -> dict[str, dict[str, str]]:
    """Three identities Tenure hires (an administrator, the owner who reviews, a stranger)."""
    events = [hire(e, department="Finance") for e in (ADMIN, OWNER, STRANGER)]
    assert (await apis.post_events(events)).status_code == 202

    async def active() -> bool:
        states = [await identity(temporal, e) for e in (ADMIN, OWNER, STRANGER)]
        return all(
            s is not None and s.stage.value == "active" and not s.running_transition for s in states
        )

    await wait_until(active, 90, "the reviewers' hires")
    (
        await apis.control.put(f"/app-roles/{ADMIN}", json={"roles": ["Tenure.Admin"]})
    ).raise_for_status()
    return {e: await token(apis, e) for e in (ADMIN, OWNER, STRANGER)}


async def seed_directories(apis: Apis) -> None:
    """Holders Tenure never hired: their access was granted outside it, so a denial removes it
    directly in Graph and in the ledger app."""
    now = datetime.now(UTC)
    recent = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = (now - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    owner = await upn_of(apis, OWNER)
    users = [
        {
            "userPrincipalName": f"rx1@{DOMAIN}",
            "employeeId": "RX1",
            "signInActivity": {"lastSignInDateTime": recent},
        },
        {
            "userPrincipalName": f"rx2@{DOMAIN}",
            "employeeId": "RX2",
            "signInActivity": {"lastSignInDateTime": stale},
        },
        {
            "userPrincipalName": f"rx3@{DOMAIN}",
            "employeeId": "RX3",
            "signInActivity": {"lastSignInDateTime": recent},
        },
    ]
    seed = {
        "users": users,
        "groups": [
            {
                "displayName": "Review Finance",
                "members": [u["userPrincipalName"] for u in users],
                "owners": [owner],
            }
        ],
        "servicePrincipals": [
            {
                "appId": "e2e-payroll",
                "displayName": "E2E Payroll",
                "appRoles": [{"value": "Payroll.Read"}],
                "owners": [owner],
            },
            {
                "appId": "e2e-exporter",
                "displayName": "E2E Exporter",
                "signInActivity": {"lastSignInDateTime": recent},
            },
            {"appId": "e2e-old-sync", "displayName": "E2E Old Sync"},
        ],
        "appRoleAssignments": [
            {"principal": "e2e-exporter", "resource": "e2e-payroll", "appRole": "Payroll.Read"},
            {"principal": "e2e-old-sync", "resource": "e2e-payroll", "appRole": "Payroll.Read"},
        ],
    }
    (await apis.control.post("/seed", json=seed)).raise_for_status()
    ledger = apis.scim["ledger"]
    role = (
        await ledger.post(
            "/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "ap-clerk",
            },
        )
    ).json()
    for employee_id in ("RX1", "RX2"):
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"{employee_id.lower()}@{DOMAIN}",
            "externalId": employee_id,
            "active": True,
        }
        account = (await ledger.post("/Users", json=body)).raise_for_status().json()
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": account["id"]}]}],
        }
        (await ledger.patch(f"/Groups/{role['id']}", json=patch)).raise_for_status()


async def campaign_view(apis: Apis, campaign: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await apis.api.get(f"/v1/reviews/{campaign}", headers=headers)
    response.raise_for_status()
    return response.json()


async def until_phase(
    apis: Apis, campaign: str, headers: dict[str, str], phase: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        view = await campaign_view(apis, campaign, headers)
        if view["progress"]["phase"] == phase:
            return view
        await asyncio.sleep(0.5)
    raise AssertionError(f"{campaign} never reached {phase}: {view['progress']}")


async def my_items(apis: Apis, campaign: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        response = await apis.api.get(f"/v1/reviews/{campaign}/items", headers=headers)
        if response.status_code == 200 and response.json()["items"]:
            return response.json()["items"]
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.5)


async def members(apis: Apis, group: str) -> set[str]:
    found = (
        await apis.graph.get("/groups", params={"$filter": f"displayName eq '{group}'"})
    ).json()["value"]
    listed = (
        await apis.graph.get(f"/groups/{found[0]['id']}/members", params={"$select": "employeeId"})
    ).json()
    return {m.get("employeeId") for m in listed["value"]}


async def report(apis: Apis, campaign: str, headers: dict[str, str], format: str) -> str:
    response = await apis.api.get(
        f"/v1/reviews/{campaign}/report", params={"format": format}, headers=headers
    )
    response.raise_for_status()
    return response.text


async def start(apis: Apis, review: str, headers: dict[str, str]) -> str:
    response = await apis.api.post("/v1/reviews", json={"review_id": review}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["campaign_id"]


async def test_a_group_and_app_review_from_start_to_report(
    apis: Apis, people: dict[str, dict[str, str]]
) -> None:
    await seed_directories(apis)
    admin, owner, stranger = people[ADMIN], people[OWNER], people[STRANGER]
    campaign = await start(apis, "e2e-groups", admin)
    items = await my_items(apis, campaign, owner)
    # Three members of Review Finance, and RX1's and RX2's ledger accounts and roles.
    assert len(items) == 7, items
    by_holder: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_holder.setdefault(item["holder_name"].split("@")[0], []).append(item)

    # A stranger is refused, and the attempt is kept.
    refused = await apis.api.post(
        f"/v1/reviews/{campaign}/decisions", json={"decision": "approve"}, headers=stranger
    )
    assert refused.status_code == 403, refused.text
    attempts = (await apis.api.get(f"/v1/reviews/{campaign}/refusals", headers=admin)).json()
    assert any(a["actor_id"] == STRANGER for a in attempts["refusals"]), attempts

    # The owner decides in bulk: RX2's access is denied, the rest follow the recommendation.
    denied = await apis.api.post(
        f"/v1/reviews/{campaign}/decisions",
        json={
            "decision": "deny",
            "item_ids": [i["item_id"] for i in by_holder["rx2"]],
            "justification": "left the finance team",
        },
        headers=owner,
    )
    assert denied.status_code == 200 and denied.json()["decided"] == 3, denied.text
    rest = await apis.api.post(
        f"/v1/reviews/{campaign}/decisions",
        json={
            "accept_recommendations": True,
            "recommendation": "approve",
            "justification": "still in use",
        },
        headers=owner,
    )
    assert rest.status_code == 200 and rest.json()["decided"] == 4, rest.text

    ended = await apis.api.post(
        f"/v1/reviews/{campaign}/end-stage", json={"reason": "all decided"}, headers=admin
    )
    assert ended.status_code == 200, ended.text
    # 3 removals of 7 items is over the 25 % cap: an operator confirms over the API.
    waiting = await until_phase(apis, campaign, admin, "awaiting_confirmation")
    assert waiting["progress"]["removals"] == 3
    assert "RX2" in await members(apis, "Review Finance")
    confirmed = await apis.api.post(
        f"/v1/reviews/{campaign}/confirm",
        json={"confirm": True, "reason": "checked with the owner"},
        headers=admin,
    )
    assert confirmed.status_code == 200, confirmed.text
    await until_phase(apis, campaign, admin, "completed")

    assert await members(apis, "Review Finance") == {"RX1", "RX3"}
    (rx2_account,) = await apis.scim_users("ledger", "RX2")
    assert rx2_account["active"] is False
    assert rx2_account["id"] not in await apis.scim_group_members("ledger", "ap-clerk")
    assert (await apis.scim_users("ledger", "RX1"))[0]["active"] is True

    rows = list(csv.DictReader(io.StringIO(await report(apis, campaign, admin, "csv"))))
    assert len(rows) == 7 and all(r["decided_by"] for r in rows)
    assert {r["decided_by"] for r in rows} == {OWNER}
    assert {r["applied"] for r in rows if r["holder"].startswith("rx2")} == {"removed"}
    lines = [
        json.loads(line) for line in (await report(apis, campaign, admin, "jsonl")).splitlines()
    ]
    assert {line["item_id"] for line in lines} == {r["item_id"] for r in rows}
    assert all(line["justification"] for line in lines)


async def test_a_workload_identity_review_removes_what_its_owner_denies(
    apis: Apis, people: dict[str, dict[str, str]], temporal: Client
) -> None:
    admin, owner = people[ADMIN], people[OWNER]
    if not (
        await apis.graph.get("/servicePrincipals", params={"$filter": "appId eq 'e2e-payroll'"})
    ).json()["value"]:
        await seed_directories(apis)
    campaign = await start(apis, "e2e-workloads", admin)
    items = await my_items(apis, campaign, owner)
    recommended = {i["holder_name"]: i["recommendation"] for i in items}
    assert recommended == {"E2E Exporter": "approve", "E2E Old Sync": "deny"}
    decided = await apis.api.post(
        f"/v1/reviews/{campaign}/decisions",
        json={"accept_recommendations": True, "justification": "old sync is retired"},
        headers=owner,
    )
    assert decided.status_code == 200 and decided.json()["decided"] == 2, decided.text
    await apis.api.post(f"/v1/reviews/{campaign}/end-stage", json={"reason": "done"}, headers=admin)
    await until_phase(apis, campaign, admin, "completed")
    payroll = (
        await apis.graph.get("/servicePrincipals", params={"$filter": "appId eq 'e2e-payroll'"})
    ).json()["value"][0]
    held = (await apis.graph.get(f"/servicePrincipals/{payroll['id']}/appRoleAssignedTo")).json()[
        "value"
    ]
    assert [a["principalDisplayName"] for a in held] == ["E2E Exporter"]
    rows = list(csv.DictReader(io.StringIO(await report(apis, campaign, admin, "csv"))))
    assert {(r["holder"], r["outcome"], r["decided_by"]) for r in rows} == {
        ("E2E Exporter", "approved", OWNER),
        ("E2E Old Sync", "denied", OWNER),
    }


async def test_schedules_follow_the_policy_and_start_campaigns(
    apis: Apis, people: dict[str, dict[str, str]], temporal: Client
) -> None:
    # `make run` synced them at start: one per recurring review, and the orphan sweep.
    found = {s.id async for s in await temporal.list_schedules()}
    assert {schedule_id("e2e-groups"), schedule_id("e2e-workloads"), "tenure-orphan-sweep"} <= found
    handle = temporal.get_schedule_handle(schedule_id("e2e-workloads"))
    await handle.trigger()

    async def started() -> bool:
        described = await handle.describe()
        return bool(described.info.recent_actions)

    await wait_until(started, 30, "the schedule's first campaign")
    action = (await handle.describe()).info.recent_actions[-1].action
    campaign = temporal.get_workflow_handle(action.workflow_id)

    async def reviewing() -> bool:
        try:
            progress = await campaign.query(ReviewContract.PROGRESS)
        except Exception:
            return False
        return progress["phase"] == "reviewing"

    await wait_until(reviewing, 60, "the scheduled campaign to open its stage")
    assert action.workflow_id.startswith("review-e2e-workloads")
    await campaign.terminate("test over")


async def test_a_wrong_token_is_401_and_an_unknown_campaign_404(
    apis: Apis, people: dict[str, dict[str, str]]
) -> None:
    assert (await apis.api.get("/v1/reviews/review-nope")).status_code == 401
    missing = await apis.api.get("/v1/reviews/review-nope", headers=people[ADMIN])
    assert missing.status_code == 404
    bad = await apis.api.get("/v1/reviews/review-nope", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
