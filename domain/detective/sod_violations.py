"""Separation-of-duties violations found after the fact (a move, birthright, PIM, app roles), and
what each remediation did. Kept in the record, listed by `tenure sod violations`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ViolationStatus(StrEnum):
    OPEN = "open"  # found, remediation starting
    NOTIFIED = "notified"  # the owners were told (remediation `notify`)
    REMOVED = "removed"  # the newest grant was removed (remediation `remove_newest`)
    EXCEPTION_PENDING = "exception_pending"  # an exception waits for approval
    EXCEPTED = "excepted"  # an approved exception holds until `exception_until`
    RESOLVED = "resolved"  # no longer held (a check found both sides no longer held)


class SodViolation(BaseModel):
    violation_id: str  # f"{rule}:{employee_id}"
    rule: str
    employee_id: str
    # The two sides held, as resource keys, each with what grants it.
    sides: list[dict[str, Any]] = Field(default_factory=list)
    status: ViolationStatus
    remediation: str  # notify | remove_newest | exception
    detected_at: datetime
    updated_at: datetime
    exception_until: datetime | None = None
    workflow_id: str | None = None  # the remediation's run
    detail: dict[str, Any] = Field(default_factory=dict)
