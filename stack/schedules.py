"""Temporal Schedules the local stack registers, kept in step with the policy on every start."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.detective.sweep import OrphanSweepContract, sweep_input
from domain.policy.model import OrphanSweepSettings, Policy


def orphan_sweep_schedule(
    section: OrphanSweepSettings, policy: Policy, task_queue: str
) -> Schedule:
    seconds = section.every_seconds
    spec = (
        ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=seconds))])
        if seconds is not None
        else ScheduleSpec(cron_expressions=[section.cron or ""])
    )
    mode = "dry run" if section.dry_run else f"disables up to {section.max_changes}"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            OrphanSweepContract.WORKFLOW,
            # Plain JSON: whatever data converter the caller's client has, the worker's pydantic
            # converter reads it back as OrphanSweepInput.
            sweep_input(policy).model_dump(mode="json"),
            # Temporal appends the scheduled time: orphan-sweep-2026-01-01T02:00:00Z.
            id=OrphanSweepContract.ID_PREFIX.rstrip("-"),
            task_queue=task_queue,
            static_summary=f"Orphan sweep ({mode})",
        ),
        spec=spec,
        # A sweep still running (a slow directory) is not doubled up by the next one.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_orphan_sweep_schedule(
    client: Client, policy: Policy, task_queue: str
) -> ScheduleHandle | None:
    """Create or update `tenure-orphan-sweep` from the policy; remove it if the policy has none.

    Idempotent, so every `make run` brings the schedule in line with the current policy file.
    """
    handle = client.get_schedule_handle(OrphanSweepContract.SCHEDULE_ID)
    section = policy.orphan_sweep
    if section is None:
        try:
            await handle.delete()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        return None
    schedule = orphan_sweep_schedule(section, policy, task_queue)
    try:
        return await client.create_schedule(OrphanSweepContract.SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        pass

    def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # Spec and action follow the policy; a pause or note an operator set in the UI stays.
        return ScheduleUpdate(
            schedule=dataclasses.replace(schedule, state=current.description.schedule.state)
        )

    await handle.update(replace)
    return handle
