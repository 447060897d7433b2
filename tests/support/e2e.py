"""Helpers for the end-to-end tests on a running local stack: HTTP views of its API, Graph emulator
and SCIM apps, HR events to post, and waits on the identities' workflows."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from domain.lifecycle.birthright import birthright_for
from domain.lifecycle.events import WorkerRecord, identity_workflow_id
from domain.lifecycle.identity import EventOutcome, IdentityContract, IdentityState
from domain.policy.model import Policy

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


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
