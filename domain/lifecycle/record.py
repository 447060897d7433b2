"""Birthright and leaver access changes as records for the access record store (domain/audit.py).

The identity entity writes them as each transition completes, so `tenure audit export` answers "why
does this person hold this?" for birthright access as it does for requested packages. Change ids are
`{event id}:{action}:{resource}`: a transition runs once per event, and a repeated write is ignored.
"""

from __future__ import annotations

from datetime import datetime

from domain.audit import AccessAction, AccessChange
from domain.holdings import ResourceRef
from domain.lifecycle.identity import AccessItem
from domain.lifecycle.ledger import item_resources


def birthright_grants(
    employee_id: str, event_id: str, event_type: str, at: datetime, items: list[AccessItem]
) -> list[AccessChange]:
    return [
        _change(
            employee_id,
            event_id,
            "granted",
            resource,
            at,
            {"type": "birthright", "rule": item.rule, "event_id": event_id, "event": event_type},
        )
        for item in items
        for resource in item_resources(item)
    ]


def removals(
    employee_id: str,
    event_id: str,
    at: datetime,
    resources: list[ResourceRef],
    cause: dict[str, str],
) -> list[AccessChange]:
    return [
        _change(employee_id, event_id, "removed", resource, at, {**cause, "event_id": event_id})
        for resource in resources
    ]


def _change(
    employee_id: str,
    event_id: str,
    action: AccessAction,
    resource: ResourceRef,
    at: datetime,
    cause: dict[str, str],
) -> AccessChange:
    return AccessChange(
        change_id=f"{event_id}:{action}:{resource.key}",
        at=at,
        employee_id=employee_id,
        action=action,
        resource=resource.key,
        cause=cause,
    )
