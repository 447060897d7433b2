"""A security incident about one person, as a SIEM or SOAR tool posts it, and what Tenure did.

`POST /v1/security/incidents` takes an `IncidentReport`; the incident id is the idempotency key
(the workflow id is `incident-{incident_id}`), so a replayed report changes nothing. The
incident's run suspends the identity through its entity and writes an `IncidentView` to the
record at every step.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

IncidentId = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
]


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IncidentReport(BaseModel):
    """What the SIEM sends. `user` is an employee id, a UPN or a Graph object id."""

    model_config = ConfigDict(extra="forbid")

    incident_id: IncidentId
    user: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    severity: Severity
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class IncidentStatus(StrEnum):
    RECEIVED = "received"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"  # the person is suspended until an administrator restores them
    RESTORED = "restored"
    FAILED = "failed"  # a step failed beyond retries: an operator's turn
    REJECTED = "rejected"  # it names nobody Tenure manages: nothing was done


class IncidentStep(BaseModel):
    """One thing the response did (or found already done), in order."""

    seq: int
    at: datetime
    kind: str  # disabled_sign_in | revoked_sessions | ended_activation | suspended_grant | ...
    text: str
    actor: str = "system"
    data: dict[str, Any] = Field(default_factory=dict)


class IncidentView(BaseModel):
    """The incident as the record, the API and operators see it."""

    incident_id: str
    employee_id: str
    user: str  # as the SIEM named them
    severity: Severity
    title: str
    source: str
    status: IncidentStatus
    received_at: datetime
    suspended_at: datetime | None = None
    restored_at: datetime | None = None
    restored_by: str | None = None
    steps: list[IncidentStep] = Field(default_factory=list)
    updated_at: datetime


class IncidentContract:
    WORKFLOW = "IncidentWorkflow"
    # Incidents poll their own queue with their own slots: a burst of hires never queues ahead
    # of an emergency revoke.
    TASK_QUEUE = "tenure-security"
    ID_PREFIX = "incident-"
    # A run's workflow task that a worker took and then lost is handed out again only after this
    # timeout (Temporal's default is 10 s). An incident's tasks are small, so 3 s keeps one lost
    # task within the 5 s cut-off target without timing out tasks that are merely slow.
    TASK_TIMEOUT = timedelta(seconds=3)
    # The API's call: waits until the person is resolved, then answers (once per POST).
    UPDATE_ACKNOWLEDGE = "acknowledge"
    UPDATE_RESTORE = "restore"
    QUERY_DETAILS = "details"


def incident_workflow_id(incident_id: str) -> str:
    return f"{IncidentContract.ID_PREFIX}{incident_id}"


class IncidentInput(BaseModel):
    report: IncidentReport
    received_at: datetime
    record_search_attributes: bool = True


class IncidentAck(BaseModel):
    """What the SIEM is told: whom the incident names, where it stands, and whether this POST
    repeated one already received (then it changed nothing)."""

    incident_id: str
    employee_id: str | None
    status: IncidentStatus
    replay: bool
    message: str


class RestoreAsk(BaseModel):
    actor_id: str
    is_admin: bool = False
    reason: str = Field("", max_length=2000)


class IncidentActivityNames:
    RESOLVE_PERSON = "security.resolve_person"
    RECORD_INCIDENT = "record.incident"
    SUSPEND_IDENTITY = "security.suspend_identity"
    RESTORE_IDENTITY = "security.restore_identity"
    SECURITY_SETTINGS = "policy.security_settings"
    CUT_OFF = "security.cut_off"


class ResolvePersonInput(BaseModel):
    user: str  # employee id, UPN or Graph object id


class ResolvedPerson(BaseModel):
    employee_id: str | None  # None: nobody Tenure manages
    how: str  # "employee id", "UPN", "object id"; or why nobody was found


class RecordIncidentInput(BaseModel):
    view: IncidentView


class SecurityContacts(BaseModel):
    contacts: list[str] = Field(default_factory=list)
    administrators: list[str] = Field(default_factory=list)
    mail_sender: str = ""


class SuspendPersonInput(BaseModel):
    employee_id: str
    incident_id: str
    at: datetime


class RestorePersonInput(BaseModel):
    employee_id: str
    incident_id: str
    by: str


class CutOffInput(BaseModel):
    employee_id: str
    incident_id: str


class CutOffResult(BaseModel):
    """What the emergency cut-off did in Graph, read from Graph and the record alone (never the
    person's identity workflow, whose queue may be busy with hires)."""

    graph_user_id: str | None  # None: no account in Graph
    roles_removed: list[str] = Field(default_factory=list)  # activations whose role was removed
