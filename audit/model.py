"""What the access record's callers hand in and get back besides the domain's own models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class AccessRecordError(RuntimeError):
    """The access record cannot be used as configured; the message says what to fix."""


@dataclass(frozen=True)
class ReceivedHrEvent:
    """An HR event the intake took: its id bound to its content's digest (`event_digest`)."""

    event_id: str
    employee_id: str
    digest: str
    received_at: datetime


@dataclass(frozen=True)
class HrEventConflict:
    """An event whose id was first taken with other content."""

    event: ReceivedHrEvent
    first: ReceivedHrEvent
