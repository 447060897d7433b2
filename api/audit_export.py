"""The audit export: every access change, streamed as JSON lines to auditors and administrators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.access_problems import UNAUTHENTICATED, UNCONFIGURED, problem_responses
from api.access_services import AUTHENTICATED, CallerDep, StoreDep
from api.problems import ProblemException
from audit.store import AccessRecordStore
from domain.audit import AccessChange
from domain.inbound import ApiTimestamp
from domain.policy.values import EmployeeId

AUDIT_PREFIX = "/v1/audit"
NDJSON = "application/x-ndjson"
# Lines read from the record store per hop to its thread during an export.
EXPORT_CHUNK = 500

TAG_AUDIT = "Audit"

router = APIRouter(prefix=AUDIT_PREFIX, tags=[TAG_AUDIT], dependencies=AUTHENTICATED)


@router.get(
    "/access-changes",
    summary="Export access changes (auditors)",
    description=(
        "Every grant, extension and removal of access, oldest first, as JSON lines "
        "(`application/x-ndjson`, one AccessChange per line). Auditors and administrators only."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One AccessChange per line",
            "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/AccessChange"}}},
        },
        **problem_responses(
            s401=UNAUTHENTICATED,
            s403="The caller is neither an auditor nor an administrator, or not a Tenure identity",
            s422="Invalid query",
            s503=UNCONFIGURED,
        ),
    },
)
async def export_access_changes(
    caller: CallerDep,
    store: StoreDep,
    since: Annotated[
        ApiTimestamp | None,
        Query(description="Only changes at or after this time (ISO-8601, with a timezone)."),
    ] = None,
    employee_id: Annotated[
        EmployeeId | None, Query(description="Only changes to this person's access.")
    ] = None,
) -> StreamingResponse:
    if not caller.is_auditor:  # administrators count as auditors
        raise ProblemException(
            403, "Not allowed", "Exporting access changes needs the Tenure.Auditor app role."
        )
    return StreamingResponse(_ndjson(store, since, employee_id), media_type=NDJSON)


async def _ndjson(
    store: AccessRecordStore, since: datetime | None, employee_id: str | None
) -> AsyncIterator[bytes]:
    # The store reads a page per short connection, so each chunk may come from any thread.
    changes = store.iter_access_changes(since=since, employee_id=employee_id)
    while chunk := await asyncio.to_thread(_take, changes, EXPORT_CHUNK):
        yield "".join(change.model_dump_json() + "\n" for change in chunk).encode()


def _take(changes: Iterator[AccessChange], count: int) -> list[AccessChange]:
    chunk = []
    for change in changes:
        chunk.append(change)
        if len(chunk) == count:
            break
    return chunk
