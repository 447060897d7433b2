"""PIM alerts: what the detective scan finds wrong with privileged access, and their record.

An alert is one cause about one role (and, where it has one, one person): a role held outside
Tenure, a permanent active assignment, too many holders, activations too frequent, an eligible
person who never activates. Each scan reports every cause it sees; the record raises an alert
the first time, keeps it open while the cause persists (without raising it again), and resolves
it when a scan no longer sees it. A cause that comes back after being resolved is raised again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class AlertKind(StrEnum):
    OUTSIDE_TENURE = "outside_tenure"  # a directory-role assignment Tenure did not make
    PERMANENT_ACTIVE = "permanent_active"  # an active assignment without an end
    TOO_MANY_HOLDERS = "too_many_holders"  # more holders of a role than its threshold
    FREQUENT_ACTIVATION = "frequent_activation"  # more activations in the window than allowed
    NEVER_ACTIVATED = "never_activated"  # eligible for N days and never activated


class AlertFinding(BaseModel):
    """One cause a scan sees now."""

    kind: AlertKind
    role_id: str  # the policy's role id, or the template id for a role the policy does not name
    subject: str = ""  # employee id or Graph principal id; "" for a role-wide cause
    text: str
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def alert_id(self) -> str:
        """Stable per cause, so the same cause seen by two scans is one alert."""
        return f"{self.kind.value}:{self.role_id}:{self.subject}"


class PimAlert(BaseModel):
    """An alert as the record keeps it."""

    alert_id: str
    kind: AlertKind
    role_id: str
    subject: str
    text: str
    detail: dict[str, Any] = Field(default_factory=dict)
    first_raised_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None  # None: the cause persists
    times_raised: int = 1  # raised again after being resolved adds one


class AlertScanResult(BaseModel):
    """What one scan did to the record: alerts raised now (new, or back after being resolved),
    still open, and resolved because the scan no longer sees their cause."""

    raised: list[PimAlert] = Field(default_factory=list)
    persisting: list[str] = Field(default_factory=list)  # alert ids
    resolved: list[str] = Field(default_factory=list)  # alert ids
