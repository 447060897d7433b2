"""Joiner benchmark on the local stack (`make bench`).

In one run, on one Temporal dev server:
1. baseline: N no-op workflows, each running as many no-op activities as a joiner does;
2. Tenure: N hires posted through the HTTP API, until every joiner has completed;
3. latency: hires posted at a steady rate, from each 202 to its joiner's close time (p50/p99);
4. Graph HTTP requests per joiner, from the emulator's request log, for 1, 10 and 40 birthright groups.
Figures are printed and written to bench/results/joiners-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from connection.temporal import TemporalSettings, connect
from domain.lifecycle.joiner import joiner_workflow_id
from stack.launcher import launched_stack

GROUP_COUNTS = (1, 10, 40)
RESULTS = Path(__file__).resolve().parent / "results"


@activity.defn(name="bench.noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="BenchSequentialBaselineWorkflow", sandboxed=False)
class SequentialBaselineWorkflow:
    """The plain reading of "no-op workflows with the same number of activities": one after another
    (the joiner's local activity counted as an activity)."""

    @workflow.run
    async def run(self, activities: int) -> None:
        for step in range(activities + 1):
            await workflow.execute_activity(
                "bench.noop", step, start_to_close_timeout=timedelta(seconds=30)
            )


@workflow.defn(name="BenchBaselineWorkflow", sandboxed=False)
class BaselineWorkflow:
    """The joiner's shape with no-op work: one local activity, one activity, then the rest of the
    activities together (the joiner creates the account, then grants everything at once)."""

    @workflow.run
    async def run(self, activities: int) -> None:
        timeout = timedelta(seconds=30)
        await workflow.execute_local_activity("bench.noop", 0, start_to_close_timeout=timeout)
        await workflow.execute_activity("bench.noop", 1, start_to_close_timeout=timeout)
        await asyncio.gather(
            *(
                workflow.execute_activity("bench.noop", step, start_to_close_timeout=timeout)
                for step in range(2, activities + 1)
            )
        )


def bench_policy() -> str:
    groups = [f"Bench Group {i:02d}" for i in range(1, 41)]
    rules = [
        {"name": f"bench-{n}", "when": {"department": f"G{n}"}, "groups": groups[:n]}
        for n in GROUP_COUNTS
    ]
    rules.append({"name": "everyone", "apps": [{"app": "collab"}]})
    policy = {
        "tenant": {"domain": "bench.example.com", "mail_sender": "tenure-notify@bench.example.com"},
        "joiner": {"pre_hire_days": 7},
        "groups": groups,
        "apps": {"collab": {"display_name": "Collaboration suite"}},
        "birthright": rules,
    }
    return json.dumps(policy)  # JSON is YAML


def hire(employee_id: str, department: str, manager: str | None = "B0000") -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "event_id": f"bench-{uuid.uuid4().hex[:12]}",
        "type": "hire",
        "effective_at": (now - timedelta(hours=1)).isoformat(),
        "worker": {
            "employee_id": employee_id,
            "given_name": "Bench",
            "family_name": f"Person {employee_id}",
            "department": department,
            "job_title": "Analyst",
            "location": "London",
            **({"manager_id": manager} if manager else {}),
        },
    }


async def completed_joiners(
    client: Client, since: datetime, expected: int, timeout_s: float = 900
) -> dict[str, datetime]:
    """Close times of joiners started since `since`, once `expected` of them have completed.

    One visibility count per second rather than a poll per workflow, so waiting does not load the
    server whose throughput is being measured.
    """
    query = (
        f"WorkflowType = 'JoinerWorkflow' AND ExecutionStatus = 'Completed' "
        f"AND StartTime >= '{since.isoformat().replace('+00:00', 'Z')}'"
    )
    deadline = time.monotonic() + timeout_s
    while (await client.count_workflows(query)).count < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {expected} joiners completed in {timeout_s}s")
        await asyncio.sleep(1.0)
    return {wf.id: wf.close_time async for wf in client.list_workflows(query) if wf.close_time}


async def wait_for_joiner(
    client: Client, event: dict[str, Any], timeout_s: float = 300
) -> datetime:
    """Close time of one joiner (used for single hires only)."""
    handle = client.get_workflow_handle(
        joiner_workflow_id(event["worker"]["employee_id"], event["event_id"])
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            await handle.result()
            desc = await handle.describe()
            assert desc.close_time is not None
            return desc.close_time
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.2)  # the identity has not started its joiner yet
    raise TimeoutError(f"{handle.id} not done in {timeout_s}s")


async def activities_per_joiner(client: Client, event: dict[str, Any]) -> int:
    handle = client.get_workflow_handle(
        joiner_workflow_id(event["worker"]["employee_id"], event["event_id"])
    )
    count = 0
    async for ev in handle.fetch_history_events():
        if ev.HasField("activity_task_scheduled_event_attributes"):
            count += 1
    return count


async def run_baseline(client: Client, count: int, activities: int, shape: type) -> float:
    queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[shape], activities=[noop]):
        start = time.monotonic()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    shape.run,
                    activities,
                    id=f"bench-baseline-{queue}-{i}",
                    task_queue=queue,
                )
                for i in range(count)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        return count / (time.monotonic() - start)


async def post(api: httpx.AsyncClient, token: str, events: list[dict[str, Any]]) -> None:
    response = await api.post(
        "/v1/hr/events", json={"events": events}, headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()


async def run_tenure_throughput(
    client: Client, api: httpx.AsyncClient, token: str, count: int
) -> float:
    events = [hire(f"T{i:05d}", "G1") for i in range(count)]
    start = datetime.now(UTC)
    for i in range(0, count, 250):
        await post(api, token, events[i : i + 250])
    closes = await completed_joiners(client, start, count)
    return count / (max(closes.values()) - start).total_seconds()


async def run_latency(
    client: Client, api: httpx.AsyncClient, token: str, rate: float, seconds: float
) -> list[tuple[float, str, datetime]]:
    """(latency in seconds, joiner workflow id, when the hire was accepted), slowest last."""
    accepted: list[tuple[dict[str, Any], datetime]] = []
    since = datetime.now(UTC)
    total = int(rate * seconds)
    interval = 1.0 / rate
    start = time.monotonic()

    async def one(i: int) -> None:
        event = hire(f"L{i:05d}", "G1")
        await post(api, token, [event])
        accepted.append((event, datetime.now(UTC)))

    tasks = []
    for i in range(total):
        # Keep a steady schedule regardless of how long each post takes.
        await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    closes = await completed_joiners(client, since, total)
    samples = []
    for e, at in accepted:
        joiner_id = joiner_workflow_id(e["worker"]["employee_id"], e["event_id"])
        samples.append(((closes[joiner_id] - at).total_seconds(), joiner_id, at))
    return sorted(samples)


async def latency_parts(client: Client, joiner_id: str, accepted: datetime) -> dict[str, float]:
    """Where one hire's latency went, in seconds, from the joiner's history: before the joiner
    started (the API's signal, the identity's task, the child's start), waits for a worker to pick
    up workflow and activity tasks, time inside activities, and retried attempts."""
    parts = dict.fromkeys(
        ("before_joiner", "workflow_task_queue", "workflow_task_run", "activity_queue",
         "activity_run", "retried_attempts"),
        0.0,
    )  # fmt: skip
    scheduled: dict[int, datetime] = {}
    started: dict[int, datetime] = {}
    history = await client.get_workflow_handle(joiner_id).fetch_history()
    first = history.events[0].event_time.ToDatetime(tzinfo=UTC)
    parts["before_joiner"] = (first - accepted).total_seconds()
    for event in history.events:
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
        elif event.HasField("activity_task_started_event_attributes"):
            attrs = event.activity_task_started_event_attributes
            parts["activity_queue"] += (at - scheduled[attrs.scheduled_event_id]).total_seconds()
            parts["retried_attempts"] += max(attrs.attempt - 1, 0)
            started[event.event_id] = at
        elif event.HasField("activity_task_completed_event_attributes"):
            ref = event.activity_task_completed_event_attributes.started_event_id
            parts["activity_run"] += (at - started[ref]).total_seconds()
    return {k: round(v, 3) for k, v in parts.items()}


async def graph_requests_per_joiner(
    client: Client,
    api: httpx.AsyncClient,
    token: str,
    control: httpx.AsyncClient,
    groups: int,
    samples: int,
) -> float:
    counts = []
    for i in range(samples):
        await control.delete("/requests")
        event = hire(f"G{groups:02d}{i:03d}", f"G{groups}")
        await post(api, token, [event])
        await wait_for_joiner(client, event)
        log = (await control.get("/requests")).json()
        entries = log["value"]
        counts.append(len(entries))
    return statistics.mean(counts)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="tenure-bench-"))
    policy_path = home / "bench-policy.yaml"
    policy_path.write_text(bench_policy())
    with launched_stack(home / "stack", policy=policy_path) as stack:
        info = stack.info()
        client = await connect(
            TemporalSettings(
                address=info["temporal"]["address"], namespace=info["temporal"]["namespace"]
            )
        )
        token = info["api"]["intake_token"]
        graph_auth = {"Authorization": f"Bearer {info['graph']['token']}"}
        async with (
            httpx.AsyncClient(base_url=info["api"]["url"], timeout=120) as api,
            httpx.AsyncClient(base_url=info["graph"]["control_url"], headers=graph_auth) as control,
        ):
            manager = hire("B0000", "G1", manager=None)
            await post(api, token, [manager])
            await wait_for_joiner(client, manager)
            warm = hire("B0001", "G40")
            await post(api, token, [warm])
            await wait_for_joiner(client, warm)
            activities = await activities_per_joiner(client, warm)
            print(
                f"a joiner runs 1 local activity and {activities} activities; "
                "baseline workflows run as many no-ops in the same shape"
            )

            # Baselines run before and after Tenure and are averaged: the server slows a little as
            # its database grows, and neither side should profit from going first.
            before = [
                await run_baseline(client, args.hires, activities, shape)
                for shape in (SequentialBaselineWorkflow, BaselineWorkflow)
            ]
            tenure = await run_tenure_throughput(client, api, token, args.hires)
            after = [
                await run_baseline(client, args.hires, activities, shape)
                for shape in (SequentialBaselineWorkflow, BaselineWorkflow)
            ]
            sequential, baseline = ((b + a) / 2 for b, a in zip(before, after, strict=True))
            print(
                f"baseline, sequential activities: {sequential:.1f} workflows/s "
                f"({before[0]:.1f} before, {after[0]:.1f} after)"
            )
            print(
                f"baseline, the joiner's shape:    {baseline:.1f} workflows/s "
                f"({before[1]:.1f} before, {after[1]:.1f} after)"
            )
            print(
                f"tenure: {tenure:.1f} hires/s (ratio {tenure / sequential:.2f} to the sequential "
                f"baseline, {tenure / baseline:.2f} to the same-shape baseline)"
            )
            samples = await run_latency(client, api, token, args.rate, args.seconds)
            latencies = [s[0] for s in samples]
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            print(f"latency at {args.rate}/s: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
            # What the tail is made of: the median hire beside the slowest 1 %.
            tail = samples[-max(1, len(samples) // 100) :]
            median = samples[len(samples) // 2]
            breakdown = {
                "median": await latency_parts(client, median[1], median[2]),
                "slowest": [await latency_parts(client, s[1], s[2]) for s in tail],
            }
            print(f"median hire: {breakdown['median']}")
            for parts in breakdown["slowest"]:
                print(f"slowest hire: {parts}")
            requests = {
                n: await graph_requests_per_joiner(client, api, token, control, n, args.samples)
                for n in GROUP_COUNTS
            }
            print(
                "graph requests per joiner: "
                + ", ".join(f"{n} groups: {r:.1f}" for n, r in requests.items())
            )
    return {
        "when": datetime.now(UTC).isoformat(),
        "hires": args.hires,
        "activities_per_joiner": activities,
        "baseline_sequential_workflows_per_s": round(sequential, 2),
        "baseline_sequential_before_after": [round(before[0], 2), round(after[0], 2)],
        "baseline_same_shape_before_after": [round(before[1], 2), round(after[1], 2)],
        "baseline_same_shape_workflows_per_s": round(baseline, 2),
        "tenure_hires_per_s": round(tenure, 2),
        "ratio_to_sequential_baseline": round(tenure / sequential, 3),
        "ratio_to_same_shape_baseline": round(tenure / baseline, 3),
        "latency_rate_per_s": args.rate,
        "latency_samples": len(latencies),
        "latency_p50_ms": round(p50 * 1000),
        "latency_p99_ms": round(p99 * 1000),
        "latency_breakdown_s": breakdown,
        "graph_requests_per_joiner": {str(n): r for n, r in requests.items()},
        "extra_requests_40_vs_1": requests[40] - requests[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hires", type=int, default=500)
    parser.add_argument(
        "--rate", type=float, default=10.0, help="hires per second in the latency run"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the latency run")
    parser.add_argument("--samples", type=int, default=3, help="joiners measured per group count")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"joiners-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
