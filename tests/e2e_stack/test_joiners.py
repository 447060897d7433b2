"""End to end over HTTP on a running local stack, at joiner scale: twenty hires, a worker killed
mid-batch, throttled Graph calls, the intake's refusals and `tenure login` against the stack."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from api.caller import TokenSettings, TokenVerifier
from cli.api_session import load_session
from cli.main import main as tenure
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import EventOutcome, LifecycleStage
from domain.lifecycle.joiner import joiner_workflow_id
from domain.policy.model import Policy
from stack.launcher import LaunchedStack
from tests.support.e2e import (
    Apis,
    assert_provisioned_once,
    hire,
    identity,
    team,
    wait_all_applied,
    wait_until,
)

pytestmark = pytest.mark.e2e


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
    # The manager first: a team throttled while its manager is too waits on the manager's account
    # (for the TAP) with backoff growing to 30 s, which is not what this test is about.
    manager = [hire("E7200", department="Sales", job_title="Head of Sales", location="London")]
    assert (await apis.post_events(manager)).status_code == 202
    await wait_all_applied(temporal, manager)
    start = await apis.request_log()
    since = max((r["seq"] for r in start), default=0)
    fault = await apis.control.post(
        "/faults", json={"status": 429, "retry_after": 2, "path": "/v1.0/", "share": 0.3, "seed": 7}
    )
    assert fault.status_code in (200, 201), fault.text
    try:
        events = team("E7200", 201, 9, "E7")
        assert (await apis.post_events(events)).status_code == 202
        await wait_all_applied(temporal, events)
    finally:
        await apis.control.delete("/faults")
    await assert_provisioned_once(apis, demo_policy, manager + events)

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
