"""The orphan sweep end to end on a dev server: Graph emulator, a SCIM target, visibility, Schedule.

Small page sizes exercise the scans' paging; a directory of 3,000 users shows that the workflow's
history stays a few events and kilobytes however many accounts the directories hold.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.detective.sweep import MANAGED_QUERY, SweepActivities
from activities.graph.client import GraphSettings, build_graph_client
from activities.scim.client import ScimAppSettings, scim_app_clients
from connection.schedules_sync import sync_schedules
from domain.access.policy import SodScanSettings
from domain.detective.sweep import (
    GRAPH,
    OrphanSweepContract,
    OrphanSweepInput,
    SweepReport,
    SweepSettings,
)
from domain.lifecycle.identity import LifecycleStage
from domain.pim.roles import PimSettings
from domain.policy.model import Policy
from tests.support.graph_emulator import EmulatorControl, running_graph_emulator
from tests.support.identities import start_identities
from tests.support.scim_server import running_scim_server
from tests.support.temporal_dev import temporal_dev_server
from workflows.detective.orphan_sweep import PAGED_SCAN_PATCH, OrphanSweepWorkflow

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
            activities=_activities(sweep),
        ):
            yield dirs, queue


def _activities(sweep: SweepActivities) -> list[Any]:
    # The whole-inventory reads too, as a real worker registers them for runs before the patch.
    return [
        sweep.scan_graph_accounts,
        sweep.scan_scim_accounts,
        sweep.list_graph_accounts,
        sweep.list_scim_accounts,
        sweep.list_managed_identities,
        sweep.disable_graph_account,
        sweep.deactivate_scim_account,
    ]


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


async def _start(
    client: Client, queue: str, settings: SweepSettings, apps: list[str]
) -> WorkflowHandle[OrphanSweepWorkflow, SweepReport]:
    return await client.start_workflow(
        OrphanSweepWorkflow.run,
        OrphanSweepInput(settings=settings, apps=apps),
        id=f"{OrphanSweepContract.ID_PREFIX}{uuid.uuid4()}",
        task_queue=queue,
        execution_timeout=timedelta(minutes=2),
    )


async def _sweep(client: Client, queue: str, settings: SweepSettings) -> SweepReport:
    return await (await _start(client, queue, settings, [APP])).result()


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
    assert (report.orphan_count, report.active_leaver_count) == (2, 2)
    # Leavers first, in the sweep's stable order, then the orphan.
    assert [(f.account.system, f.account.employee_id) for f in report.to_disable] == [
        (APP, "L1"),
        (GRAPH, "L1"),
        (GRAPH, "X1"),
    ]
    assert _keys(report.skipped_protected) == {(GRAPH, "BG1")}
    assert report.skipped_cap == report.disabled == []
    assert report.skipped_cap_count == 0 and report.skipped_protected_count == 1
    assert await dirs.graph_enabled() == {"M1": True, "X1": True, "BG1": True, "L1": True}
    assert await dirs.scim_active() == {"M1": True, "L1": True}


async def test_apply_respects_the_cap_and_protection(
    env: WorkflowEnvironment, world: tuple[Directories, str]
) -> None:
    dirs, queue = world
    settings = SweepSettings(dry_run=False, max_changes=1, protected=[BREAK_GLASS])
    report = await _sweep(env.client, queue, settings)

    assert len(report.disabled) == 1 and report.failed == []
    assert len(report.skipped_cap) == report.skipped_cap_count == 2
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


def sweep_only(policy: Policy) -> Policy:
    """The policy without what schedules other detective work (reviews, PIM, the SoD scan)."""
    no_scan = policy.access.model_copy(update={"sod_scan": SodScanSettings(enabled=False)})
    return policy.model_copy(update={"reviews": {}, "pim": PimSettings(), "access": no_scan})


async def test_schedule_is_created_once_and_follows_the_policy(
    env: WorkflowEnvironment, demo_policy: Policy
) -> None:
    client = env.client
    # The sweep's schedule alone: the demo policy's recurring reviews, PIM alerts and SoD scan
    # have schedules of their own.
    demo_policy = sweep_only(demo_policy)
    first = await sync_schedules(client, demo_policy, "tenure-identity")
    again = await sync_schedules(client, demo_policy, "tenure-identity")
    assert first.created == again.unchanged == [OrphanSweepContract.SCHEDULE_ID]
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
    await sync_schedules(client, hourly, "tenure-identity")
    described = await handle.describe()
    assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=1)]

    await sync_schedules(
        client, demo_policy.model_copy(update={"orphan_sweep": None}), "tenure-identity"
    )
    with pytest.raises(RPCError) as err:
        await handle.describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND


async def test_a_triggered_schedule_runs_a_dry_sweep(
    env: WorkflowEnvironment, world: tuple[Directories, str], demo_policy: Policy
) -> None:
    _, queue = world
    policy = sweep_only(demo_policy).model_copy(update={"apps": {APP: demo_policy.apps[APP]}})
    assert (await sync_schedules(env.client, policy, queue)).created
    handle = env.client.get_schedule_handle(OrphanSweepContract.SCHEDULE_ID)
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


# ---- a large directory ---------------------------------------------------------------------------

BIG = 3000  # Graph users, read 100 a page
BIG_PAGE = 100
# Pages' offsets in the emulator's skip token: the page at 1,500 fails once, mid-scan.
FAILING_PAGE = "skiptoken=1500"


@pytest.fixture(scope="module")
async def big_graph(
    env: WorkflowEnvironment, world: tuple[Directories, str]
) -> AsyncIterator[tuple[str, EmulatorControl]]:
    """A directory of its own (the small one's counts stay as they are), on its own worker.

    `world` has started the identities M1 (active) and L1 (disabled); here they are two of the
    3,000 users, and the other 2,998 are orphans B0000..B2997.
    """
    async with running_graph_emulator() as graph:
        control = EmulatorControl(graph)
        users = [
            {"userPrincipalName": f"b{i:04d}@{DOMAIN}", "employeeId": f"B{i:04d}"}
            for i in range(BIG - 2)
        ]
        users += [
            {"userPrincipalName": f"{e.lower()}@{DOMAIN}", "employeeId": e} for e in ("M1", "L1")
        ]
        await control.seed(users=users)
        queue = f"sweep-big-{uuid.uuid4()}"
        sweep = SweepActivities(
            build_graph_client(GraphSettings(base_url=graph.base_url, token=graph.token)),
            {},
            env.client,
            graph_page_size=BIG_PAGE,
        )
        try:
            async with Worker(
                env.client,
                task_queue=queue,
                workflows=[OrphanSweepWorkflow],
                activities=_activities(sweep),
            ):
                yield queue, control
        finally:
            await control.aclose()


def _result_sizes(events: list[HistoryEvent]) -> list[int]:
    """The size of every activity result in a history."""
    return [
        sum(p.ByteSize() for p in e.activity_task_completed_event_attributes.result.payloads)
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
    ]


async def test_a_large_directory_is_paged_and_the_history_stays_small(
    env: WorkflowEnvironment, big_graph: tuple[str, EmulatorControl]
) -> None:
    queue, control = big_graph
    since = await control.last_seq()
    await control.add_fault(503, FAILING_PAGE, retry_after=0, times=1)
    settings = SweepSettings(
        dry_run=True, max_changes=10, protected=[f"b0003@{DOMAIN}"], report_limit=10
    )
    handle = await _start(env.client, queue, settings, apps=[])
    report = await handle.result()

    # Every account was seen and judged; the report lists the first 10 of each kind and counts all.
    assert report.accounts_seen == BIG and report.managed_identities == 2
    assert report.orphan_count == BIG - 2 and report.active_leaver_count == 1
    assert [f.account.employee_id for f in report.orphans] == [f"B{i:04d}" for i in range(10)]
    assert [f.account.employee_id for f in report.to_disable] == [
        "L1",
        *(f"B{i:04d}" for i in range(10) if i != 3),
    ]
    assert [f.account.employee_id for f in report.skipped_protected] == ["B0003"]
    # 2,998 candidates (the leaver and the orphans but B0003), less the ten to disable.
    assert report.skipped_cap_count == BIG - 2 - 10
    assert len(report.skipped_cap) == 10 and report.skipped_cap[0].account.employee_id == "B0010"

    # Thirty pages; the failed one was retried from the scan's last heartbeat, not from the top.
    pages = [e for e in await control.requests(since) if e["path"].startswith("/v1.0/users")]
    assert sum(e["status"] == 503 for e in pages) == 1
    assert sum("skiptoken" not in e["path"] for e in pages) == 1, "the scan started over"
    assert BIG // BIG_PAGE < len(pages) <= BIG // BIG_PAGE + 2, len(pages)

    # One scan for the directory: a dozen events, and no result beyond a few kilobytes.
    info = (await handle.describe()).raw_description.workflow_execution_info
    history = await handle.fetch_history()
    sizes = _result_sizes(list(history.events))
    assert len(sizes) == 1 and max(sizes) < 8_000, sizes
    assert info.history_length < 20, info.history_length
    assert info.history_size_bytes < 32_000, info.history_size_bytes
    markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    assert len(markers) == 1 and PAGED_SCAN_PATCH.encode() in markers[0].SerializeToString()
    print(
        f"history: {info.history_length} events, {info.history_size_bytes} bytes; "
        f"largest activity result {max(sizes)} bytes; {len(pages)} page requests"
    )


async def test_a_large_apply_disables_only_the_cap(
    env: WorkflowEnvironment, big_graph: tuple[str, EmulatorControl]
) -> None:
    queue, _ = big_graph
    settings = SweepSettings(dry_run=False, max_changes=5, report_limit=5)
    handle = await _start(env.client, queue, settings, apps=[])
    report = await handle.result()
    assert [f.account.employee_id for f in report.disabled] == [
        "L1",
        "B0000",
        "B0001",
        "B0002",
        "B0003",
    ]
    assert report.skipped_cap_count == BIG - 2 + 1 - 5
    # The next run sees those five as inactive: no longer candidates, still counted as found.
    again = await (await _start(env.client, queue, settings, apps=[])).result()
    assert again.orphan_count == BIG - 2 and again.active_leaver_count == 0
    assert [f.account.employee_id for f in again.disabled] == [f"B{i:04d}" for i in range(4, 9)]
    history_length = (
        await handle.describe()
    ).raw_description.workflow_execution_info.history_length
    # The scan, then per disable its three events and at most one workflow task's three.
    assert history_length < 20 + 6 * 5, history_length
