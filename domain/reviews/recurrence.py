"""When a review recurs: a named frequency or a cron expression, from a start date to an end (never,
a date, or after N runs), with a catch-up window. Overlap is always `skip`: a campaign still open
is never doubled by the next one.

Validated at load; `tenure schedules sync` turns it into a Temporal Schedule
(connection/schedules_sync.py).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from enum import StrEnum
from typing import Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.policy.values import Duration


class Frequency(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMI_ANNUAL = "semi_annual"
    ANNUAL = "annual"


# Months between runs for the month-based frequencies.
MONTHS_BETWEEN = {
    Frequency.MONTHLY: 1,
    Frequency.QUARTERLY: 3,
    Frequency.SEMI_ANNUAL: 6,
    Frequency.ANNUAL: 12,
}


# Cron characters croniter takes but Temporal Schedules refuse or read otherwise.
_NOT_IN_TEMPORAL = frozenset("LW?#H")
_NAMES = re.compile(r"JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|MON|TUE|WED|THU|FRI|SAT|SUN")


class Recurrence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Frequency | None = None
    cron: str | None = None
    # The first run is on or after this date (UTC midnight); named frequencies run on its weekday
    # (weekly) or its day of the month (the others; a 31st runs on the month's last day).
    start: date
    end: date | None = None  # no run after this date
    runs: int | None = Field(None, ge=1, le=10_000)  # stop after this many runs
    # A run missed while Temporal was unreachable still starts if it is at most this late.
    catchup_window: Duration = timedelta(days=1)
    overlap: Literal["skip"] = "skip"

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, value: str | None) -> str | None:
        """Five fields, valid cron, and nothing Temporal reads differently: it refuses `L`, `W`,
        `?` and `H`, and takes `1#2` as every Monday. A day of the month with a weekday means
        both (`0 0 1-7 * 1` is the first Monday), as Temporal runs it, not either."""
        if value is None:
            return None
        text = " ".join(value.split())
        if len(text.split()) != 5:
            raise ValueError(
                f"cron {value!r}: expected five fields (minute hour day month weekday), "
                'e.g. "0 6 1 */3 *"'
            )
        # Month and weekday names hold these letters too (JUL, THU): look past them.
        bare = _NAMES.sub("", text.upper())
        unsupported = sorted({c for c in bare if c in _NOT_IN_TEMPORAL})
        if unsupported:
            raise ValueError(
                f"cron {value!r}: {' '.join(unsupported)} not supported by Temporal Schedules "
                "(use numbers, ranges, lists and steps)"
            )
        if not croniter.is_valid(text):
            raise ValueError(f"cron {value!r}: not a valid cron expression")
        return text

    @field_validator("start", "end")
    @classmethod
    def _within_temporal_calendar(cls, value: date | None) -> date | None:
        # Temporal plans calendar runs for the years 2000-2100 only.
        if value is not None and not 2000 <= value.year <= 2099:
            raise ValueError(f"{value}: must be between 2000 and 2099")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Recurrence:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give either every (weekly, monthly, ...) or cron, not both")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.end is not None and self.runs is not None:
            raise ValueError("give either end (a date) or runs (a count), not both")
        return self

    def describe(self) -> str:
        timing = self.every.value.replace("_", "-") if self.every else f"cron {self.cron}"
        until = f" until {self.end}" if self.end else (f", {self.runs} run(s)" if self.runs else "")
        return f"{timing} from {self.start}{until}"
