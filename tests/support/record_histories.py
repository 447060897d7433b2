"""Record workflow histories for the replay tests: `python -m tests.support.record_histories`.

Run it when a workflow change is *meant* to change histories (and version the change with
workflow.patched so running workflows keep replaying). The recorded files are what running
workflows look like today; tests/test_replay.py replays them against the current code.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.events import EventType, HrEvent, WorkerRecord, identity_workflow_id
from domain.joiner import joiner_workflow_id
from domain.policy_file import DEFAULT_POLICY_PATH, load_policy
from tests.support.fake_directory import FakeDirectory
from tests.support.identity_signal import signal_hr_event
from tests.support.lifecycle import LIFECYCLE_WORKFLOWS, lifecycle_activities

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
QUEUE = "record-histories"


def _hire(employee_id: str, event_id: str, start, **worker: str) -> HrEvent:
    return HrEvent(
        event_id=event_id,
        type=EventType.HIRE,
        effective_at=start,
        worker=WorkerRecord(
            employee_id=employee_id, given_name="Ada", family_name="Lovelace", **worker
        ),
    )


async def _wait_closed(client: Client, workflow_id: str) -> None:
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(400):
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{workflow_id} did not close")


async def record(out: Path) -> list[Path]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    written = []
    try:
        directory = FakeDirectory()
        policy = load_policy(DEFAULT_POLICY_PATH)
        async with Worker(
            env.client,
            task_queue=QUEUE,
            workflows=LIFECYCLE_WORKFLOWS,
            activities=lifecycle_activities(policy, directory),
        ):
            now = await env.get_current_time()
            future = _hire(
                "R1", "r1-hire", now + timedelta(days=30), department="Finance", manager_id="R0"
            )
            past = _hire("R2", "r2-hire", now - timedelta(days=2), department="Engineering")
            await signal_hr_event(env.client, QUEUE, future)
            await signal_hr_event(env.client, QUEUE, past)
            await signal_hr_event(env.client, QUEUE, past)  # a duplicate, recorded as such
            await env.sleep(timedelta(days=31))
            for employee, event in (("R1", future), ("R2", past)):
                await _wait_closed(env.client, joiner_workflow_id(employee, event.event_id))
            for workflow_id in (
                identity_workflow_id("R1"),
                joiner_workflow_id("R1", "r1-hire"),
                identity_workflow_id("R2"),
                joiner_workflow_id("R2", "r2-hire"),
            ):
                history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                path = out / f"{workflow_id}.json"
                path.write_text(history.to_json())
                written.append(path)
    finally:
        await env.shutdown()
    return written


if __name__ == "__main__":
    HISTORIES.mkdir(exist_ok=True)
    for path in asyncio.run(record(HISTORIES)):
        print(f"wrote {path}")
