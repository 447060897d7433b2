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
from domain.leaver import leaver_workflow_id, retention_workflow_id
from domain.mover import mover_workflow_id
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


def _terminate(employee_id: str, event_id: str, leave) -> HrEvent:
    return HrEvent(
        event_id=event_id,
        type=EventType.TERMINATE,
        effective_at=leave,
        worker=WorkerRecord(employee_id=employee_id),
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
            # A leaver: hired, a leave date 10 days out, corrected to 5, then retention (30 days).
            leaver = _hire("R3", "r3-hire", now - timedelta(days=5), department="Finance")
            leave_1 = _terminate("R3", "r3-leave-1", now + timedelta(days=10))
            leave_2 = _terminate("R3", "r3-leave-2", now + timedelta(days=5))
            # A hire withdrawn after its pre-hire work, before its start date.
            withdrawn = _hire("R4", "r4-hire", now + timedelta(days=10), department="Sales")
            await signal_hr_event(env.client, QUEUE, future)
            await signal_hr_event(env.client, QUEUE, past)
            await signal_hr_event(env.client, QUEUE, past)  # a duplicate, recorded as such
            await signal_hr_event(env.client, QUEUE, leaver)
            await signal_hr_event(env.client, QUEUE, withdrawn)
            # A mover: hired into Engineering, then moved to Sales with a new manager.
            mover = _hire("R5", "r5-hire", now - timedelta(days=3), department="Engineering")
            await signal_hr_event(env.client, QUEUE, mover)
            await _wait_closed(env.client, joiner_workflow_id("R3", "r3-hire"))
            await _wait_closed(env.client, joiner_workflow_id("R5", "r5-hire"))
            moved = mover.worker.model_copy(update={"department": "Sales", "manager_id": "R0"})
            await signal_hr_event(
                env.client,
                QUEUE,
                HrEvent(event_id="r5-move", type=EventType.UPDATE, effective_at=now, worker=moved),
            )
            await _wait_closed(env.client, mover_workflow_id("R5", "r5-move"))
            await signal_hr_event(env.client, QUEUE, leave_1)
            await signal_hr_event(env.client, QUEUE, leave_2)
            await env.sleep(timedelta(days=4))
            await signal_hr_event(
                env.client, QUEUE, _terminate("R4", "r4-withdraw", now + timedelta(days=10))
            )
            await _wait_closed(env.client, joiner_workflow_id("R4", "r4-hire"))
            await env.sleep(timedelta(days=27))
            for employee, event in (("R1", future), ("R2", past)):
                await _wait_closed(env.client, joiner_workflow_id(employee, event.event_id))
            await _wait_closed(env.client, leaver_workflow_id("R3", "r3-leave-2"))
            await env.sleep(timedelta(days=10))
            await _wait_closed(env.client, retention_workflow_id("R3", "r3-leave-2"))
            for workflow_id in (
                identity_workflow_id("R1"),
                joiner_workflow_id("R1", "r1-hire"),
                identity_workflow_id("R2"),
                joiner_workflow_id("R2", "r2-hire"),
                identity_workflow_id("R3"),
                leaver_workflow_id("R3", "r3-leave-2"),
                retention_workflow_id("R3", "r3-leave-2"),
                identity_workflow_id("R4"),
                joiner_workflow_id("R4", "r4-hire"),
                identity_workflow_id("R5"),
                joiner_workflow_id("R5", "r5-hire"),
                mover_workflow_id("R5", "r5-move"),
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
