"""Movers: what changed between two HR records, and how access follows. Pure functions, no I/O.

A mover is not announced: HR sends the worker's full current record and the change of attributes is
the trigger (docs/domain.md#mover). The access after a move is what a joiner with the new attributes
would get; access only the old attributes implied is removed at once, or after its rule's grace
period (`remove_after`), and a later move that implies it again cancels that removal.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from domain.holdings import ResourceKind
from domain.lifecycle.events import WorkerRecord
from domain.lifecycle.identity import AccessItem, PendingRemoval
from domain.provisioning import GrantedApp, GrantedGroup

GROUP, ACCOUNT = ResourceKind.GRAPH_GROUP, ResourceKind.SCIM_ACCOUNT


class MoverContract:
    WORKFLOW = "MoverWorkflow"
    QUERY_PROGRESS = "progress"


class GraceRemovalContract:
    WORKFLOW = "GraceRemovalWorkflow"


def mover_workflow_id(employee_id: str, event_id: str) -> str:
    return f"mover-{employee_id}-{event_id}"


def grace_removal_workflow_id(employee_id: str, event_id: str, due_at: datetime) -> str:
    # Named after the move whose grace period ended (one move may end several, at several times).
    return f"grace-removal-{employee_id}-{event_id}-{due_at:%Y%m%dT%H%M%S}"


# Fields whose change is a move: access may follow them and both managers are told.
MOVE_FIELDS = ("department", "job_title", "manager_id", "location", "employment_type", "attributes")
# Fields that only update the directory's attributes (a change of name is not a move).
RECORD_FIELDS = ("given_name", "family_name", *MOVE_FIELDS)


def merged_record(old: WorkerRecord | None, new: WorkerRecord) -> WorkerRecord:
    """The record an update leaves behind. An update carries the full record, but one without a
    name keeps the stored name (a directory account cannot lose its display name)."""
    if old is None:
        return new
    return new.model_copy(
        update={
            "given_name": new.given_name or old.given_name,
            "family_name": new.family_name or old.family_name,
        }
    )


def _text(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "(none)"
    return str(getattr(value, "value", value))


class FieldChange(BaseModel):
    field: str
    old: str
    new: str


def changed_fields(old: WorkerRecord | None, new: WorkerRecord) -> list[FieldChange]:
    """Every field of the record that differs, in a fixed order (custom attributes one by one)."""
    changes: list[FieldChange] = []
    for field in RECORD_FIELDS:
        before = getattr(old, field) if old is not None else None
        after = getattr(new, field)
        if field == "attributes":
            before = before or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    changes.append(
                        FieldChange(
                            field=f"attributes.{key}",
                            old=_text(before.get(key)),
                            new=_text(after.get(key)),
                        )
                    )
        elif before != after:
            changes.append(FieldChange(field=field, old=_text(before), new=_text(after)))
    return changes


def is_move(changes: list[FieldChange]) -> bool:
    return any(c.field.split(".")[0] in MOVE_FIELDS for c in changes)


class AccessDelta(BaseModel):
    """How access follows a move, against what the identity holds now."""

    # The access after the move: the new birthright, plus old access kept for a grace period.
    access: list[AccessItem] = Field(default_factory=list)
    add_groups: list[str] = Field(default_factory=list)
    # Apps the new attributes imply (each to ensure, with its roles): new or still granted.
    apps: list[GrantedApp] = Field(default_factory=list)
    remove_groups_now: list[str] = Field(default_factory=list)
    deactivate_apps_now: list[str] = Field(default_factory=list)
    # Removals this move starts (new), and pending ones it cancels (the access is implied again).
    deferred: list[PendingRemoval] = Field(default_factory=list)
    cancelled: list[PendingRemoval] = Field(default_factory=list)


def access_delta(
    held: list[AccessItem],
    pending: list[PendingRemoval],
    groups: list[GrantedGroup],
    apps: list[GrantedApp],
    remove_after: dict[str, timedelta],
    event_id: str,
    now: datetime,
) -> AccessDelta:
    """Compare what is held with the new birthright (`groups`, `apps`).

    Held access the new birthright does not imply goes now, unless the rule credited with granting
    it has a grace period: then it stays until `now + remove_after[rule]`. Access already waiting
    for its removal keeps its original date (a second move does not extend a grace period).
    """
    new_keys = {(GROUP, g.group) for g in groups} | {(ACCOUNT, a.app) for a in apps}
    held_keys = {(a.kind, a.target) for a in held}
    waiting = {(p.kind, p.target): p for p in pending}
    delta = AccessDelta(
        access=[AccessItem(kind=GROUP, target=g.group, rule=g.rule) for g in groups]
        + [AccessItem(kind=ACCOUNT, target=a.app, rule=a.rule, roles=a.roles) for a in apps],
        add_groups=[g.group for g in groups if (GROUP, g.group) not in held_keys],
        apps=list(apps),
        cancelled=[p for key, p in waiting.items() if key in new_keys],
    )
    for item in held:
        key = (item.kind, item.target)
        if key in new_keys:
            continue
        grace = remove_after.get(item.rule)
        if key in waiting:
            delta.access.append(item)
        elif grace:
            delta.access.append(item)
            delta.deferred.append(
                PendingRemoval(
                    kind=item.kind,
                    target=item.target,
                    rule=item.rule,
                    due_at=now + grace,
                    event_id=event_id,
                )
            )
        elif item.kind == GROUP:
            delta.remove_groups_now.append(item.target)
        else:
            delta.deactivate_apps_now.append(item.target)
    return delta


# ---- the transitions' contracts ------------------------------------------------------------------


class MoverInput(BaseModel):
    employee_id: str
    event_id: str
    old_worker: WorkerRecord | None
    worker: WorkerRecord
    user_id: str
    user_principal_name: str
    hire_date: datetime
    access: list[AccessItem] = Field(default_factory=list)
    pending_removals: list[PendingRemoval] = Field(default_factory=list)
    # Groups and apps the person also holds through access packages: birthright no longer
    # granting them does not take them away.
    package_groups: list[str] = Field(default_factory=list)
    package_apps: list[str] = Field(default_factory=list)
    # App roles a package grants, by app: a role birthright stops implying stays if one does.
    package_roles: dict[str, list[str]] = Field(default_factory=dict)
    # The incident holding the person: the update leaves sign-in off (the restore turns it on).
    sign_in_held_by: str | None = None


class MoverProgress(BaseModel):
    phase: str = "planning"
    done: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class MoverResult(BaseModel):
    changes: list[FieldChange] = Field(default_factory=list)
    access: list[AccessItem] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    deferred: list[PendingRemoval] = Field(default_factory=list)
    cancelled: list[PendingRemoval] = Field(default_factory=list)
    managers_mailed: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class GraceRemovalInput(BaseModel):
    employee_id: str
    user_id: str
    groups: list[str] = Field(default_factory=list)
    apps: list[str] = Field(default_factory=list)


class GraceRemovalResult(BaseModel):
    groups_removed: list[str] = Field(default_factory=list)
    apps_deactivated: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
