"""HR events: the contract HR sources post to `/v1/hr/events` (docs/architecture.md#hr-events).

Values are checked as they enter under the `INBOUND` context (`domain.inbound`); decoded from
Temporal's histories, the same models accept what an earlier release recorded.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from domain.inbound import (
    InboundTimestamp,
    inbound_code,
    inbound_identifier,
    inbound_name,
    inbound_text,
    is_inbound,
)

MAX_EVENTS_PER_BATCH = 1000
MAX_EVENT_ID_LENGTH = 128
MAX_NAME_LENGTH = 64
MAX_TEXT_LENGTH = 128
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_VALUE_LENGTH = 256

EMPLOYEE_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# Never stripped: "E1234\n" is refused, not quietly read as E1234.
EmployeeId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=EMPLOYEE_ID_PATTERN),
    inbound_code(EMPLOYEE_ID_PATTERN, "1 to 64 letters A-Z, digits, '.', '_' or '-'"),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    inbound_name(MAX_NAME_LENGTH),
]
OptionalText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_TEXT_LENGTH),
    inbound_text(MAX_TEXT_LENGTH),
]
EventId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_EVENT_ID_LENGTH),
    inbound_identifier(MAX_EVENT_ID_LENGTH),
]
AttributeName = Annotated[str, StringConstraints(min_length=1), inbound_name(MAX_NAME_LENGTH)]
AttributeValue = Annotated[str, inbound_text(MAX_ATTRIBUTE_VALUE_LENGTH)]


def _aware(value: datetime) -> datetime:
    # Naive timestamps are ambiguous across HR systems in different zones: refuse them.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a timezone, e.g. 2026-12-01T09:00:00Z")
    return value


AwareDatetime = Annotated[InboundTimestamp, AfterValidator(_aware)]


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
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict,
        description=f"Custom HR attributes (at most {MAX_ATTRIBUTES}; values up to "
        f"{MAX_ATTRIBUTE_VALUE_LENGTH} characters), for policy conditions.",
    )

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name) if p)


def _hire_needs_names(schema: dict[str, Any]) -> None:
    # The model validator below, said in the schema too, so clients and fuzzers know it.
    names = {"given_name": {"type": "string"}, "family_name": {"type": "string"}}
    schema["allOf"] = [
        {
            "if": {"properties": {"type": {"const": EventType.HIRE.value}}, "required": ["type"]},
            "then": {
                "properties": {
                    "worker": {"required": list(names), "properties": names},
                }
            },
        }
    ]


class HrEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_hire_needs_names)

    event_id: EventId = Field(
        description="The idempotency key, unique per event: a repeat with the same content is "
        "applied once; a reuse with different content is refused. Sent exactly as it should be "
        "kept (no surrounding whitespace, no control characters)."
    )
    type: EventType
    effective_at: AwareDatetime = Field(
        description="ISO-8601 date and time with a timezone (not a number); past or future."
    )
    occurred_at: AwareDatetime | None = None
    worker: WorkerRecord

    @model_validator(mode="after")
    def _complete_for_type(self, info: ValidationInfo) -> HrEvent:
        # A hire must say who is hired; a terminate needs only the employee id.
        if self.type is EventType.HIRE:
            missing = [f for f in ("given_name", "family_name") if not getattr(self.worker, f)]
            if missing:
                raise ValueError(f"a hire needs worker.{' and worker.'.join(missing)}")
        if self.worker.manager_id and self.worker.manager_id == self.worker.employee_id:
            raise ValueError("worker.manager_id cannot be the worker's own employee_id")
        if is_inbound(info) and len(self.worker.attributes) > MAX_ATTRIBUTES:
            raise ValueError(f"worker.attributes holds more than {MAX_ATTRIBUTES} entries")
        return self


def event_digest(event: HrEvent) -> str:
    """A fingerprint of what the event says, to tell a repeat from a reuse of its event_id.

    Spellings that mean the same give the same digest: attribute order, and a time written in
    another zone for the same instant.
    """
    content = event.model_dump(mode="json")
    for field in ("effective_at", "occurred_at"):
        value = getattr(event, field)
        content[field] = value.astimezone(UTC).isoformat() if value is not None else None
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def identity_workflow_id(employee_id: str) -> str:
    return f"identity-{employee_id}"
