"""The access record's activities (implemented by activities/record.py)."""

from __future__ import annotations

from temporalio import activity

from domain.access.request import RecordRequestInput
from domain.audit import AuditActivityNames, RecordAccessChangesInput

__all__ = ["record_access_changes", "record_request"]


@activity.defn(name=AuditActivityNames.RECORD_REQUEST)
async def record_request(input: RecordRequestInput) -> None:
    raise NotImplementedError


@activity.defn(name=AuditActivityNames.RECORD_ACCESS_CHANGES)
async def record_access_changes(input: RecordAccessChangesInput) -> None:
    raise NotImplementedError
