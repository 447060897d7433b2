"""`tenure schedules`: the Temporal Schedules the policy implies (orphan sweep, recurring reviews).

    tenure schedules sync            # create, update and delete them to match the policy
    tenure schedules sync --dry-run  # say what a sync would do, change nothing
    tenure schedules list            # every schedule on the namespace, Tenure's and others'

The policy is read as the worker reads it (TENURE_POLICY), Temporal is reached as the worker
reaches it (TEMPORAL_*), and each schedule starts its workflow on the queue the worker polls for
it: TENURE_TASK_QUEUE (default tenure-identity) for the orphan sweep, TENURE_REVIEW_TASK_QUEUE
(default tenure-reviews) for campaigns. Safe to run again: an unchanged policy changes nothing.

Exit codes: 0 done; 1 (sync) a schedule the policy implies is held by one Tenure did not create,
so it was left alone; 2 the policy is invalid, Temporal cannot be reached, or it refused a change.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from temporalio.client import Client
from temporalio.service import RPCError

from connection.schedules_sync import (
    ListedSchedule,
    ScheduleSyncError,
    SyncReport,
    list_namespace_schedules,
    sync_schedules,
)
from connection.temporal import TemporalSettings, TemporalSettingsError, connect
from domain.lifecycle.identity import IdentityContract
from domain.policy.file import PolicyFileError, load_policy, policy_path_from_env
from domain.reviews.campaign import ReviewContract


class _Stop(Exception):
    """Said on stderr, exit 2."""


def register(groups: argparse._SubParsersAction) -> None:
    schedules = groups.add_parser(
        "schedules", help="the Temporal Schedules the policy implies (orphan sweep, reviews)"
    )
    commands = schedules.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sync = commands.add_parser(
        "sync",
        help="create, update and delete Tenure's schedules to match the policy (safe to rerun)",
        description="Reads the policy (TENURE_POLICY) and brings the namespace's schedules in line "
        "with it (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*): the "
        "orphan sweep and one schedule per review with a recurrence. Only schedules Tenure "
        "created are changed or deleted; a pause or note set by an operator stays.",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="say what would change; change nothing"
    )
    sync.set_defaults(handler=_sync)
    listing = commands.add_parser(
        "list", help="every schedule on the namespace: whose it is, paused or not, its next run"
    )
    listing.set_defaults(handler=_list)


def task_queue() -> str:
    # The worker's queue, named as workers/main.py names it: the orphan sweep runs there.
    return os.environ.get("TENURE_TASK_QUEUE") or IdentityContract.TASK_QUEUE


def review_task_queue() -> str:
    # Where the worker polls for campaigns (workers/main.py): the review schedules start them there.
    return os.environ.get("TENURE_REVIEW_TASK_QUEUE") or ReviewContract.TASK_QUEUE


def _sync(args: argparse.Namespace) -> int:
    try:
        report, where = asyncio.run(_run_sync(args.dry_run))
    except (_Stop, PolicyFileError, TemporalSettingsError, ScheduleSyncError) as err:
        print(f"tenure: {err}", file=sys.stderr)
        return 2
    heading = " (dry run: nothing changed)" if report.dry_run else ""
    print(f"Schedules on {where}{heading}:")
    if not report.entries:
        print("  (none: the policy has no orphan sweep and no recurring review)")
    width = max((len(e.schedule_id) for e in report.entries), default=0)
    for entry in report.entries:
        line = f"  {entry.action.value:<9}  {entry.schedule_id:<{width}}  {entry.note}"
        print(line.rstrip())
    if report.conflicts:
        print(
            f"tenure: {len(report.conflicts)} schedule(s) the policy implies are held by "
            f"schedules Tenure did not create: {', '.join(report.conflicts)}",
            file=sys.stderr,
        )
        return 1
    return 0


async def _run_sync(dry_run: bool) -> tuple[SyncReport, str]:
    policy = load_policy(policy_path_from_env())
    client, where = await _connect()
    try:
        report = await sync_schedules(
            client, policy, task_queue(), dry_run=dry_run, review_task_queue=review_task_queue()
        )
        return report, where
    except RPCError as err:
        raise _Stop(f"Temporal at {where} refused: {err.message}") from err


def _list(_: argparse.Namespace) -> int:
    try:
        found, where = asyncio.run(_run_list())
    except (_Stop, TemporalSettingsError) as err:
        print(f"tenure: {err}", file=sys.stderr)
        return 2
    print(f"Schedules on {where}:")
    if not found:
        print("  (none)")
    for line in _rows(found):
        print(line.rstrip())
    return 0


def _rows(found: list[ListedSchedule]) -> list[str]:
    width = max((len(s.schedule_id) for s in found), default=0)
    rows = []
    for s in found:
        whose = "tenure" if s.managed else "other"
        state = "paused" if s.paused else "active"
        upcoming = s.next_run.strftime("%Y-%m-%d %H:%M UTC") if s.next_run else "no next run"
        note = f"  [{s.note}]" if s.note else ""
        rows.append(
            f"  {s.schedule_id:<{width}}  {whose:<6}  {state:<6}  {upcoming:<20}  "
            f"{s.summary or s.workflow}{note}"
        )
    return rows


async def _run_list() -> tuple[list[ListedSchedule], str]:
    client, where = await _connect()
    try:
        return await list_namespace_schedules(client), where
    except RPCError as err:
        raise _Stop(f"Temporal at {where} refused: {err.message}") from err


async def _connect() -> tuple[Client, str]:
    settings = TemporalSettings.from_env()
    where = f"namespace {settings.namespace} at {settings.address}"
    try:
        return await connect(settings), where
    except RuntimeError as err:  # the SDK's "Failed client connect"
        raise _Stop(
            f"cannot reach Temporal at {settings.address} (TEMPORAL_ADDRESS): {err}"
        ) from err
