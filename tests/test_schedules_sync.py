"""`tenure schedules sync` on a dev server: the orphan sweep and the review schedules are created,
left alone while the policy stands, updated (keeping an operator's pause) and deleted with it;
schedules Tenure did not create are never touched; a dry run changes nothing; a triggered review
schedule starts its campaign; Temporal's own fire times match the named frequencies.

One server, one namespace per test (schedules are per namespace, and the sync works on any), none
of them `default`: nothing here depends on the namespace a client starts with.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
import yaml
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from cli.main import main
from connection.schedules_sync import (
    MANAGED_MEMO,
    Action,
    recurrence_spec,
    sync_schedules,
)
from connection.temporal import TemporalSettings, connect
from domain.detective.sod_contract import SodContract
from domain.detective.sweep import OrphanSweepContract, sweep_input
from domain.pim.alert_scan import PimAlertContract
from domain.policy.file import DEFAULT_POLICY_PATH
from domain.policy.model import Policy
from domain.reviews.campaign import CampaignInput, ReviewContract
from domain.reviews.recurrence import Recurrence
from stack.supervisor import Stack
from tests.reviews.test_recurrence_specs import REVIEWS, fire_dates, policy_with_reviews, review
from tests.support.temporal_dev import target_host, temporal_dev_server

SWEEP = OrphanSweepContract.SCHEDULE_ID
Q1 = "tenure-review-q1"
ALERTS = PimAlertContract.SCHEDULE_ID
SOD = SodContract.SCAN_SCHEDULE_ID
QUEUE = "tenure-identity"
NAMESPACES = ("life", "foreign", "legacy", "dry", "trigger", "runs", "fires", "cli", "stack")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    extra = [arg for ns in NAMESPACES for arg in ("--namespace", f"sched-{ns}")]
    async with temporal_dev_server(search_attributes=(), extra_args=extra) as server:
        yield server


async def client_for(server: WorkflowEnvironment, name: str) -> Client:
    assert name in NAMESPACES
    # As the CLI connects: TemporalSettings and the pydantic converter.
    return await connect(TemporalSettings(address=target_host(server), namespace=f"sched-{name}"))


async def until_listed(client: Client, ids: set[str]) -> None:
    """Schedule listing is eventually consistent; deletions are found by it."""
    for _ in range(100):
        if {s.id async for s in await client.list_schedules()} == ids:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the listing never showed exactly {sorted(ids)}")


async def gone(client: Client, sid: str) -> bool:
    try:
        await client.get_schedule_handle(sid).describe()
    except RPCError as err:
        return err.status == RPCStatusCode.NOT_FOUND
    return False


def with_q1(recurrence: dict[str, Any], *, sweep: bool = True) -> Policy:
    reviews = yaml.safe_load(REVIEWS)
    reviews["q1"]["recurrence"] = recurrence
    return policy_with_reviews(reviews, sweep=sweep)


def recurrence_of(policy: Policy, review_id: str = "q1") -> Recurrence:
    recurrence = policy.reviews[review_id].recurrence
    assert recurrence is not None
    return recurrence


def not_ours() -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "SomeoneElsesWorkflow", {"theirs": True}, id="theirs", task_queue="theirs"
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1))]),
    )


async def test_created_then_unchanged_then_updated_keeping_a_pause_then_deleted(
    server: WorkflowEnvironment,
) -> None:
    client = await client_for(server, "life")
    policy = policy_with_reviews()
    first = await sync_schedules(client, policy, QUEUE)
    assert (first.created, first.updated, first.unchanged, first.deleted) == (
        [SWEEP, Q1],
        [],
        [],
        [],
    )
    handle = client.get_schedule_handle(Q1)
    described = await handle.describe()
    assert await described.memo() == {MANAGED_MEMO: True}
    assert described.schedule.spec.calendars == recurrence_spec(recurrence_of(policy)).calendars
    assert described.schedule.state.remaining_actions == 4
    assert described.schedule.policy.catchup_window == timedelta(days=1)
    assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    sweep = (await client.get_schedule_handle(SWEEP).describe()).schedule.action
    assert isinstance(sweep, ScheduleActionStartWorkflow) and sweep.task_queue == QUEUE

    again = await sync_schedules(client, policy, QUEUE)
    assert again.unchanged == [SWEEP, Q1] and len(again.entries) == 2
    # Unchanged means no update call at all.
    assert (await handle.describe()).info.last_updated_at == described.info.last_updated_at

    await handle.pause(note="held for the audit")
    monthly = with_q1({"every": "monthly", "start": "2047-03-31", "runs": 4})
    changed = await sync_schedules(client, monthly, QUEUE)
    assert (changed.updated, changed.unchanged) == ([Q1], [SWEEP])
    described = await handle.describe()
    assert described.schedule.spec.calendars == recurrence_spec(recurrence_of(monthly)).calendars
    assert described.schedule.spec.start_at == datetime(2047, 3, 31, tzinfo=UTC)
    state = described.schedule.state
    assert (state.paused, state.note, state.remaining_actions) == (True, "held for the audit", 4)
    assert (await sync_schedules(client, monthly, QUEUE)).unchanged == [SWEEP, Q1]

    # The review leaves the policy: its schedule goes; then the sweep section goes too.
    await until_listed(client, {SWEEP, Q1})
    removed = await sync_schedules(client, policy_with_reviews({}), QUEUE)
    assert (removed.deleted, removed.unchanged) == ([Q1], [SWEEP])
    assert await gone(client, Q1)
    bare = await sync_schedules(client, policy_with_reviews({}, sweep=False), QUEUE)
    assert bare.deleted == [SWEEP] and await gone(client, SWEEP)
    assert (await sync_schedules(client, policy_with_reviews({}, sweep=False), QUEUE)).entries == []


async def test_schedules_tenure_did_not_create_are_left_alone_and_reported(
    server: WorkflowEnvironment,
) -> None:
    client = await client_for(server, "foreign")
    for sid in ("tenure-review-x", "tenure-review-y", "nightly-backup"):
        await client.create_schedule(sid, not_ours())
    await until_listed(client, {"tenure-review-x", "tenure-review-y", "nightly-backup"})
    policy = policy_with_reviews(
        {"x": review({"every": "weekly", "start": "2047-01-07"})}, sweep=False
    )
    report = await sync_schedules(client, policy, QUEUE)
    assert report.conflicts == ["tenure-review-x"]
    assert report.ignored == ["tenure-review-y"]  # looks like Tenure's; nightly-backup does not
    assert (report.created, report.updated, report.deleted) == ([], [], [])
    (conflict,) = [e for e in report.entries if e.action is Action.CONFLICT]
    assert "did not create" in conflict.note

    # Without x in the policy it is still not deleted: it was never Tenure's.
    report = await sync_schedules(client, policy_with_reviews({}, sweep=False), QUEUE)
    assert report.ignored == ["tenure-review-x", "tenure-review-y"] and report.deleted == []
    for sid in ("tenure-review-x", "tenure-review-y", "nightly-backup"):
        described = await client.get_schedule_handle(sid).describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "SomeoneElsesWorkflow" and await described.memo() == {}
        assert described.info.last_updated_at is None  # never updated


async def test_the_sweep_an_earlier_release_registered_is_taken_over_once(
    server: WorkflowEnvironment,
) -> None:
    client = await client_for(server, "legacy")
    policy = policy_with_reviews({})  # the sweep alone
    # As stack/schedules.py created it before the marker existed: no memo, paused by an operator.
    old = Schedule(
        action=ScheduleActionStartWorkflow(
            OrphanSweepContract.WORKFLOW,
            sweep_input(policy).model_dump(mode="json"),
            id="orphan-sweep",
            task_queue=QUEUE,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=24))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(paused=True, note="paused by ops"),
    )
    await client.create_schedule(SWEEP, old)
    report = await sync_schedules(client, policy, QUEUE)
    assert report.updated == [SWEEP] and "re-created" in report.entries[0].note
    described = await client.get_schedule_handle(SWEEP).describe()
    assert await described.memo() == {MANAGED_MEMO: True}
    assert (described.schedule.state.paused, described.schedule.state.note) == (
        True,
        "paused by ops",
    )
    assert (await sync_schedules(client, policy, QUEUE)).unchanged == [SWEEP]


async def test_a_dry_run_changes_nothing(server: WorkflowEnvironment) -> None:
    client = await client_for(server, "dry")
    policy = policy_with_reviews()
    dry = await sync_schedules(client, policy, QUEUE, dry_run=True)
    assert dry.dry_run and dry.created == [SWEEP, Q1]
    assert await gone(client, SWEEP) and await gone(client, Q1)

    await sync_schedules(client, policy, QUEUE)
    await until_listed(client, {SWEEP, Q1})
    before = await client.get_schedule_handle(Q1).describe()
    monthly = with_q1({"every": "monthly", "start": "2047-03-31"}, sweep=False)
    dry = await sync_schedules(client, monthly, QUEUE, dry_run=True)
    assert (dry.updated, dry.deleted) == ([Q1], [SWEEP])
    after = await client.get_schedule_handle(Q1).describe()
    assert after.schedule.spec == before.schedule.spec
    assert after.info.last_updated_at == before.info.last_updated_at
    assert not await gone(client, SWEEP)
    assert (await sync_schedules(client, policy, QUEUE)).unchanged == [SWEEP, Q1]


async def test_a_triggered_review_schedule_starts_its_campaign(
    server: WorkflowEnvironment,
) -> None:
    client = await client_for(server, "trigger")
    policy = policy_with_reviews()
    await sync_schedules(client, policy, QUEUE)
    handle = client.get_schedule_handle(Q1)
    await handle.trigger()  # no worker: the run only has to exist, on the right queue
    workflow_id = None
    for _ in range(100):
        recent = (await handle.describe()).info.recent_actions
        if recent:
            workflow_id = recent[0].action.workflow_id
            break
        await asyncio.sleep(0.1)
    assert workflow_id is not None and workflow_id.startswith("review-q1-")
    run = client.get_workflow_handle(workflow_id)
    try:
        described = await run.describe()
        assert described.workflow_type == ReviewContract.CAMPAIGN_WORKFLOW
        assert described.task_queue == ReviewContract.TASK_QUEUE == "tenure-reviews"
        summary = await described.static_summary()
        assert summary is not None and "Finance quarterly access" in summary
        assert "quarterly from 2047-01-31" in summary
        history = await run.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (sent,) = await client.data_converter.decode(started.input.payloads, [CampaignInput])
        assert sent == CampaignInput(review_id="q1", definition=policy.reviews["q1"])
    finally:
        await run.terminate(reason="test: no campaign worker here")


async def test_runs_limit_follows_the_policy_only_when_runs_changes(
    server: WorkflowEnvironment,
) -> None:
    client = await client_for(server, "runs")
    handle = client.get_schedule_handle(Q1)
    three = with_q1({"every": "monthly", "start": "2047-01-31", "runs": 3}, sweep=False)
    await sync_schedules(client, three, QUEUE)
    described = await handle.describe()
    assert described.schedule.state == ScheduleState(limited_actions=True, remaining_actions=3)
    assert [t.date() for t in described.info.next_action_times] == fire_dates(
        recurrence_spec(recurrence_of(three)), 3
    )  # Temporal plans only the runs that remain

    five = with_q1({"every": "monthly", "start": "2047-01-31", "runs": 5}, sweep=False)
    assert (await sync_schedules(client, five, QUEUE)).updated == [Q1]
    assert (await handle.describe()).schedule.state.remaining_actions == 5

    # Something else changes, runs does not: the count Temporal keeps is not reset.
    await handle.update(
        lambda current: _with_remaining(current.description.schedule, 2)  # as if 3 had run
    )
    later = with_q1(
        {"every": "monthly", "start": "2047-01-31", "runs": 5, "catchup_window": "2d"}, sweep=False
    )
    assert (await sync_schedules(client, later, QUEUE)).updated == [Q1]
    described = await handle.describe()
    assert described.schedule.state.remaining_actions == 2
    assert described.schedule.policy.catchup_window == timedelta(days=2)
    unlimited = with_q1({"every": "monthly", "start": "2047-01-31"}, sweep=False)
    await sync_schedules(client, unlimited, QUEUE)
    assert (await handle.describe()).schedule.state.limited_actions is False


def _with_remaining(schedule: Schedule, remaining: int) -> ScheduleUpdate:
    state = replace(schedule.state, remaining_actions=remaining)
    return ScheduleUpdate(schedule=replace(schedule, state=state))


FIRES = {
    "monthly-31": {"every": "monthly", "start": "2047-01-31"},
    "quarterly-30": {"every": "quarterly", "start": "2047-11-30"},
    "semi-31": {"every": "semi_annual", "start": "2047-08-31"},
    "annual-leap": {"every": "annual", "start": "2048-02-29"},
    "weekly": {"every": "weekly", "start": "2047-03-06"},
    "monthly-15": {"every": "monthly", "start": "2047-05-15", "end": "2047-09-15"},
}


async def test_temporal_fires_named_frequencies_on_the_days_they_say(
    server: WorkflowEnvironment,
) -> None:
    client = await client_for(server, "fires")
    reviews = {rid: review(r) for rid, r in FIRES.items()}
    reviews["cron"] = review({"cron": "0 6 1 */3 *", "start": "2047-01-01"})
    reviews["century"] = review({"every": "annual", "start": "2096-02-29"})
    policy = policy_with_reviews(reviews, sweep=False)
    await sync_schedules(client, policy, QUEUE)
    firsts: dict[str, list[str]] = {}
    for rid in FIRES:
        described = await client.get_schedule_handle(f"tenure-review-{rid}").describe()
        times = described.info.next_action_times
        expected = fire_dates(recurrence_spec(recurrence_of(policy, rid)), len(times))
        assert times == [datetime.combine(d, datetime.min.time(), UTC) for d in expected], rid
        assert len(times) == (5 if rid == "monthly-15" else 10), rid  # the end date is included
        firsts[rid] = [t.date().isoformat() for t in times[:3]]
    # And in plain words, so the day-by-day matcher above is not the only judge.
    assert firsts == {
        "monthly-31": ["2047-01-31", "2047-02-28", "2047-03-31"],
        "quarterly-30": ["2047-11-30", "2048-02-29", "2048-05-30"],
        "semi-31": ["2047-08-31", "2048-02-29", "2048-08-31"],
        "annual-leap": ["2048-02-29", "2049-02-28", "2050-02-28"],
        "weekly": ["2047-03-06", "2047-03-13", "2047-03-20"],  # Wednesdays
        "monthly-15": ["2047-05-15", "2047-06-15", "2047-07-15"],
    }

    cron = await client.get_schedule_handle("tenure-review-cron").describe()
    assert [t.isoformat() for t in cron.info.next_action_times[:3]] == [
        "2047-01-01T06:00:00+00:00",
        "2047-04-01T06:00:00+00:00",
        "2047-07-01T06:00:00+00:00",
    ]
    # Temporal plans nothing after 2100; up to then, 2100 is a common year.
    century = await client.get_schedule_handle("tenure-review-century").describe()
    assert [t.date().isoformat() for t in century.info.next_action_times] == [
        "2096-02-29",
        "2097-02-28",
        "2098-02-28",
        "2099-02-28",
        "2100-02-28",
    ]


# ---- the command --------------------------------------------------------------------------------


def _environ(server: WorkflowEnvironment, policy_file: Path, address: str | None = None) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TENURE_"))}
    return environ | {
        "TEMPORAL_ADDRESS": address or target_host(server),
        "TEMPORAL_NAMESPACE": "sched-cli",
        "TENURE_POLICY": str(policy_file),
    }


async def tenure(environ: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`tenure ARGS` in this process, in a thread of its own (it runs its own event loop)."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, environ, clear=True), redirect_stdout(out):
            with redirect_stderr(err):
                code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(run)


def _outcomes(out: str) -> dict[str, str]:
    rows = (line.split() for line in out.splitlines() if line.startswith("  "))
    return {row[1]: row[0] for row in rows}


async def test_the_command(server: WorkflowEnvironment, tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["reviews"] = yaml.safe_load(REVIEWS)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    environ = _environ(server, policy_file)

    # Once as an operator runs it: a process of its own.
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli.main", "schedules", "sync"],
        env=environ,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert "namespace sched-cli" in ran.stdout
    # The demo policy names PIM roles and SoD rules: their scans are scheduled too.
    assert _outcomes(ran.stdout) == {
        SWEEP: "created",
        Q1: "created",
        ALERTS: "created",
        SOD: "created",
    }

    code, out, err = await tenure(environ, "schedules", "sync", "--dry-run")
    assert (code, _outcomes(out)) == (
        0,
        {SWEEP: "unchanged", Q1: "unchanged", ALERTS: "unchanged", SOD: "unchanged"},
    ), err
    assert "dry run" in out

    client = await client_for(server, "cli")
    await until_listed(client, {SWEEP, Q1, ALERTS, SOD})
    await client.get_schedule_handle(Q1).pause(note="audit")
    code, out, err = await tenure(environ, "schedules", "list")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert set(rows) == {SWEEP, Q1, ALERTS, SOD}
    assert " tenure " in rows[Q1] and " paused " in rows[Q1] and "[audit]" in rows[Q1]
    assert "2047-01-31 00:00 UTC" in rows[Q1] and "Finance quarterly access" in rows[Q1]
    assert " active " in rows[SWEEP]

    bad = tmp_path / "bad.yaml"
    raw["reviews"]["q1"]["recurrence"]["end"] = "2046-01-01"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    code, out, err = await tenure(_environ(server, bad), "schedules", "sync")
    assert code == 2 and "reviews.q1.recurrence" in err and "before start" in err, err

    # A port bound but not listening: refused, and no other test's server can take it meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        away = _environ(server, policy_file, address=f"127.0.0.1:{closed.getsockname()[1]}")
        code, out, err = await tenure(away, "schedules", "sync")
        assert code == 2 and "cannot reach Temporal" in err, err
        code, out, err = await tenure(away, "schedules", "list")
        assert code == 2 and "cannot reach Temporal" in err, err


async def test_the_local_stack_syncs_on_start_and_says_what_it_did(
    server: WorkflowEnvironment,
) -> None:
    client = await client_for(server, "stack")
    await client.create_schedule("tenure-review-q1", not_ours())
    said: list[str] = []
    # Only what _ensure_schedules uses of the supervisor: its client, its policy, its voice.
    stack = SimpleNamespace(
        client=client, config=SimpleNamespace(policy=policy_with_reviews()), say=said.append
    )
    await Stack._ensure_schedules(stack)  # type: ignore[arg-type]
    assert said[0] == f"schedules: created {SWEEP}; conflict {Q1}"
    assert Q1 in said[1] and "did not create" in said[1]
    said.clear()
    await Stack._ensure_schedules(stack)  # type: ignore[arg-type]
    assert said[0] == f"schedules: unchanged {SWEEP}; conflict {Q1}"
