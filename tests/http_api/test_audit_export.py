"""The access API's audit export of access changes from the record store."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from audit.store import AccessRecordStore
from domain.audit import AccessChange
from tests.support.access_api import (
    ADMIN,
    AUDITOR,
    REQUESTER,
    auth,
    problem,
)
from tests.support.token_issuer import Issuer

# ---- audit export ------------------------------------------------------------------------------


async def test_audit_export(
    api: httpx.AsyncClient, issuer: Issuer, store: AccessRecordStore
) -> None:
    person = "E1201"  # nobody else's changes are recorded for them
    changes = [
        AccessChange(
            change_id=f"{person}:{i}",
            at=datetime(2026, 11, 1 + i, tzinfo=UTC),
            employee_id=person,
            action="granted" if i == 0 else "removed",
            resource="group:Accounts Payable",
            package_id="accounts-payable",
            cause={"type": "access_request"},
        )
        for i in range(2)
    ]
    store.record_access_changes(changes)
    path = "/v1/audit/access-changes"

    refused = await api.get(path, headers=await auth(issuer, REQUESTER))
    assert "Tenure.Auditor" in problem(refused, 403)["detail"]

    exported = await api.get(
        path, params={"employee_id": person}, headers=await auth(issuer, AUDITOR)
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = exported.text.splitlines()
    assert [AccessChange.model_validate_json(line) for line in lines] == changes

    later = await api.get(
        path,
        params={"employee_id": person, "since": "2026-11-02T00:00:00Z"},
        headers=await auth(issuer, ADMIN),
    )
    assert [json.loads(line)["change_id"] for line in later.text.splitlines()] == [f"{person}:1"]
