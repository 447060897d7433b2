"""A review's recurrence: its validation at load, and its translation into a Temporal Schedule.

The fire dates of named frequencies are checked here by matching the calendar specs day by day the
way Temporal does (every field must match; no year means every year); tests/test_schedules_sync.py
checks the same specs against a dev server's own `next_action_times`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from temporalio.client import (
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)

from connection.schedules_sync import (
    FINGERPRINT_MEMO,
    desired_schedules,
    fingerprint,
    merged_state,
    recurrence_spec,
    review_schedule,
)
from domain.detective.sweep import OrphanSweepContract
from domain.policy.file import DEFAULT_POLICY_PATH
from domain.policy.model import Policy
from domain.reviews.campaign import CampaignInput, ReviewContract
from domain.reviews.recurrence import Recurrence

REVIEWS = """
q1:
  name: Finance quarterly access
  scope: [{groups: [Finance]}]
  stages: [{reviewers: [manager], duration: 14d}]
  recurrence: {every: quarterly, start: 2047-01-31, runs: 4}
by-hand:
  name: Ad hoc sales review
  scope: [{groups: [Sales]}]
  stages: [{reviewers: [manager]}]
"""


def policy_with_reviews(
    reviews: dict[str, Any] | str = REVIEWS, *, sweep: bool = True, detective: bool = False
) -> Policy:
    """The demo policy with these reviews (YAML text or dicts), as a policy file would hold them;
    without the PIM alert and SoD scan schedules unless `detective`."""
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["reviews"] = yaml.safe_load(reviews) if isinstance(reviews, str) else reviews
    if not sweep:
        raw.pop("orphan_sweep", None)
    if not detective:
        raw.pop("pim", None)
        raw["access"]["sod_scan"] = {"enabled": False}
    return Policy.model_validate(raw)


def review(recurrence: dict[str, Any] | None, name: str = "Finance access") -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "scope": [{"groups": ["Finance"]}],
        "stages": [{"reviewers": ["manager"]}],
    }
    if recurrence is not None:
        body["recurrence"] = recurrence
    return body


def recurrence(**fields: Any) -> Recurrence:
    return Recurrence.model_validate(fields)


def _in(ranges: Any, value: int) -> bool:
    return any(
        r.start <= value <= max(r.end, r.start) and (value - r.start) % max(r.step, 1) == 0
        for r in ranges
    )


def fire_dates(spec: ScheduleSpec, count: int) -> list[date]:
    """The first `count` days from `start_at` on which a calendar matches, by brute force."""
    assert spec.start_at is not None
    found: list[date] = []
    day = spec.start_at.date()
    while len(found) < count:
        for c in spec.calendars:
            # Every named frequency fires at 00:00:00 UTC only.
            assert (c.hour, c.minute, c.second) == ((ScheduleRange(0),),) * 3
            if (
                _in(c.day_of_month, day.day)
                and _in(c.month, day.month)
                and (not c.year or _in(c.year, day.year))
                and _in(c.day_of_week, (day.weekday() + 1) % 7)  # Temporal: Sunday = 0
            ):
                found.append(day)
                break
        day += timedelta(days=1)
    return found


def dates(*texts: str) -> list[date]:
    return [date.fromisoformat(t) for t in texts]


# ---- the model ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 0 32 * *", "start": "2027-01-01"}, "not a valid cron expression"),
        ({"cron": "0 0 * *", "start": "2027-01-01"}, "expected five fields"),
        ({"every": "monthly", "cron": "0 0 1 * *", "start": "2027-01-01"}, "either every"),
        ({"start": "2027-01-01"}, "either every"),
        ({"every": "weekly", "start": "2027-01-01", "end": "2026-12-31"}, "before start"),
        ({"every": "weekly", "start": "2027-01-01", "end": "2027-06-01", "runs": 3}, "not both"),
        ({"every": "weekly", "start": "2027-01-01", "runs": 0}, "greater than or equal to 1"),
        ({"every": "fortnightly", "start": "2027-01-01"}, "weekly"),
        ({"every": "weekly", "start": "2027-01-01", "overlap": "buffer_one"}, "skip"),
    ],
)
def test_a_bad_recurrence_is_refused_with_the_reason(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Recurrence.model_validate(fields)


def test_a_bad_recurrence_in_the_policy_names_the_review() -> None:
    bad = {"q1": review({"every": "monthly", "cron": "0 0 1 * *", "start": "2027-01-01"})}
    with pytest.raises(ValidationError, match=r"reviews\.q1\.recurrence"):
        policy_with_reviews(bad)


def test_cron_is_normalised_and_the_recurrence_describes_itself() -> None:
    r = recurrence(cron=" 0  6 1 */3 * ", start="2027-01-01", runs=4)
    assert r.cron == "0 6 1 */3 *"
    assert r.describe() == "cron 0 6 1 */3 * from 2027-01-01, 4 run(s)"
    r = recurrence(every="semi_annual", start="2027-01-01", end="2029-12-31")
    assert r.describe() == "semi-annual from 2027-01-01 until 2029-12-31"
    assert r.catchup_window == timedelta(days=1) and r.overlap == "skip"


# ---- named frequencies --------------------------------------------------------------------------


def test_weekly_runs_on_the_start_dates_weekday() -> None:
    spec = recurrence_spec(recurrence(every="weekly", start="2027-03-03"))  # a Wednesday
    assert [c.day_of_week for c in spec.calendars] == [(ScheduleRange(3),)]
    assert fire_dates(spec, 3) == dates("2027-03-03", "2027-03-10", "2027-03-17")
    sunday = recurrence_spec(recurrence(every="weekly", start="2027-03-07"))
    assert [c.day_of_week for c in sunday.calendars] == [(ScheduleRange(0),)]


def test_months_follow_from_the_start_month() -> None:
    spec = recurrence_spec(recurrence(every="quarterly", start="2027-02-15"))
    (calendar,) = spec.calendars
    assert calendar.day_of_month == (ScheduleRange(15),)
    assert calendar.month == tuple(ScheduleRange(m) for m in (2, 5, 8, 11))
    assert calendar.year == () and calendar.day_of_week == (ScheduleRange(0, 6),)
    assert fire_dates(spec, 5) == dates(
        "2027-02-15", "2027-05-15", "2027-08-15", "2027-11-15", "2028-02-15"
    )
    (monthly,) = recurrence_spec(recurrence(every="monthly", start="2027-02-15")).calendars
    assert monthly.month == (ScheduleRange(1, 12),)
    (annual,) = recurrence_spec(recurrence(every="annual", start="2027-10-01")).calendars
    assert annual.month == (ScheduleRange(10),) and annual.day_of_month == (ScheduleRange(1),)
    (twice,) = recurrence_spec(recurrence(every="semi_annual", start="2027-10-01")).calendars
    assert twice.month == (ScheduleRange(4), ScheduleRange(10))


@pytest.mark.parametrize(
    ("every", "start", "expected"),
    [
        # A day after the 28th runs on the month's last day when the month is shorter.
        (
            "monthly",
            "2027-01-31",
            "2027-01-31 2027-02-28 2027-03-31 2027-04-30 2027-05-31 2027-06-30 2027-07-31 "
            "2027-08-31 2027-09-30 2027-10-31 2027-11-30 2027-12-31 2028-01-31 2028-02-29",
        ),
        ("monthly", "2027-12-30", "2027-12-30 2028-01-30 2028-02-29 2028-03-30 2028-04-30"),
        ("monthly", "2028-01-29", "2028-01-29 2028-02-29 2028-03-29"),
        ("monthly", "2029-01-29", "2029-01-29 2029-02-28 2029-03-29"),
        (
            "quarterly",
            "2027-11-30",
            "2027-11-30 2028-02-29 2028-05-30 2028-08-30 2028-11-30 2029-02-28",
        ),
        ("semi_annual", "2027-08-31", "2027-08-31 2028-02-29 2028-08-31 2029-02-28"),
        ("annual", "2028-02-29", "2028-02-29 2029-02-28 2030-02-28 2031-02-28 2032-02-29"),
        # 2100 is a common year (divisible by 100, not by 400).
        ("annual", "2096-02-29", "2096-02-29 2097-02-28 2098-02-28 2099-02-28 2100-02-28"),
    ],
)
def test_a_day_after_the_28th_runs_on_the_last_day_of_shorter_months(
    every: str, start: str, expected: str
) -> None:
    spec = recurrence_spec(recurrence(every=every, start=start))
    want = dates(*expected.split())
    assert fire_dates(spec, len(want)) == want


def test_the_last_day_rule_keeps_one_calendar_per_month_length() -> None:
    spec = recurrence_spec(recurrence(every="monthly", start="2027-01-31"))
    by_day = {
        (c.day_of_month[0].start, c.year != ()): [r.start for r in c.month] for c in spec.calendars
    }
    assert by_day == {
        (31, False): [1, 3, 5, 7, 8, 10, 12],
        (30, False): [4, 6, 9, 11],
        (29, False): [2],  # matches only where Feb 29 exists: leap years
        (28, True): [2],  # common years only
    }
    common = next(c for c in spec.calendars if c.year)
    years = {y for r in common.year for y in range(r.start, max(r.end, r.start) + 1, r.step)}
    assert years == {y for y in range(2000, 2101) if y % 4 or y == 2100}
    # A short month's first days never need the rule: one calendar.
    assert len(recurrence_spec(recurrence(every="monthly", start="2027-01-28")).calendars) == 1


def test_start_end_and_runs() -> None:
    spec = recurrence_spec(recurrence(every="weekly", start="2027-03-03", end="2027-06-30"))
    assert spec.start_at == datetime(2027, 3, 3, tzinfo=UTC)
    assert spec.end_at == datetime(2027, 6, 30, 23, 59, 59, tzinfo=UTC)  # the end date still runs
    assert spec.time_zone_name is None  # UTC
    assert recurrence_spec(recurrence(every="weekly", start="2027-03-03")).end_at is None


def test_cron_goes_to_temporal_as_written() -> None:
    spec = recurrence_spec(recurrence(cron="0 6 1 */3 *", start="2027-01-01", end="2028-01-01"))
    assert spec.cron_expressions == ["0 6 1 */3 *"] and not spec.calendars
    assert spec.start_at == datetime(2027, 1, 1, tzinfo=UTC)
    recurrence_spec(recurrence(cron="0 0 1 JUL,AUG THU", start="2027-01-01"))  # names are fine


@pytest.mark.parametrize("cron", ["0 0 * * 1#2", "0 0 L * *", "0 0 ? * MON", "0 0 15W * *"])
def test_cron_that_temporal_would_misread_or_refuse_is_refused_at_load(cron: str) -> None:
    with pytest.raises(ValidationError, match="not supported by Temporal Schedules"):
        policy_with_reviews({"odd": review({"cron": cron, "start": "2027-01-01"})})


# ---- the whole schedule -------------------------------------------------------------------------


def test_the_policy_implies_the_sweep_and_each_recurring_review() -> None:
    policy = policy_with_reviews()
    found = desired_schedules(policy, "tenure-identity")
    assert list(found) == [OrphanSweepContract.SCHEDULE_ID, "tenure-review-q1"]  # not by-hand
    assert list(desired_schedules(policy_with_reviews({}, sweep=False), "q")) == []

    sweep = found[OrphanSweepContract.SCHEDULE_ID].action
    assert isinstance(sweep, ScheduleActionStartWorkflow)
    assert sweep.task_queue == "tenure-identity" and sweep.workflow == OrphanSweepContract.WORKFLOW

    schedule = found["tenure-review-q1"]
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == ReviewContract.CAMPAIGN_WORKFLOW == "ReviewCampaignWorkflow"
    assert action.id == "review-q1"  # Temporal appends the scheduled time
    assert action.task_queue == ReviewContract.TASK_QUEUE == "tenure-reviews"
    (arg,) = action.args
    sent = CampaignInput.model_validate(arg)
    assert sent.review_id == "q1" and sent.definition == policy.reviews["q1"]
    assert action.static_summary == (
        "Access review Finance quarterly access: quarterly from 2047-01-31, 4 run(s)"
    )
    assert schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
    assert schedule.policy.catchup_window == timedelta(days=1)
    assert schedule.state == ScheduleState(limited_actions=True, remaining_actions=4)
    assert schedule.spec.start_at == datetime(2047, 1, 31, tzinfo=UTC)
    assert action.memo == {FINGERPRINT_MEMO: {"hash": fingerprint(schedule), "runs": 4}}
    # A worker polling campaigns elsewhere (TENURE_REVIEW_TASK_QUEUE) gets them there.
    moved = desired_schedules(policy, "tenure-identity", review_task_queue="reviews-eu")
    assert moved["tenure-review-q1"].action.task_queue == "reviews-eu"  # type: ignore[union-attr]


def test_the_fingerprint_follows_what_the_schedule_does() -> None:
    base = policy_with_reviews()

    def mark(policy: Policy) -> str:
        action = desired_schedules(policy, "tenure-identity")["tenure-review-q1"].action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.memo is not None
        return action.memo[FINGERPRINT_MEMO]["hash"]

    assert mark(base) == mark(policy_with_reviews())
    moved = yaml.safe_load(REVIEWS)
    moved["q1"]["recurrence"]["start"] = "2047-02-01"
    assert mark(policy_with_reviews(moved)) != mark(base)
    longer = yaml.safe_load(REVIEWS)
    longer["q1"]["stages"][0]["duration"] = "21d"  # the campaign's input changes
    assert mark(policy_with_reviews(longer)) != mark(base)
    # Unaffected by the other review and by the sweep.
    alone = {"q1": yaml.safe_load(REVIEWS)["q1"]}
    assert mark(policy_with_reviews(alone, sweep=False)) == mark(base)


def test_a_review_without_recurrence_has_no_schedule() -> None:
    policy = policy_with_reviews()
    with pytest.raises(ValueError, match="by hand"):
        review_schedule("by-hand", policy.reviews["by-hand"])


def test_an_update_keeps_the_operators_state_and_counts_runs_made() -> None:
    paused = ScheduleState(note="held", paused=True, limited_actions=True, remaining_actions=2)
    # Same runs: the state is the operator's, whatever it says.
    assert merged_state(paused, stored_runs=4, runs=4) is paused
    # 4 -> 6 after 2 of 4 were made: 4 to go; the pause and note stay.
    assert merged_state(paused, stored_runs=4, runs=6) == ScheduleState(
        note="held", paused=True, limited_actions=True, remaining_actions=4
    )
    assert merged_state(paused, stored_runs=4, runs=1).remaining_actions == 0  # more made already
    # No limit any more; a limit where there was none starts counting now.
    unlimited = merged_state(paused, stored_runs=4, runs=None)
    assert (unlimited.limited_actions, unlimited.remaining_actions, unlimited.paused) == (
        False,
        0,
        True,
    )
    assert merged_state(ScheduleState(), stored_runs=None, runs=3) == ScheduleState(
        limited_actions=True, remaining_actions=3
    )
