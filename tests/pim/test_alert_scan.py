"""The PIM alert scan: its activity (activities/pim/alerts.py) against the Graph emulator and a
real access record on SQLite, and its workflow (workflows/detective/pim_alerts.py) on the
time-skipping server with stand-in activities.

The activity is run in temporalio's ActivityEnvironment; roles are planted outside Tenure through
the emulator's /seed (`roleAssignments`) and removed with a plain DELETE, as an administrator
working in the portal would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.graph.client import GraphSettings, build_graph_client
from activities.pim.alerts import PimAlertActivities
from audit.store import AccessRecordStore
from domain.access.request import (
    AccessActivityNames,
    NotifyInput,
    NotifyResult,
    RequestStatus,
    RequestView,
)
from domain.pim.activation import eligibility_key, package_key
from domain.pim.alert_scan import (
    AlertScanInput,
    AlertScanReport,
    PimAlertActivityNames,
    PimAlertContract,
)
from domain.pim.alerts import AlertKind, AlertScanResult, PimAlert
from domain.policy.model import Policy
from tests.support.graph_emulator import GraphEmulatorHandle, running_graph_emulator
from workflows.detective.pim_alerts import MAILED_ONE_BY_ONE, PimAlertScanWorkflow

DOMAIN = "alerts.example.com"
SENDER = f"tenure@{DOMAIN}"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
DIRECTORY = "/v1.0/roleManagement/directory"


def policy(**alerts: Any) -> Policy:
    return Policy.model_validate(
        {
            "tenant": {"domain": DOMAIN, "mail_sender": SENDER},
            "pim": {
                "roles": {
                    "ga": {
                        "kind": "directory_role",
                        "display_name": "Global Administrator",
                        "template_id": GLOBAL_ADMIN,
                    }
                },
                "alerts": {"notify": ["SECOPS"], **alerts},
            },
        }
    )


# ---- the activity against the emulator ------------------------------------------------------------


class World:
    """One emulator and one record, with the seed and the record's rows at hand."""

    def __init__(self, emulator: GraphEmulatorHandle, http: httpx.AsyncClient, db: Path) -> None:
        self.emulator, self.http = emulator, http
        self.store = AccessRecordStore(db)
        self.graph = build_graph_client(
            GraphSettings(base_url=emulator.base_url, token=emulator.token)
        )

    def scanner(self, pol: Policy | None = None) -> PimAlertActivities:
        return PimAlertActivities(self.graph, self.store, pol or policy())

    async def scan(self, pol: Policy | None = None) -> AlertScanReport:
        scanner = self.scanner(pol)
        return await ActivityEnvironment().run(
            scanner.alert_scan, AlertScanInput(at=datetime.now(UTC))
        )

    async def seed(self, **spec: Any) -> dict[str, Any]:
        answer = await self.http.post(f"{self.emulator.control_url}/seed", json=spec)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def person(self, employee_id: str) -> str:
        """A Graph user with this employee id; returns their UPN."""
        upn = f"{employee_id.lower()}-{uuid.uuid4().hex[:6]}@{DOMAIN}"
        await self.seed(users=[{"userPrincipalName": upn, "employeeId": employee_id}])
        return upn

    async def plant(self, upn: str, **extra: Any) -> str:
        """A Global Administrator assignment made outside Tenure; returns its id."""
        answer = await self.seed(
            roleAssignments=[{"principal": upn, "role": "Global Administrator", **extra}]
        )
        return answer["roleAssignments"][0]

    async def unplant(self, assignment_id: str) -> None:
        answer = await self.http.delete(
            f"{self.emulator.root}{DIRECTORY}/roleAssignments/{assignment_id}"
        )
        assert answer.status_code == 204, answer.text

    def record(
        self,
        employee_id: str,
        package_id: str,
        status: RequestStatus,
        granted_at: datetime | None,
        key: str = "",
    ) -> None:
        now = datetime.now(UTC)
        self.store.record_request(
            RequestView(
                request_id=f"run-{employee_id}-{package_id}-{key or uuid.uuid4().hex[:8]}",
                package_id=package_id,
                package_name=package_id,
                beneficiary_id=employee_id,
                requester_id=employee_id,
                status=status,
                submitted_at=granted_at or now,
                granted_at=granted_at,
                updated_at=now,
            )
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with (
        running_graph_emulator() as emulator,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {emulator.token}"}) as http,
    ):
        w = World(emulator, http, tmp_path / "record.db")
        try:
            yield w
        finally:
            w.store.close()


def raised_ids(report: AlertScanReport) -> list[str]:
    return [a.alert_id for a in report.result.raised]


async def test_a_role_planted_outside_tenure_is_raised_kept_resolved_and_raised_again(
    world: World,
) -> None:
    planted_upn = await world.person("AS-PLANT")
    held_upn = await world.person("AS-HELD")
    # Tenure's own activation: in Graph until an end, and granted in the record.
    await world.plant(
        held_upn,
        permanent=False,
        endDateTime=(datetime.now(UTC) + timedelta(hours=2)).isoformat(),
    )
    world.record("AS-HELD", package_key("ga"), RequestStatus.GRANTED, datetime.now(UTC))
    planted = await world.plant(planted_upn)  # permanent, no request anywhere
    expected = ["outside_tenure:ga:AS-PLANT", "permanent_active:ga:AS-PLANT"]

    first = await world.scan()
    assert raised_ids(first) == expected
    assert first.result.persisting == [] and first.result.resolved == []
    assert first.holdings_seen == 2 and first.roles_scanned >= 1
    assert (first.notify, first.mail_sender) == (["SECOPS"], SENDER)
    outside = first.result.raised[0]
    assert outside.kind is AlertKind.OUTSIDE_TENURE and outside.times_raised == 1
    assert outside.detail["employee_id"] == "AS-PLANT" and outside.detail["end"] is None

    second = await world.scan()
    assert raised_ids(second) == []
    assert second.result.persisting == expected and second.result.resolved == []

    await world.unplant(planted)
    third = await world.scan()
    assert raised_ids(third) == [] and third.result.persisting == []
    assert third.result.resolved == expected
    assert world.store.list_alerts() == []

    await world.plant(planted_upn)
    fourth = await world.scan()
    assert raised_ids(fourth) == expected
    assert [a.times_raised for a in fourth.result.raised] == [2, 2]
    assert sorted(a.alert_id for a in world.store.list_alerts()) == expected


async def test_the_same_scan_applied_twice_raises_nothing_twice(world: World) -> None:
    await world.plant(await world.person("AS-TWICE"))
    scanner = world.scanner()
    scan = AlertScanInput(at=datetime.now(UTC))
    first = await ActivityEnvironment().run(scanner.alert_scan, scan)
    retry = await ActivityEnvironment().run(scanner.alert_scan, scan)
    assert len(first.result.raised) == 2
    assert retry.result.raised == [] and retry.result.persisting == raised_ids(first)


async def test_holders_activations_and_idle_eligibilities_from_graph_and_the_record(
    world: World,
) -> None:
    now = datetime.now(UTC)
    # Two Global Administrators where one is allowed, both Tenure's own.
    for employee in ("AS-H1", "AS-H2"):
        await world.plant(
            await world.person(employee),
            permanent=False,
            endDateTime=(now + timedelta(hours=1)).isoformat(),
        )
        world.record(employee, package_key("ga"), RequestStatus.GRANTED, now)
    # Four activations in a week where three are allowed (ended ones count).
    for day in range(4):
        world.record("AS-BUSY", package_key("ga"), RequestStatus.EXPIRED, now - timedelta(day + 1))
    # Eligible for over 30 days without activating: one in the record, one in Graph only.
    world.record("AS-IDLE", eligibility_key("ga"), RequestStatus.GRANTED, now - timedelta(40))
    await world.seed(
        roleAssignments=[
            {
                "principal": await world.person("AS-GRAPH-IDLE"),
                "role": USER_ADMIN,
                "eligible": True,
                "startDateTime": (now - timedelta(days=35)).isoformat(),
            }
        ]
    )
    # Eligible for a week only: not yet idle.
    world.record("AS-NEW", eligibility_key("ga"), RequestStatus.GRANTED, now - timedelta(7))

    report = await world.scan(policy(max_holders={"ga": 1}, max_activations=3))
    assert raised_ids(report) == [
        "frequent_activation:ga:AS-BUSY",
        f"never_activated:{USER_ADMIN}:AS-GRAPH-IDLE",
        "never_activated:ga:AS-IDLE",
        "too_many_holders:ga:",
    ]
    holders = next(a for a in report.result.raised if a.kind is AlertKind.TOO_MANY_HOLDERS)
    assert holders.detail["holders_listed"] == ["AS-H1", "AS-H2"]


def group_policy(**alerts: Any) -> Policy:
    """The Global Administrator, and a privileged group whose members PIM gives."""
    pol = policy().model_dump(mode="json", exclude_unset=True)
    pol["groups"] = ["Break Glass"]
    pol["pim"]["alerts"].update(alerts)
    pol["pim"]["roles"]["bg"] = {
        "kind": "privileged_group",
        "display_name": "Break-glass group",
        "group": "Break Glass",
        "access": "member",
        "allow_permanent_eligible": True,
        "eligibility_expiry": {"kind": "never"},
    }
    return Policy.model_validate(pol)


async def test_privileged_group_members_outside_tenure_and_too_many(world: World) -> None:
    # A direct member nobody requested, and a member PIM gave for two hours through Tenure.
    direct_upn = await world.person("AS-G-DIRECT")
    held_upn = await world.person("AS-G-HELD")
    seeded = await world.seed(groups=[{"displayName": "Break Glass", "members": [direct_upn]}])
    group_id = seeded["groups"]["Break Glass"]
    held_id = (await world.seed(users=[{"userPrincipalName": held_upn}]))["users"][held_upn]
    assigned = await world.http.post(
        f"{world.emulator.root}/v1.0/identityGovernance/privilegedAccess/group/"
        "assignmentScheduleRequests",
        json={
            "accessId": "member",
            "principalId": held_id,
            "groupId": group_id,
            "action": "adminAssign",
            "justification": "break-glass drill",
            "scheduleInfo": {
                "startDateTime": datetime.now(UTC).isoformat(),
                "expiration": {"type": "afterDuration", "duration": "PT2H"},
            },
        },
    )
    assert assigned.status_code == 201, assigned.text
    world.record("AS-G-HELD", package_key("bg"), RequestStatus.GRANTED, datetime.now(UTC))

    report = await world.scan(group_policy(max_holders={"bg": 1}))
    assert raised_ids(report) == [
        "outside_tenure:bg:AS-G-DIRECT",
        "permanent_active:bg:AS-G-DIRECT",
        "too_many_holders:bg:",
    ]
    outside = report.result.raised[0]
    assert "Break-glass group (bg)" in outside.text and outside.detail["end"] is None
    holders = report.result.raised[2]
    assert holders.detail["holders_listed"] == ["AS-G-DIRECT", "AS-G-HELD"]


async def test_a_privileged_group_missing_from_graph_is_skipped(world: World) -> None:
    await world.plant(await world.person("AS-G-NOGROUP"))
    report = await world.scan(group_policy())
    assert raised_ids(report) == [
        "outside_tenure:ga:AS-G-NOGROUP",
        "permanent_active:ga:AS-G-NOGROUP",
    ]


# ---- the workflow on the time-skipping server -----------------------------------------------------


def alert(kind: AlertKind, subject: str, times_raised: int = 1) -> PimAlert:
    at = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    return PimAlert(
        alert_id=f"{kind.value}:ga:{subject}",
        kind=kind,
        role_id="ga",
        subject=subject,
        text=f"{subject} holds Global Administrator (ga) outside Tenure",
        first_raised_at=at,
        last_seen_at=at,
        times_raised=times_raised,
    )


class StandIns:
    """The scan returns the results it is given, one per run; mails are kept (or refused)."""

    def __init__(self, results: list[AlertScanResult], notify: list[str]) -> None:
        self.results, self.notify = list(results), notify
        self.asked: list[AlertScanInput] = []
        self.mails: list[NotifyInput] = []
        self.refuse: set[str] = set()  # subjects whose mail fails

    @activity.defn(name=PimAlertActivityNames.SCAN)
    async def alert_scan(self, input: AlertScanInput) -> AlertScanReport:
        self.asked.append(input)
        assert input.at is not None
        return AlertScanReport(
            at=input.at,
            result=self.results.pop(0),
            roles_scanned=13,
            holdings_seen=3,
            notify=self.notify,
            mail_sender=SENDER,
        )

    @activity.defn(name=AccessActivityNames.NOTIFY)
    async def notify_people(self, input: NotifyInput) -> NotifyResult:
        if any(s in input.subject for s in self.refuse):
            raise ApplicationError("mailbox gone", non_retryable=True)
        self.mails.append(input)
        return NotifyResult(sent_to=input.to_employee_ids)


async def run_scans(env: WorkflowEnvironment, stand_ins: StandIns, runs: int) -> list[Any]:
    queue = f"pim-alerts-{uuid.uuid4()}"
    reports = []
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[PimAlertScanWorkflow],
        activities=[stand_ins.alert_scan, stand_ins.notify_people],
    ):
        for _ in range(runs):
            reports.append(
                await env.client.execute_workflow(
                    PimAlertScanWorkflow.run,
                    AlertScanInput(),
                    id=f"{PimAlertContract.ID_PREFIX}{uuid.uuid4()}",
                    task_queue=queue,
                )
            )
    return reports


async def test_the_workflow_mails_new_alerts_only(time_skipping_env: WorkflowEnvironment) -> None:
    outside, permanent = (
        alert(AlertKind.OUTSIDE_TENURE, "E1"),
        alert(AlertKind.PERMANENT_ACTIVE, "E1"),
    )
    back = alert(AlertKind.OUTSIDE_TENURE, "E2", times_raised=2)
    stand_ins = StandIns(
        [
            AlertScanResult(raised=[outside, permanent]),
            AlertScanResult(persisting=[outside.alert_id, permanent.alert_id]),
            AlertScanResult(raised=[back], resolved=[outside.alert_id, permanent.alert_id]),
        ],
        notify=["SECOPS", "CISO", "SECOPS"],
    )
    first, second, third = await run_scans(time_skipping_env, stand_ins, 3)

    # A run's mails go out together (in any order); the second run sends none.
    assert sorted(m.subject for m in stand_ins.mails[:2]) == [
        "PIM alert: outside tenure on ga for E1",
        "PIM alert: permanent active on ga for E1",
    ]
    assert [m.subject for m in stand_ins.mails[2:]] == ["PIM alert: outside tenure on ga for E2"]
    assert all(m.sender == SENDER for m in stand_ins.mails)
    assert all(m.to_employee_ids == ["SECOPS", "CISO"] for m in stand_ins.mails)
    assert "raised 2 times" in stand_ins.mails[2].html_body
    assert first.mailed == [outside.alert_id, permanent.alert_id]
    assert second.mailed == [] and third.mailed == [back.alert_id]
    assert "1 raised, 0 still open, 2 resolved" in third.summary()
    # Each run fixes its scan's instant, so a retried activity applies the same scan.
    assert all(asked.at is not None for asked in stand_ins.asked)


async def test_no_one_to_tell_means_no_mail_and_a_failed_mail_is_reported(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    quiet = StandIns([AlertScanResult(raised=[alert(AlertKind.OUTSIDE_TENURE, "E1")])], [])
    (report,) = await run_scans(time_skipping_env, quiet, 1)
    assert quiet.mails == [] and report.mailed == []

    refused = StandIns(
        [
            AlertScanResult(
                raised=[
                    alert(AlertKind.OUTSIDE_TENURE, "E1"),
                    alert(AlertKind.OUTSIDE_TENURE, "E2"),
                ]
            )
        ],
        ["SECOPS"],
    )
    refused.refuse = {"for E1"}
    (report,) = await run_scans(time_skipping_env, refused, 1)
    assert report.not_mailed == ["outside_tenure:ga:E1"]
    assert report.mailed == ["outside_tenure:ga:E2"]


async def test_many_new_alerts_are_mailed_one_by_one_then_counted(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    many = [alert(AlertKind.OUTSIDE_TENURE, f"E{i:03}") for i in range(MAILED_ONE_BY_ONE + 3)]
    stand_ins = StandIns([AlertScanResult(raised=many)], ["SECOPS"])
    (report,) = await run_scans(time_skipping_env, stand_ins, 1)
    assert len(stand_ins.mails) == MAILED_ONE_BY_ONE + 1
    assert stand_ins.mails[-1].subject == "PIM alerts: 3 more raised"
    assert "outside_tenure: 3" in stand_ins.mails[-1].html_body
    assert len(report.mailed) == len(many)
