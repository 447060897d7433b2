"""The access record: every change of access with its cause, kept by Tenure beyond Temporal's retention.

Temporal deletes closed workflow histories after the namespace's retention, so the answer to "why does
this person hold this?" lives in a store of ours (`audit/store.py`), written by activities. Activities
run at least once, so every change carries a `change_id` chosen by its writer: the same change always
gets the same id, and the store keeps the first copy of each.

Change ids by convention: `{request_id}:{story seq}:{resource}` for changes made by an access request
(`access_changes_from_view`); other writers (birthright, leaver) pick an id as stable, for example
`{event_id}:{action}:{resource}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.access.request import RequestView, StoryEntry


class AuditActivityNames:
    """Registered names of the record's activities; workflows call them by name."""

    RECORD_REQUEST = "access.record_request"
    RECORD_ACCESS_CHANGES = "access.record_access_changes"


AccessAction = Literal["granted", "removed", "extended"]


class AccessChange(BaseModel):
    """One access granted, extended or removed, and why."""

    change_id: str  # deterministic idempotency key chosen by the writer
    at: datetime
    employee_id: str
    action: AccessAction
    resource: str  # `group:Finance`, `app:ledger:ap-clerk`, `app:collab`
    package_id: str | None = None
    until: datetime | None = None  # end of a grant or extension; None: until removed
    # `{"type": "access_request" | "birthright" | "leaver", ...}`: JSON-ready values only.
    cause: dict[str, Any] = Field(default_factory=dict)


class RecordAccessChangesInput(BaseModel):
    changes: list[AccessChange]


def access_changes_from_view(view: RequestView) -> list[AccessChange]:
    """The grants, extensions and removals one request made, derived from its story.

    Each change is derived only from the story lines up to and including its own, so a longer story
    of the same request derives the same earlier changes again, with the same ids and content.

    Story lines read: `decision` (`data={"stage", "decision", "comment"}`, `actor` who decided),
    `granted` (`data={"resources": [...], "until": iso | None}`), `extended` (`data={"until": iso}`,
    applies to every resource held), `removed` and `revoked` (`data={"resources": [...], "reason"}`).
    A removal line without `resources` removes everything held; a resource already removed (by an
    earlier `revoked` line, say) is not removed twice.
    """
    changes: list[AccessChange] = []
    approvals: list[dict[str, Any]] = []
    held: list[str] = []  # in grant order
    removed: set[str] = set()

    for entry in sorted(view.story, key=lambda e: e.seq):
        data = entry.data
        if entry.kind == "decision":
            if str(data.get("decision", "")).lower() == "approve":
                approvals.append(_approval(entry))
        elif entry.kind == "granted":
            resources = _resources(data.get("resources"), fallback=view.resources)
            until = _instant(data.get("until"))
            for resource in resources:
                if resource not in held:
                    held.append(resource)
                removed.discard(resource)
                changes.append(_change(view, entry, "granted", resource, until, approvals))
        elif entry.kind == "extended":
            until = _instant(data.get("until"))
            for resource in held:
                changes.append(_change(view, entry, "extended", resource, until, approvals))
        elif entry.kind in ("removed", "revoked"):
            resources = _resources(data.get("resources"), fallback=held)
            for resource in resources:
                if resource in removed:
                    continue
                removed.add(resource)
                if resource in held:
                    held.remove(resource)
                change = _change(view, entry, "removed", resource, None, approvals)
                change.cause["reason"] = str(data.get("reason", "") or "")
                changes.append(change)
    return changes


def _change(
    view: RequestView,
    entry: StoryEntry,
    action: AccessAction,
    resource: str,
    until: datetime | None,
    approvals: list[dict[str, Any]],
) -> AccessChange:
    return AccessChange(
        change_id=f"{view.request_id}:{entry.seq}:{resource}",
        at=entry.at,
        employee_id=view.beneficiary_id,
        action=action,
        resource=resource,
        package_id=view.package_id,
        until=until,
        cause={
            "type": "access_request",
            "request_id": view.request_id,
            "package_id": view.package_id,
            "package_name": view.package_name,
            "requester": view.requester_id,
            "beneficiary": view.beneficiary_id,
            "submitted_at": _iso(view.submitted_at),
            "justification": view.justification,
            # Every approving decision recorded before this change, in story order.
            "approvals": [dict(a) for a in approvals],
            # The story line that records the change: who made it happen, and its sentence.
            "story_seq": entry.seq,
            "by": entry.actor,
            "note": entry.text,
        },
    )


def _approval(entry: StoryEntry) -> dict[str, Any]:
    approval: dict[str, Any] = {
        "stage": entry.data.get("stage"),
        "by": entry.actor,
        "at": _iso(entry.at),
        "comment": str(entry.data.get("comment", "") or ""),
    }
    if "round" in entry.data:
        approval["round"] = entry.data["round"]
    return approval


def _resources(value: Any, *, fallback: list[str]) -> list[str]:
    if value is None:
        return list(fallback)
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
