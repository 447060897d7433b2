"""HR events: the contract HR sources post to `/v1/hr/events` (DESIGN.md, "HR events")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_EVENTS_PER_BATCH = 1000

EmployeeId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)]


def _aware(value: datetime) -> datetime:
    # Naive timestamps are ambiguous across HR systems in different zones: refuse them.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a timezone, e.g. 2026-12-01T09:00:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class EventType(StrEnum):
    HIRE = "hire"
    UPDATE = "update"
    TERMINATE = "terminate"


class EmploymentType(StrEnum):
    EMPLOYEE = "employee"
    CONTRACTOR = "contractor"


class WorkerRecord(BaseModel):
    """The worker's full current record as HR knows it."""

    model_config = ConfigDict(extra="forbid")

    employee_id: EmployeeId
    given_name: Name | None = None
    family_name: Name | None = None
    department: OptionalText | None = None
    job_title: OptionalText | None = None
    manager_id: EmployeeId | None = None
    location: OptionalText | None = None
    employment_type: EmploymentType = EmploymentType.EMPLOYEE
    attributes: dict[str, str] = Field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name) if p)


class HrEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    type: EventType
    effective_at: AwareDatetime
    occurred_at: AwareDatetime | None = None
    worker: WorkerRecord

    @model_validator(mode="after")
    def _complete_for_type(self) -> HrEvent:
        # A hire must say who is hired; a terminate needs only the employee id.
        if self.type is EventType.HIRE:
            missing = [f for f in ("given_name", "family_name") if not getattr(self.worker, f)]
            if missing:
                raise ValueError(f"a hire needs worker.{' and worker.'.join(missing)}")
        if self.worker.manager_id and self.worker.manager_id == self.worker.employee_id:
            raise ValueError("worker.manager_id cannot be the worker's own employee_id")
        return self


def identity_workflow_id(employee_id: str) -> str:
    return f"identity-{employee_id}"
