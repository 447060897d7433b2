"""The access API, acting on requests: decisions, extension, cancel and revoke, and how the
workflow's refusals map to HTTP problems (403, 409, 503).

Against a real Temporal dev server running a stand-in request workflow
(`tests/support/fake_access_request.py`), so the API's mapping of updates, refusals and signals is
exercised for real."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ApiSettings
from domain.access.request import (
    AccessRequestContract,
)
from tests.support.access_api import (
    ADMIN,
    REQUESTER,
    REQUESTS,
    STRANGER,
    asgi_client,
    auth,
    details,
    problem,
    submit,
)
from tests.support.fake_access_request import FAKE_APPROVER
from tests.support.token_issuer import Issuer

# ---- deciding ----------------------------------------------------------------------------------


async def test_decision_by_a_non_approver_is_403_and_recorded(
    api: httpx.AsyncClient, issuer: Issuer, temporal: WorkflowEnvironment
) -> None:
    request_id = await submit(api, await auth(issuer, REQUESTER))

    refused = await api.post(
        f"{REQUESTS}/{request_id}/decision",
        json={"decision": "approve", "comment": "sure"},
        headers=await auth(issuer, STRANGER),
    )

    body = problem(refused, 403)
    assert body["detail"] == f"{STRANGER} is not an approver of stage 'manager'"
    [attempt] = [
        e for e in (await details(temporal.client, request_id)).story if e.kind == "refused_attempt"
    ]
    assert attempt.actor == STRANGER
    assert attempt.data["action"] == AccessRequestContract.UPDATE_DECIDE
    assert attempt.data["reason"] == body["detail"]

    # Self-approval is refused the same way.
    own = await api.post(
        f"{REQUESTS}/{request_id}/decision",
        json={"decision": "approve"},
        headers=await auth(issuer, REQUESTER),
    )
    assert "own request" in problem(own, 403)["detail"]

    approved = await api.post(
        f"{REQUESTS}/{request_id}/decision",
        json={"decision": "approve", "comment": "ok"},
        headers=await auth(issuer, FAKE_APPROVER),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json() == {
        "request_id": request_id,
        "status": "granted",
        "message": "request granted",
    }


async def test_decision_on_a_closed_request_is_409(
    api: httpx.AsyncClient, issuer: Issuer, temporal: WorkflowEnvironment
) -> None:
    approver = await auth(issuer, FAKE_APPROVER)
    # Granted: the run is open (access is held), its validator says the stage is closed.
    granted = await submit(api, await auth(issuer, REQUESTER))
    await api.post(f"{REQUESTS}/{granted}/decision", json={"decision": "approve"}, headers=approver)
    again = await api.post(
        f"{REQUESTS}/{granted}/decision", json={"decision": "deny"}, headers=approver
    )
    assert "takes no decisions" in problem(again, 409)["detail"]

    # Denied: the run has completed; Temporal says "not found", the API knows it is closed.
    denied = await submit(api, await auth(issuer, REQUESTER))
    await api.post(f"{REQUESTS}/{denied}/decision", json={"decision": "deny"}, headers=approver)
    await temporal.client.get_workflow_handle(denied).result()
    late = await api.post(
        f"{REQUESTS}/{denied}/decision", json={"decision": "approve"}, headers=approver
    )
    problem(late, 409)

    missing = await api.post(
        f"{REQUESTS}/access-request-{REQUESTER}-nothing-0000000000/decision",
        json={"decision": "approve"},
        headers=approver,
    )
    problem(missing, 404)


async def test_revoke_by_a_non_admin_is_403(
    api: httpx.AsyncClient, issuer: Issuer, temporal: WorkflowEnvironment
) -> None:
    request_id = await submit(api, await auth(issuer, REQUESTER))
    await api.post(
        f"{REQUESTS}/{request_id}/decision",
        json={"decision": "approve"},
        headers=await auth(issuer, FAKE_APPROVER),
    )
    refused = await api.post(
        f"{REQUESTS}/{request_id}/revoke",
        json={"reason": "tidy up"},
        headers=await auth(issuer, REQUESTER),
    )
    assert "not an administrator" in problem(refused, 403)["detail"]
    story = (await details(temporal.client, request_id)).story
    assert [(e.actor, e.data["action"]) for e in story if e.kind == "refused_attempt"] == [
        (REQUESTER, AccessRequestContract.UPDATE_REVOKE)
    ]

    revoked = await api.post(
        f"{REQUESTS}/{request_id}/revoke",
        json={"reason": "left the team"},
        headers=await auth(issuer, ADMIN),
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"


async def test_extension_and_cancel(api: httpx.AsyncClient, issuer: Issuer) -> None:
    mine = await auth(issuer, REQUESTER)
    request_id = await submit(api, mine)
    await api.post(
        f"{REQUESTS}/{request_id}/decision",
        json={"decision": "approve"},
        headers=await auth(issuer, FAKE_APPROVER),
    )
    too_far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    invalid = await api.post(
        f"{REQUESTS}/{request_id}/extension", json={"new_end": too_far}, headers=mine
    )
    assert problem(invalid, 422)["errors"] == [
        {"field": "new_end", "message": "an extension moves the end at most 60d"}
    ]
    soon = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    extended = await api.post(
        f"{REQUESTS}/{request_id}/extension",
        json={"new_end": soon, "justification": "project runs late"},
        headers=mine,
    )
    assert extended.status_code == 200, extended.text

    # Cancel needs no body; a granted request cannot be cancelled, an open one can.
    problem(await api.post(f"{REQUESTS}/{request_id}/cancel", headers=mine), 409)
    other = await submit(api, mine)
    cancelled = await api.post(f"{REQUESTS}/{other}/cancel", headers=mine)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


async def test_a_request_whose_worker_is_down_is_503_not_a_hang(
    temporal: WorkflowEnvironment, issuer: Issuer
) -> None:
    # Started on a queue no worker polls: neither the update nor the query can be answered.
    settings = ApiSettings(
        intake_token="intake", task_queue=f"nobody-{uuid.uuid4().hex[:8]}", tokens=issuer.settings
    )
    app = create_app(settings, client=temporal.client)
    app.state.access.update_timeout = timedelta(seconds=1)
    app.state.access.query_timeout = timedelta(seconds=1)
    async with asgi_client(app) as http:
        request_id = await submit(http, await auth(issuer, REQUESTER))
        decision = await http.post(
            f"{REQUESTS}/{request_id}/decision",
            json={"decision": "approve"},
            headers=await auth(issuer, FAKE_APPROVER),
        )
        assert "is the worker running?" in problem(decision, 503)["detail"]
        assert decision.headers["retry-after"] == "5"
        problem(
            await http.get(f"{REQUESTS}/{request_id}", headers=await auth(issuer, REQUESTER)), 503
        )
    await temporal.client.get_workflow_handle(request_id).terminate("test over")
