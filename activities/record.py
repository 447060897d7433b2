"""Record activities: keep each request's story and every access change in Tenure's access record.

Temporal deletes closed histories after the namespace's retention; the record (`audit/store.py`)
keeps them for auditors. The store is injected, and its writes are idempotent and monotonic, so a
retried or late activity never duplicates a line nor rolls a request back.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from audit.store import AccessRecordStore
from domain.access.request import RecordRequestInput
from domain.audit import AuditActivityNames, RecordAccessChangesInput


class AccessRecordActivities:
    def __init__(self, store: AccessRecordStore) -> None:
        self._store = store

    @activity.defn(name=AuditActivityNames.RECORD_REQUEST)
    async def record_request(self, input: RecordRequestInput) -> None:
        # The store blocks (SQLite or PostgreSQL I/O): keep it off the worker's event loop.
        await asyncio.to_thread(self._store.record_request, input.view)

    @activity.defn(name=AuditActivityNames.RECORD_ACCESS_CHANGES)
    async def record_access_changes(self, input: RecordAccessChangesInput) -> None:
        await asyncio.to_thread(self._store.record_access_changes, input.changes)
