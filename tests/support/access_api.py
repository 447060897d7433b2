"""The access API's tests: the people they act as, and helpers to submit requests, read the
stand-in workflow and check problem answers."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.client import Client

from api.caller import ADMIN_ROLE, AUDITOR_ROLE
from domain.access.request import (
    AccessRequestContract,
    AccessRequestInput,
    RequestView,
)
from tests.support.fake_access_request import FAKE_APPROVER
from tests.support.token_issuer import Issuer

REQUESTER = "E1001"
REPORT = "E1002"
STRANGER = "E3333"
ADMIN = "E0001"
AUDITOR = "E0500"
# Their own requests and approvals only, so the store's lists hold what one test recorded.
LISTER, LIST_APPROVER = "E1101", "E1102"
PEOPLE = (REQUESTER, REPORT, STRANGER, ADMIN, AUDITOR, FAKE_APPROVER, LISTER, LIST_APPROVER)
# In the directory, with a validly signed token, but not a Tenure identity.
OUTSIDER = "E4040"
# An identity who has left (stage disabled), whose token is still valid.
LEAVER = "E4041"
INTAKE_TOKEN = "intake"
INTAKE = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
ROLES = {ADMIN: [ADMIN_ROLE], AUDITOR: [AUDITOR_ROLE]}
REQUESTS = "/v1/access/requests"
PROBLEM = "application/problem+json"


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tenure.test")


async def auth(issuer: Issuer, employee_id: str) -> dict[str, str]:
    return await issuer.auth(employee_id)


def payables(**extra: Any) -> dict[str, Any]:
    return {"package_id": "accounts-payable", "justification": "month-end close", **extra}


async def submit(
    api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any] | None = None
) -> str:
    response = await api.post(REQUESTS, json=body or payables(), headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


async def started_input(client: Client, request_id: str) -> AccessRequestInput:
    async for event in client.get_workflow_handle(request_id).fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        [start] = await client.data_converter.decode(attrs.input.payloads, [AccessRequestInput])
        return start
    raise AssertionError("no history")


async def details(client: Client, request_id: str) -> RequestView:
    return await client.get_workflow_handle(request_id).query(
        AccessRequestContract.QUERY_DETAILS, result_type=RequestView
    )


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body
