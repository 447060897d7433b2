"""Every Temporal Schedule the policy implies, kept in step with it (`tenure schedules sync`).

The policy implies the orphan sweep (`tenure-orphan-sweep`, on the worker's task queue) and one
Schedule per review with a recurrence (`tenure-review-<id>`, by default on `tenure-reviews`). A
sync creates what is missing, updates what differs, leaves the rest alone and deletes the schedules
Tenure made that the policy no longer implies. It works on whatever namespace the client is
connected to, and is run by the local stack on every start and by `tenure schedules sync`
elsewhere.

Only schedules Tenure manages are touched. They carry the memo key `tenure.managed`, written when
they are created (Temporal cannot change a schedule's memo later). Whether one is up to date is
read from a fingerprint of the desired schedule in its action's memo (`tenure.schedule`), which an
update replaces; so an unchanged policy costs one describe per schedule and no update. A schedule
without the marker is never changed or deleted, whatever its id: it is reported instead.

Named frequencies become calendar specs at 00:00 UTC anchored on the recurrence's start date:
weekly on its weekday, the month-based ones on its day of the month in the months that follow
from its month. A day after the 28th runs on the month's last day when the month is shorter
(a 31st: the 30th of April, Feb 29 in leap years and Feb 28 otherwise). Temporal has no "last day"
field, so that is spelled as one calendar per month length (see `_month_calendars`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum, StrEnum
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.detective.sod_contract import SodContract, SodScanInput
from domain.detective.sweep import OrphanSweepContract, sweep_input
from domain.pim.alert_scan import AlertScanInput, PimAlertContract
from domain.policy.model import OrphanSweepSettings, Policy
from domain.reviews.campaign import CampaignInput, ReviewContract, schedule_id
from domain.reviews.definition import ReviewDefinition
from domain.reviews.recurrence import MONTHS_BETWEEN, Frequency, Recurrence

# Schedule memo, set at creation: this schedule is Tenure's to change and delete.
MANAGED_MEMO = "tenure.managed"
# Action memo, replaced by every update: {"hash": fingerprint, "runs": the policy's runs or null}.
FINGERPRINT_MEMO = "tenure.schedule"
# Bumped when the translation changes meaning without changing the Schedule's fields.
FINGERPRINT_VERSION = 1
SUMMARY_MAX = 200
_NOT_OURS = "not created by Tenure (no tenure.managed memo): left alone"

_LONG_MONTHS = frozenset({1, 3, 5, 7, 8, 10, 12})
# Temporal matches calendar years 2000-2100 only; the common (non-leap) years among them.
_COMMON_YEARS = (
    ScheduleRange(2001, 2097, 4),
    ScheduleRange(2002, 2098, 4),
    ScheduleRange(2003, 2099, 4),
    ScheduleRange(2100),
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Cron syntax croniter accepts that Temporal refuses (L, W, ?, H) or reads differently: `1#2`
# (croniter: the 2nd Monday) runs every Monday on Temporal.
_CRON_UNSUPPORTED = frozenset("LW?#H")
_CRON_NAMES = re.compile(
    r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT"
)


class ScheduleSyncError(Exception):
    """A schedule could not be built or written; the message names it and says why."""


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    # The policy implies this id, but a schedule Tenure does not manage holds it: not changed.
    CONFLICT = "conflict"
    # Not Tenure's (no marker) though its id looks like it; the policy does not imply it: left alone.
    IGNORED = "ignored"


@dataclasses.dataclass(frozen=True)
class SyncEntry:
    action: Action
    schedule_id: str
    note: str = ""


@dataclasses.dataclass
class SyncReport:
    dry_run: bool = False
    entries: list[SyncEntry] = dataclasses.field(default_factory=list)

    def _ids(self, action: Action) -> list[str]:
        return [e.schedule_id for e in self.entries if e.action is action]

    @property
    def created(self) -> list[str]:
        return self._ids(Action.CREATED)

    @property
    def updated(self) -> list[str]:
        return self._ids(Action.UPDATED)

    @property
    def unchanged(self) -> list[str]:
        return self._ids(Action.UNCHANGED)

    @property
    def deleted(self) -> list[str]:
        return self._ids(Action.DELETED)

    @property
    def conflicts(self) -> list[str]:
        return self._ids(Action.CONFLICT)

    @property
    def ignored(self) -> list[str]:
        return self._ids(Action.IGNORED)

    def summary(self) -> str:
        """One line: `created a, b; unchanged c` (empty when there was nothing to do)."""
        parts = [
            f"{action.value} {', '.join(ids)}" for action in Action if (ids := self._ids(action))
        ]
        return "; ".join(parts)


# ---- what the policy implies (pure) -------------------------------------------------------------


def desired_schedules(
    policy: Policy, task_queue: str, *, review_task_queue: str = ReviewContract.TASK_QUEUE
) -> dict[str, Schedule]:
    """Every schedule the policy implies, by id, each with its fingerprint in its action's memo.

    `task_queue` is the worker's (the orphan sweep runs there); campaigns run on their own queue
    (the worker's TENURE_REVIEW_TASK_QUEUE, default tenure-reviews).
    Raises ScheduleSyncError when a review's cron cannot be run by Temporal as written.
    """
    found: dict[str, Schedule] = {}
    if policy.orphan_sweep is not None:
        found[OrphanSweepContract.SCHEDULE_ID] = orphan_sweep_schedule(
            policy.orphan_sweep, policy, task_queue
        )
    if policy.access.sod and policy.access.sod_scan.enabled:
        found[SodContract.SCAN_SCHEDULE_ID] = sod_scan_schedule(policy, task_queue)
    if policy.pim.roles and policy.pim.alerts.enabled:
        found[PimAlertContract.SCHEDULE_ID] = pim_alert_schedule(policy, task_queue)
    for review_id, definition in sorted(policy.reviews.items()):
        if definition.recurrence is not None:
            found[schedule_id(review_id)] = review_schedule(
                review_id, definition, task_queue=review_task_queue
            )
    return found


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
    schedule = Schedule(
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
    return _fingerprinted(schedule, runs=None)


def pim_alert_schedule(policy: Policy, task_queue: str) -> Schedule:
    every = timedelta(seconds=policy.pim.alerts.every_seconds)
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            PimAlertContract.WORKFLOW,
            AlertScanInput().model_dump(mode="json"),
            id=PimAlertContract.ID_PREFIX.rstrip("-"),
            task_queue=task_queue,
            static_summary="PIM alert scan",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    return _fingerprinted(schedule, runs=None)


def sod_scan_schedule(policy: Policy, task_queue: str) -> Schedule:
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            SodContract.SCAN_WORKFLOW,
            SodScanInput().model_dump(mode="json"),
            id="sod-scan",
            task_queue=task_queue,
            static_summary=f"SoD check of everyone ({len(policy.access.sod)} rules)",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=policy.access.sod_scan.every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    return _fingerprinted(schedule, runs=None)


def review_schedule(
    review_id: str,
    definition: ReviewDefinition,
    *,
    task_queue: str = ReviewContract.TASK_QUEUE,
) -> Schedule:
    """The schedule of one review with a recurrence: starts its campaign workflow."""
    recurrence = definition.recurrence
    if recurrence is None:
        raise ValueError(f"review {review_id!r} has no recurrence: it is started by hand only")
    try:
        spec = recurrence_spec(recurrence)
    except ValueError as err:
        raise ScheduleSyncError(f"reviews.{review_id}.recurrence: {err}") from None
    summary = f"Access review {definition.name}: {recurrence.describe()}"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            ReviewContract.CAMPAIGN_WORKFLOW,
            # Plain JSON, as for the sweep: any client's converter writes it, pydantic reads it.
            CampaignInput(review_id=review_id, definition=definition).model_dump(mode="json"),
            # Temporal appends the scheduled time: review-q1-access-2027-01-01T00:00:00Z.
            id=f"{ReviewContract.ID_PREFIX}{review_id}",
            task_queue=task_queue,
            static_summary=_shorten(summary, SUMMARY_MAX),
        ),
        spec=spec,
        # A campaign still open is never doubled by the next one.
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=recurrence.catchup_window
        ),
        state=recurrence_state(recurrence),
    )
    return _fingerprinted(schedule, runs=recurrence.runs)


def recurrence_spec(recurrence: Recurrence) -> ScheduleSpec:
    """When a recurrence fires, in UTC: from its start date's midnight to the end of its end date."""
    start_at = datetime.combine(recurrence.start, time.min, UTC)
    end_at = _end_of(recurrence.end) if recurrence.end is not None else None
    if recurrence.cron is not None:
        _check_cron(recurrence.cron)
        return ScheduleSpec(cron_expressions=[recurrence.cron], start_at=start_at, end_at=end_at)
    assert recurrence.every is not None  # the model holds exactly one of every and cron
    return ScheduleSpec(
        calendars=frequency_calendars(recurrence.every, recurrence.start),
        start_at=start_at,
        end_at=end_at,
    )


def recurrence_state(recurrence: Recurrence) -> ScheduleState:
    if recurrence.runs is None:
        return ScheduleState()
    return ScheduleState(limited_actions=True, remaining_actions=recurrence.runs)


def frequency_calendars(every: Frequency, start: date) -> list[ScheduleCalendarSpec]:
    """Calendar specs (00:00 UTC) for a named frequency anchored on `start`."""
    if every is Frequency.WEEKLY:
        # Temporal counts weekdays from Sunday = 0; Python from Monday = 0.
        return [
            ScheduleCalendarSpec(
                day_of_week=(ScheduleRange((start.weekday() + 1) % 7),),
                comment=f"weekly on {_WEEKDAYS[start.weekday()]}",
            )
        ]
    step = MONTHS_BETWEEN[every]
    months = sorted({(start.month - 1 + k * step) % 12 + 1 for k in range(12 // step)})
    return _month_calendars(start.day, months, every.value.replace("_", "-"))


def _month_calendars(day: int, months: Sequence[int], label: str) -> list[ScheduleCalendarSpec]:
    """Day `day` of each of `months`; on the month's last day where the month is shorter."""
    if day <= 28:
        return [_on(day, months, f"{label} on day {day}")]
    by_day: dict[int, list[int]] = {}
    for month in months:
        if month != 2:
            by_day.setdefault(min(day, 31 if month in _LONG_MONTHS else 30), []).append(month)
    calendars = [
        _on(d, ms, f"{label} on day {day}" + ("" if d == day else f" (day {d}: the last)"))
        for d, ms in sorted(by_day.items(), reverse=True)
    ]
    if 2 in months:
        # Feb 29 only matches in leap years; Feb 28 is then limited to the common ones.
        calendars.append(_on(29, [2], f"{label} on day {day} (Feb 29 in leap years)"))
        calendars.append(
            _on(28, [2], f"{label} on day {day} (Feb 28 in common years)", years=_COMMON_YEARS)
        )
    return calendars


def _on(
    day: int, months: Sequence[int], comment: str, years: Sequence[ScheduleRange] = ()
) -> ScheduleCalendarSpec:
    # Tuples, as the SDK's defaults and `describe()` have them, so specs compare equal.
    month_ranges = (
        (ScheduleRange(1, 12),) if len(months) == 12 else tuple(ScheduleRange(m) for m in months)
    )
    return ScheduleCalendarSpec(
        day_of_month=(ScheduleRange(day),), month=month_ranges, year=tuple(years), comment=comment
    )


def _end_of(day: date) -> datetime:
    # The end date is the last day a run may start on, so the schedule ends with that day.
    return datetime.combine(day, time(23, 59, 59), UTC)


def _check_cron(expression: str) -> None:
    # Month and weekday names (JUL, WED, THU) hold some of these letters; only the rest counts.
    bare = _CRON_NAMES.sub("", expression.upper())
    bad = sorted(_CRON_UNSUPPORTED.intersection(bare))
    if bad:
        raise ValueError(
            f"cron {expression!r}: Temporal does not run {' '.join(bad)} as other cron "
            "implementations do; write the days out (e.g. day 1-7 and a weekday for the first "
            "such weekday of the month: Temporal requires both to match)"
        )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- fingerprints -------------------------------------------------------------------------------


def _fingerprinted(schedule: Schedule, *, runs: int | None) -> Schedule:
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    action.memo = {FINGERPRINT_MEMO: {"hash": fingerprint(schedule), "runs": runs}}
    return schedule


def fingerprint(schedule: Schedule) -> str:
    """A digest of everything a schedule does (its action's memo aside, where the digest goes)."""
    body = _canonical(schedule)
    body["action"].pop("memo", None)
    text = json.dumps({"v": FINGERPRINT_VERSION, "schedule": body}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _canonical(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    # Anything else (a protobuf payload, say) has no stable text: refuse rather than guess.
    raise TypeError(f"cannot fingerprint a {type(value).__name__} in a schedule")


def _desired_mark(schedule: Schedule) -> dict[str, Any]:
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.memo is not None
    return dict(action.memo[FINGERPRINT_MEMO])


async def _stored_mark(client: Client, described: ScheduleDescription) -> dict[str, Any] | None:
    action = described.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not action.memo:
        return None
    payload = action.memo.get(FINGERPRINT_MEMO)
    if payload is None:
        return None
    (value,) = await client.data_converter.decode([payload])
    return value if isinstance(value, dict) else None


def merged_state(current: ScheduleState, *, stored_runs: Any, runs: int | None) -> ScheduleState:
    """The state an update writes: the operator's pause and note stay; the run limit follows the
    policy only when its `runs` changed, counting the runs already made against the new total."""
    if stored_runs == runs:
        return current
    if runs is None:
        return dataclasses.replace(current, limited_actions=False, remaining_actions=0)
    made = 0
    if isinstance(stored_runs, int) and current.limited_actions:
        made = max(stored_runs - current.remaining_actions, 0)
    return dataclasses.replace(current, limited_actions=True, remaining_actions=max(runs - made, 0))


# ---- writing it (Temporal) ----------------------------------------------------------------------


async def sync_schedules(
    client: Client,
    policy: Policy,
    task_queue: str,
    *,
    dry_run: bool = False,
    review_task_queue: str = ReviewContract.TASK_QUEUE,
) -> SyncReport:
    """Bring the namespace's schedules in line with the policy; with `dry_run`, only say how.

    Schedules to delete are found by listing the namespace, which Temporal's visibility may show a
    moment late: a review schedule created within the last second or so may survive one more
    sync. The orphan sweep's id is known, so it is looked up directly.
    """
    desired = desired_schedules(policy, task_queue, review_task_queue=review_task_queue)
    report = SyncReport(dry_run=dry_run)
    for sid, schedule in desired.items():
        report.entries.append(await _sync_one(client, sid, schedule, dry_run=dry_run))

    # id -> whether the listing shows Tenure's marker (memo is fixed at creation, so it is exact).
    listed: dict[str, bool] = {}
    async for entry in await client.list_schedules():
        if entry.id not in desired:
            listed[entry.id] = (await entry.memo()).get(MANAGED_MEMO) is True
    if OrphanSweepContract.SCHEDULE_ID not in desired:
        listed.setdefault(OrphanSweepContract.SCHEDULE_ID, True)  # to be checked either way
    for sid, managed in sorted(listed.items()):
        if managed or sid == OrphanSweepContract.SCHEDULE_ID:
            retired = await _retire(client, sid, dry_run=dry_run)
            if retired is not None:
                report.entries.append(retired)
        elif _looks_like_ours(sid):
            report.entries.append(SyncEntry(Action.IGNORED, sid, _NOT_OURS))
    return report


async def _retire(client: Client, sid: str, *, dry_run: bool) -> SyncEntry | None:
    """Delete a schedule the policy no longer implies, once its marker is confirmed."""
    described = await _describe(client, sid)
    if described is None:
        return None
    memo = await described.memo()
    if memo.get(MANAGED_MEMO) is not True and not _is_legacy_sweep(sid, described, memo):
        return SyncEntry(Action.IGNORED, sid, _NOT_OURS)
    if not dry_run:
        await _delete(client, sid)
    return SyncEntry(Action.DELETED, sid, "no longer in the policy")


async def _sync_one(client: Client, sid: str, schedule: Schedule, *, dry_run: bool) -> SyncEntry:
    summary = _summary_of(schedule)
    described = await _describe(client, sid)
    if described is None:
        if not dry_run:
            try:
                await client.create_schedule(sid, schedule, memo={MANAGED_MEMO: True})
            except ScheduleAlreadyRunningError:
                # Created by someone else since we looked: judge it as it now is.
                return await _sync_one(client, sid, schedule, dry_run=dry_run)
            except RPCError as err:
                raise ScheduleSyncError(f"{sid}: Temporal refused it: {err.message}") from err
        return SyncEntry(Action.CREATED, sid, summary)

    memo = await described.memo()
    if memo.get(MANAGED_MEMO) is not True:
        if _is_legacy_sweep(sid, described, memo):
            if not dry_run:
                await _recreate(client, sid, schedule, described.schedule.state)
            return SyncEntry(Action.UPDATED, sid, f"{summary} (re-created with Tenure's marker)")
        return SyncEntry(
            Action.CONFLICT,
            sid,
            "a schedule Tenure did not create holds this id: not changed; delete or rename it "
            "for Tenure to create its own",
        )

    want = _desired_mark(schedule)
    have = await _stored_mark(client, described) or {}
    if have.get("hash") == want["hash"]:
        return SyncEntry(Action.UNCHANGED, sid, summary)
    if not dry_run:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            state = merged_state(
                current.description.schedule.state,
                stored_runs=have.get("runs"),
                runs=want["runs"],
            )
            return ScheduleUpdate(schedule=dataclasses.replace(schedule, state=state))

        try:
            await client.get_schedule_handle(sid).update(update)
        except RPCError as err:
            raise ScheduleSyncError(f"{sid}: Temporal refused the update: {err.message}") from err
    return SyncEntry(Action.UPDATED, sid, summary)


def _is_legacy_sweep(sid: str, described: ScheduleDescription, memo: Mapping[str, Any]) -> bool:
    """The orphan sweep as releases before the marker registered it: Tenure's own, adopted once."""
    action = described.schedule.action
    return (
        sid == OrphanSweepContract.SCHEDULE_ID
        and not memo
        and isinstance(action, ScheduleActionStartWorkflow)
        and action.workflow == OrphanSweepContract.WORKFLOW
        and action.id == OrphanSweepContract.ID_PREFIX.rstrip("-")
    )


async def _recreate(client: Client, sid: str, schedule: Schedule, state: ScheduleState) -> None:
    # The marker can only be written at creation; the operator's pause and note are carried over.
    await _delete(client, sid)
    kept = dataclasses.replace(schedule.state, note=state.note, paused=state.paused)
    await client.create_schedule(
        sid, dataclasses.replace(schedule, state=kept), memo={MANAGED_MEMO: True}
    )


async def _describe(client: Client, sid: str) -> ScheduleDescription | None:
    try:
        return await client.get_schedule_handle(sid).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def _delete(client: Client, sid: str) -> None:
    try:
        await client.get_schedule_handle(sid).delete()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


def _looks_like_ours(sid: str) -> bool:
    return sid in (
        OrphanSweepContract.SCHEDULE_ID,
        PimAlertContract.SCHEDULE_ID,
        SodContract.SCAN_SCHEDULE_ID,
    ) or sid.startswith(ReviewContract.SCHEDULE_PREFIX)


def _summary_of(schedule: Schedule) -> str:
    action = schedule.action
    summary = action.static_summary if isinstance(action, ScheduleActionStartWorkflow) else None
    return summary if isinstance(summary, str) else ""


# ---- reading it back (`tenure schedules list`) --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ListedSchedule:
    schedule_id: str
    managed: bool
    paused: bool
    note: str
    next_run: datetime | None
    workflow: str
    summary: str


async def list_namespace_schedules(client: Client) -> list[ListedSchedule]:
    """Every schedule in the namespace, Tenure's and others', sorted by id."""
    ids = sorted([entry.id async for entry in await client.list_schedules()])
    found: list[ListedSchedule] = []
    for sid in ids:
        described = await _describe(client, sid)
        if described is None:  # deleted since it was listed
            continue
        found.append(await _listed(client, sid, described))
    return found


async def _listed(client: Client, sid: str, described: ScheduleDescription) -> ListedSchedule:
    memo = await described.memo()
    action = described.schedule.action
    workflow, summary = "", ""
    if isinstance(action, ScheduleActionStartWorkflow):
        workflow = action.workflow
        if action.static_summary is not None and not isinstance(action.static_summary, str):
            (decoded,) = await client.data_converter.decode([action.static_summary])
            summary = str(decoded)
        elif isinstance(action.static_summary, str):
            summary = action.static_summary
    state = described.schedule.state
    upcoming = described.info.next_action_times
    return ListedSchedule(
        schedule_id=sid,
        managed=memo.get(MANAGED_MEMO) is True,
        paused=state.paused,
        note=state.note or "",
        next_run=upcoming[0] if upcoming else None,
        workflow=workflow,
        summary=summary,
    )
