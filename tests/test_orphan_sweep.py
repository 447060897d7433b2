"""The orphan sweep end to end on a dev server: Graph emulator, a SCIM target, visibility, Schedule."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.detective.sweep import MANAGED_QUERY, SweepActivities
from activities.graph.client import GraphSettings, build_graph_client
from activities.scim.client import ScimAppSettings, scim_app_clients
from domain.detective.sweep import (
    GRAPH,
    OrphanSweepContract,
    OrphanSweepInput,
    SweepReport,
    SweepSettings,
)
from domain.lifecycle.identity import LifecycleStage
from domain.policy.model import Policy
from stack.schedules import ensure_orphan_sweep_schedule
from tests.support.graph_emulator import EmulatorControl, running_graph_emulator
from tests.support.identities import start_identities
from tests.support.scim_server import running_scim_server
from tests.support.temporal_dev import temporal_dev_server
from workflows.detective.orphan_sweep import OrphanSweepWorkflow

APP = "collab"
DOMAIN = "example.com"
BREAK_GLASS = f"breakglass@{DOMAIN}"
# Nobody polls this queue: the identities only need to exist, with their search attributes.


class Directories:
    """What the sweep reads and writes, plus plain HTTP clients to read it back."""

    def __init__(self, graph: httpx.AsyncClient, scim: httpx.AsyncClient) -> None:
        self.graph, self.scim = graph, scim
        self.graph_ids: dict[str, str] = {}  # employee id -> Graph user id
        self.scim_ids: dict[str, str] = {}  # employee id -> SCIM id

    async def graph_enabled(self) -> dict[str, bool]:
        answers = {
            e: (await self.graph.get(f"/users/{i}", params={"$select": "accountEnabled"})).json()
            for e, i in self.graph_ids.items()
        }
        return {e: body["accountEnabled"] for e, body in answers.items()}

    async def scim_active(self) -> dict[str, bool]:
        return {
            e: (await self.scim.get(f"/Users/{i}")).raise_for_status().json()["active"]
            for e, i in self.scim_ids.items()
        }


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server() as env:
        yield env


@pytest.fixture(scope="module")
async def world(env: WorkflowEnvironment) -> AsyncIterator[tuple[Directories, str]]:
    async with (
        running_graph_emulator() as graph,
        running_scim_server() as scim,
        httpx.AsyncClient(
            base_url=graph.base_url, headers={"Authorization": f"Bearer {graph.token}"}
        ) as graph_http,
        httpx.AsyncClient(
            base_url=scim.base_url, headers={"Authorization": f"Bearer {scim.token}"}
        ) as scim_http,
    ):
        dirs = Directories(graph_http, scim_http)
        await _seed(dirs, graph_control=EmulatorControl(graph))
        await _start_identities(env.client, {"M1": "active", "L1": "disabled"})

        queue = f"sweep-{uuid.uuid4()}"
        scim_settings = {APP: ScimAppSettings(name=APP, base_url=scim.base_url, token=scim.token)}
        sweep = SweepActivities(
            build_graph_client(GraphSettings(base_url=graph.base_url, token=graph.token)),
            scim_app_clients(scim_settings, scim_http),
            env.client,
            graph_page_size=2,  # a handful of users over several pages: paging is exercised
            scim_page_size=1,
        )
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[OrphanSweepWorkflow],
            activities=[
                sweep.list_graph_accounts,
                sweep.list_scim_accounts,
                sweep.list_managed_identities,
                sweep.disable_graph_account,
                sweep.deactivate_scim_account,
            ],
        ):
            yield dirs, queue


async def _seed(dirs: Directories, graph_control: EmulatorControl) -> None:
    people = {
        "M1": "managed",  # an identity Tenure runs, active
        "X1": "orphan",  # an employee id nobody manages
        "BG1": "breakglass",  # also unmanaged, but protected
        "L1": "leaver",  # an identity Tenure has disabled, account still on
    }
    users = [
        {"userPrincipalName": f"{name}@{DOMAIN}", "employeeId": employee_id}
        for employee_id, name in people.items()
    ]
    users.append({"userPrincipalName": f"mailbox@{DOMAIN}"})  # no employeeId: out of scope
    seeded = await graph_control.seed(users=users)
    await graph_control.aclose()
    dirs.graph_ids = {e: seeded["users"][f"{n}@{DOMAIN}"] for e, n in people.items()}
    for employee_id in ("M1", "L1"):
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"{people[employee_id]}@{DOMAIN}",
            "externalId": employee_id,
            "active": True,
        }
        created = (await dirs.scim.post("/Users", json=body)).raise_for_status().json()
        dirs.scim_ids[employee_id] = created["id"]
    admin = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "app-admin"}
    (await dirs.scim.post("/Users", json=admin)).raise_for_status()  # no externalId: not ours


async def _start_identities(client: Client, stages: dict[str, str]) -> None:
    for employee_id, stage in stages.items():
        await start_identities(client, [employee_id], stage=LifecycleStage(stage))
    # Visibility is eventually consistent: wait until the sweep's own query sees them all.
    for _ in range(100):
        if (await client.count_workflows(MANAGED_QUERY)).count == len(stages):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("identity workflows never became visible")


async def _sweep(client: Client, queue: str, settings: SweepSettings) -> SweepReport:
    return await client.execute_workflow(
        OrphanSweepWorkflow.run,
        OrphanSweepInput(settings=settings, apps=[APP]),
        id=f"{OrphanSweepContract.ID_PREFIX}{uuid.uuid4()}",
        task_queue=queue,
        execution_timeout=timedelta(minutes=2),
    )


def _keys(findings: list[Any]) -> set[tuple[str, str]]:
    return {(f.account.system, f.account.employee_id) for f in findings}


async def test_dry_run_reports_and_changes_nothing(
    env: WorkflowEnvironment, world: tuple[Directories, str]
) -> None:
    dirs, queue = world
    settings = SweepSettings(dry_run=True, max_changes=10, protected=[BREAK_GLASS])
    report = await _sweep(env.client, queue, settings)

    assert report.managed_identities == 2
    assert report.accounts_seen == 6  # 4 Graph users with an employeeId, 2 SCIM users with one
    assert _keys(report.orphans) == {(GRAPH, "X1"), (GRAPH, "BG1")}
    assert _keys(report.active_leavers) == {(GRAPH, "L1"), (APP, "L1")}
    assert _keys(report.to_disable) == {(GRAPH, "X1"), (GRAPH, "L1"), (APP, "L1")}
    assert _keys(report.skipped_protected) == {(GRAPH, "BG1")}
    assert report.skipped_cap == report.disabled == []
    assert await dirs.graph_enabled() == {"M1": True, "X1": True, "BG1": True, "L1": True}
    assert await dirs.scim_active() == {"M1": True, "L1": True}


async def test_apply_respects_the_cap_and_protection(
    env: WorkflowEnvironment, world: tuple[Directories, str]
) -> None:
    dirs, queue = world
    settings = SweepSettings(dry_run=False, max_changes=1, protected=[BREAK_GLASS])
    report = await _sweep(env.client, queue, settings)

    assert len(report.disabled) == 1 and report.failed == []
    assert len(report.skipped_cap) == 2
    assert _keys(report.skipped_protected) == {(GRAPH, "BG1")}
    # Exactly the one reported account changed, wherever it lives; the rest are untouched.
    graph, scim = await dirs.graph_enabled(), await dirs.scim_active()
    off = {(GRAPH, e) for e, on in graph.items() if not on} | {
        (APP, e) for e, on in scim.items() if not on
    }
    assert off == _keys(report.disabled)
    assert graph["BG1"] and graph["M1"] and scim["M1"]

    # The next run picks up where the cap stopped it; the protected account still never moves.
    again = await _sweep(env.client, queue, settings.model_copy(update={"max_changes": 10}))
    assert len(again.disabled) == 2 and again.skipped_cap == []
    assert (await dirs.graph_enabled())["BG1"] is True


async def test_schedule_is_created_once_and_follows_the_policy(
    env: WorkflowEnvironment, demo_policy: Policy
) -> None:
    client = env.client
    await ensure_orphan_sweep_schedule(client, demo_policy, "tenure-identity")
    await ensure_orphan_sweep_schedule(client, demo_policy, "tenure-identity")
    handle = client.get_schedule_handle(OrphanSweepContract.SCHEDULE_ID)
    described = await handle.describe()
    assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=24)]
    action = described.schedule.action
    assert action.workflow == OrphanSweepContract.WORKFLOW
    assert action.id.startswith(OrphanSweepContract.ID_PREFIX.rstrip("-"))
    assert action.task_queue == "tenure-identity"

    for _ in range(100):  # the schedule list is eventually consistent too
        listed = [s.id async for s in await client.list_schedules()]
        if listed:
            break
        await asyncio.sleep(0.1)
    assert listed == [OrphanSweepContract.SCHEDULE_ID]

    # A new interval in the policy updates the same schedule; no section removes it.
    sweep = demo_policy.orphan_sweep
    assert sweep is not None
    hourly = demo_policy.model_copy(
        update={"orphan_sweep": sweep.model_copy(update={"interval": "1h"})}
    )
    await ensure_orphan_sweep_schedule(client, hourly, "tenure-identity")
    described = await handle.describe()
    assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=1)]

    await ensure_orphan_sweep_schedule(
        client, demo_policy.model_copy(update={"orphan_sweep": None}), "tenure-identity"
    )
    with pytest.raises(RPCError) as err:
        await handle.describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_a_triggered_schedule_runs_a_dry_sweep(
    env: WorkflowEnvironment, world: tuple[Directories, str], demo_policy: Policy
) -> None:
    _, queue = world
    policy = demo_policy.model_copy(update={"apps": {APP: demo_policy.apps[APP]}})
    handle = await ensure_orphan_sweep_schedule(env.client, policy, queue)
    assert handle is not None
    try:
        await handle.trigger()
        run_id = None
        for _ in range(100):
            described = await handle.describe()
            if described.info.recent_actions:
                run_id = described.info.recent_actions[0].action.workflow_id
                break
            await asyncio.sleep(0.1)
        assert run_id is not None and run_id.startswith(OrphanSweepContract.ID_PREFIX)
        report = await env.client.get_workflow_handle(run_id, result_type=SweepReport).result()
        assert report.dry_run and report.disabled == []
        assert (GRAPH, "X1") in _keys(report.orphans)
    finally:
        await handle.delete()
