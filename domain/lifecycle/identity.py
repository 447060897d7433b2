"""The identity entity's contract: its input, signal, queries and the state it carries across runs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.access.policy import SodRule
from domain.access.sod import SodConflict
from domain.holdings import GrantKind, Holding, ResourceKind, ResourceRef
from domain.lifecycle.events import HrEvent, WorkerRecord


class IdentityContract:
    """Names other programs (the API, the CLI) use to reach the identity workflow."""

    WORKFLOW = "IdentityWorkflow"
    SIGNAL_HR_EVENT = "hr_event"
    QUERY_DETAILS = "details"
    TASK_QUEUE = "tenure-identity"
    # Access requests check SoD and register themselves here, one at a time per person, so two
    # requests racing for incompatible packages cannot both pass.
    UPDATE_RESERVE_ACCESS = "reserve_access"
    SIGNAL_ACCESS_REQUEST_CHANGED = "access_request_changed"
    # A request whose grant ends asks which of its resources no other grant holds (the ledger).
    UPDATE_RELEASE_ACCESS = "release_access"
    # A security incident suspends the person, and an administrator restores them.
    UPDATE_SUSPEND = "suspend"
    UPDATE_RESTORE = "restore"


class LifecycleStage(StrEnum):
    NONE = "none"  # events seen, never hired
    PRE_HIRE = "pre_hire"
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"
    # Shown while an incident holds an active person (`IdentityState.suspension`); HR events
    # still apply underneath, and the stage kept in state stays what they make it.
    SUSPENDED = "suspended"


class EventOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    FAILED = "failed"
    # A terminate for someone not hired yet: kept, and applied once a hire has been applied
    # (HR feeds are not always in order). Logged again with its final outcome then.
    HELD = "held"
    # An event_id already received with other content: not applied (the intake refuses these
    # when it has its record; this catches the rest, e.g. two racing requests).
    CONFLICT = "conflict"


class AppliedEvent(BaseModel):
    """One line of the identity's event log: what happened to an event and why."""

    event_id: str
    type: str
    effective_at: datetime
    received_at: datetime
    outcome: EventOutcome
    reason: str = ""
    transition_workflow_id: str | None = None


class AccessItem(BaseModel):
    """Access the identity holds, with the rule that granted it."""

    kind: ResourceKind  # a Graph group or a SCIM app account (with `roles` in it)
    target: str  # group display name or app name
    rule: str
    roles: list[str] = Field(default_factory=list)


class PendingRemoval(BaseModel):
    """Access a move took away that stays for its rule's grace period, then goes (on `due_at`)."""

    kind: ResourceKind  # a Graph group or a SCIM app account
    target: str
    rule: str
    due_at: datetime
    event_id: str  # the update (move) that took it away


class ScheduledChange(BaseModel):
    at: datetime
    what: str


class HeldPackage(BaseModel):
    """An access package the person has pending or holds, through the request that asked for it."""

    request_id: str
    package_id: str
    # "pending" | "granted" | "releasing" (its end is being applied: it no longer holds anything)
    status: str
    # What holding it means to SoD: package:<id> and group:<name> for each group it grants.
    keys: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    apps: list[str] = Field(default_factory=list)
    # Everything it grants (groups, app accounts, app roles). Empty for packages registered by
    # earlier releases: the ledger then falls back to `groups` and `apps`.
    resources: list[ResourceRef] = Field(default_factory=list)
    until: datetime | None = None
    # When its end started being applied (status "releasing"): transitions wait for it a while.
    releasing_since: datetime | None = None
    # A package's request, or a PIM activation (`package_id` is then `pim:<role>`).
    grant_kind: GrantKind = GrantKind.PACKAGE


class ReserveAccessInput(BaseModel):
    request_id: str
    package_id: str
    keys: list[str]
    groups: list[str] = Field(default_factory=list)
    apps: list[str] = Field(default_factory=list)
    resources: list[ResourceRef] = Field(default_factory=list)
    # The SoD rules that name this package or one of its groups (the entity holds no policy).
    sod_rules: list[SodRule] = Field(default_factory=list)
    grant_kind: GrantKind = GrantKind.PACKAGE


class ReserveAccessResult(BaseModel):
    accepted: bool
    reason: str = ""
    conflict: SodConflict | None = None


class ReleaseAccessInput(BaseModel):
    """A request's grant ends (expiry, revoke, a leave): which of its resources may go."""

    request_id: str
    # What the request granted, in case the entity no longer knows the request.
    resources: list[ResourceRef]


class AccessRequestChanged(BaseModel):
    request_id: str
    status: str  # "granted" | "closed"
    until: datetime | None = None


class Suspension(BaseModel):
    """An incident holds the person: sign-in off, activations ended, grants not counted."""

    incident_id: str
    at: datetime
    # The packages and eligibilities it set aside, by request id, to give back on restore.
    grants: list[str] = Field(default_factory=list)


class SuspendIdentityInput(BaseModel):
    incident_id: str
    at: datetime


class SuspendIdentityResult(BaseModel):
    employee_id: str
    graph_user_id: str | None
    stage: LifecycleStage  # what HR events made it (active, disabled...)
    # True when this incident (or another) already held the person: nothing more to do.
    already: bool = False
    held_by: str | None = None  # the incident that holds them
    activations: list[str] = Field(default_factory=list)  # PIM activations to end
    # The privileged roles those activations hold now: the incident takes them out of Graph at
    # once, alongside sign-in, rather than wait for each activation's own end.
    roles: list[ResourceRef] = Field(default_factory=list)
    eligibilities: list[str] = Field(default_factory=list)  # PIM eligibility runs to suspend
    packages: list[str] = Field(default_factory=list)  # package grants set aside
    manager_id: str | None = None


class RestoreIdentityInput(BaseModel):
    incident_id: str
    by: str


class RestoreIdentityResult(BaseModel):
    employee_id: str
    graph_user_id: str | None
    stage: LifecycleStage
    packages: list[str] = Field(default_factory=list)  # grants given back
    eligibilities: list[str] = Field(default_factory=list)


class IdentityState(BaseModel):
    employee_id: str
    stage: LifecycleStage = LifecycleStage.NONE
    worker: WorkerRecord | None = None
    graph_user_id: str | None = None
    user_principal_name: str | None = None
    hire_date: datetime | None = None
    access: list[AccessItem] = Field(default_factory=list)
    # The leave that disabled the identity, and when its accounts are deleted (retention).
    leave_event_id: str | None = None
    leave_date: datetime | None = None
    # Effective time of the HR record applied last: an update dated before it is stale.
    record_as_of: datetime | None = None
    retention_due_at: datetime | None = None
    # Access a move took away that stays until its grace period is over (still listed in `access`).
    pending_removals: list[PendingRemoval] = Field(default_factory=list)
    # What is waiting and when (pending events, the start date, the deletion); kept for operators.
    scheduled: list[ScheduledChange] = Field(default_factory=list)
    running_transition: str | None = None
    # Access packages pending or held through access requests (not birthright).
    packages: list[HeldPackage] = Field(default_factory=list)
    # SCIM app accounts Tenure created for the person, whatever granted them: they outlive the
    # grant (a package's end takes its roles, not the account) until retention deletes them.
    app_accounts: list[str] = Field(default_factory=list)
    # Set while a security incident holds the person (until an administrator restores them).
    suspension: Suspension | None = None
    # Every resource held and every grant that holds it (the ledger), filled in by the query.
    holdings: list[Holding] = Field(default_factory=list)
    # The keys of `event_digests`, written for the release before this one (which reads only these
    # for repeats), so a rollback still recognises every id; read only when digests are missing.
    seen_event_ids: list[str] = Field(default_factory=list)
    # Content digest (`event_digest`) of each event received, by event_id: every id seen, and a
    # reused id with other content is a conflict, not a duplicate. "" for ids seen before digests.
    event_digests: dict[str, str] = Field(default_factory=dict)
    history: list[AppliedEvent] = Field(default_factory=list)


class IdentityWorkflowInput(BaseModel):
    """Start (and continue-as-new) input of `identity-{employee_id}`."""

    employee_id: str
    state: IdentityState | None = None
    # Events received and not applied yet (many wait for their effective time), in arrival order.
    pending: list[HrEvent] = Field(default_factory=list)
    # The time-skipping test server cannot register custom search attributes (docs/platform-notes.md#time-skipping-test-server).
    record_search_attributes: bool = True
    # Kept short in history: the log shown to operators keeps the newest entries only.
    history_limit: int = 200
