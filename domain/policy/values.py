"""Value types and parsers shared by the policy file's sections (birthright, access, schedules)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]

# An employee id as the policy file names people (approvers, owners, administrators).
EmployeeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]

# Worker fields a condition may test; custom HR attributes are `attributes.<name>`.
CONDITION_FIELDS = ("department", "job_title", "location", "employment_type", "manager_id")

_INTERVAL_PART = re.compile(r"(\d+)([smhd])")
_INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval_seconds(text: str) -> int:
    """`90s`, `15m`, `24h`, `1d12h`: a whole number of each unit, largest first, summed."""
    compact = text.replace(" ", "").lower()
    parts = _INTERVAL_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"interval {text!r}: expected e.g. 30m, 24h or 1d12h (units s, m, h, d)")
    return sum(int(n) * _INTERVAL_UNITS[u] for n, u in parts)


def duration_from_text(value: object) -> object:
    """A number of days, `14d`/`36h`/`1d12h`, or (left to pydantic) ISO-8601 such as `P14D`."""
    if isinstance(value, bool):
        raise ValueError("expected a number of days or a duration such as 14d or P14D")
    if isinstance(value, int | float):
        return timedelta(days=value)
    if isinstance(value, str) and _INTERVAL_PART.match(value.replace(" ", "").lower()):
        return timedelta(seconds=interval_seconds(value))
    return value


# A deadline, a reminder lead or an expiry can never be longer than this (10 years, as Entra's 3,660
# days); nothing shorter than a minute makes sense for people to act on.
MAX_DURATION = timedelta(days=3660)
MIN_DURATION = timedelta(minutes=1)

# A number of days, `14d`/`36h`/`1d12h`, or ISO-8601 (`P14D`, `PT4H`).
Duration = Annotated[
    timedelta, BeforeValidator(duration_from_text), Field(ge=MIN_DURATION, le=MAX_DURATION)
]


def describe_duration(value: timedelta) -> str:
    """`3d`, `36h`, `90m` or `45s`: the largest whole unit."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def as_text_conditions(when: object) -> object:
    """YAML reads `grade: 7` or `remote: yes` as numbers/booleans; HR attributes are text."""

    def text(v: object) -> object:
        if isinstance(v, bool):
            return "yes" if v else "no"
        return str(v) if isinstance(v, int | float) else v

    if isinstance(when, dict):
        return {
            k: [text(x) for x in v] if isinstance(v, list) else text(v) for k, v in when.items()
        }
    return when


def check_condition_fields(when: dict[str, str | list[str]]) -> None:
    for key, value in when.items():
        if key not in CONDITION_FIELDS and not re.fullmatch(r"attributes\.[A-Za-z0-9_-]+", key):
            allowed = ", ".join(CONDITION_FIELDS)
            raise ValueError(
                f"unknown condition field {key!r} (allowed: {allowed}, attributes.<name>)"
            )
        if isinstance(value, list) and not value:
            raise ValueError(f"condition {key!r} has an empty list of values")
