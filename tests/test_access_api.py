"""The access API against a real Temporal dev server running a stand-in request workflow.

Tokens come from a real issuer; records from a real (temporary) access record store. The stand-in
workflow (`tests/support/fake_access_request.py`) implements the request's contract, so the API's
mapping of updates, refusals and signals is exercised for real.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.caller import ADMIN_ROLE, AUDITOR_ROLE
from api.settings import ApiSettings
from audit.store import AccessRecordStore
from domain.access_request import (
    AccessRequestContract,
    AccessRequestInput,
    RequestStatus,
    RequestView,
    StageView,
    StoryEntry,
    request_workflow_id,
)
from domain.audit import AccessChange
from domain.policy_file import DEFAULT_POLICY_PATH, PolicyFileError
from tests.support.fake_access_request import FAKE_APPROVER, FakeAccessRequestWorkflow
from tests.support.temporal_dev import temporal_dev_server
from tests.support.token_issuer import Issuer, token_issuer

REQUESTER = "E1001"
REPORT = "E1002"
STRANGER = "E3333"
ADMIN = "E0001"
AUDITOR = "E0500"
# Their own requests and approvals only, so the store's lists hold what one test recorded.
LISTER, LIST_APPROVER = "E1101", "E1102"
PEOPLE = (REQUESTER, REPORT, STRANGER, ADMIN, AUDITOR, FAKE_APPROVER, LISTER, LIST_APPROVER)
ROLES = {ADMIN: [ADMIN_ROLE], AUDITOR: [AUDITOR_ROLE]}
REQUESTS = "/v1/access/requests"
PROBLEM = "application/problem+json"


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server() as env:
        yield env


@pytest.fixture(scope="module")
def task_queue() -> str:
    return f"access-api-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def worker(temporal: WorkflowEnvironment, task_queue: str) -> AsyncIterator[None]:
    async with Worker(
        temporal.client, task_queue=task_queue, workflows=[FakeAccessRequestWorkflow]
    ):
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> AccessRecordStore:
    return AccessRecordStore(tmp_path_factory.mktemp("record") / "access-record.db")


@pytest.fixture(scope="module")
async def issuer() -> AsyncIterator[Issuer]:
    async with token_issuer(PEOPLE, ROLES) as tokens:
        yield tokens


@pytest.fixture(scope="module")
async def api(
    temporal: WorkflowEnvironment,
    worker: None,
    task_queue: str,
    store: AccessRecordStore,
    issuer: Issuer,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        intake_token="intake",
        task_queue=task_queue,
        access_record_db=store.path,
        tokens=issuer.settings,
    )
    async with _http(create_app(settings, client=temporal.client)) as http:
        yield http


def _http(app: Any) -> httpx.AsyncClient:
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


# ---- authentication ----------------------------------------------------------------------------


async def test_no_token_is_401(api: httpx.AsyncClient) -> None:
    for method, path in [
        ("POST", REQUESTS),
        ("GET", REQUESTS),
        ("GET", "/v1/access/approvals"),
        ("GET", f"{REQUESTS}/access-request-x"),
        ("POST", f"{REQUESTS}/access-request-x/decision"),
        ("GET", "/v1/audit/access-changes"),
    ]:
        response = await api.request(method, path, json=payables())
        problem(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_wrong_audience_is_401(api: httpx.AsyncClient, issuer: Issuer) -> None:
    token = await issuer.token(REQUESTER, audience="api://someone-else")
    response = await api.post(
        REQUESTS, json=payables(), headers={"Authorization": f"Bearer {token}"}
    )
    problem(response, 401)


# ---- submitting --------------------------------------------------------------------------------


async def test_unknown_package_is_422_naming_it(api: httpx.AsyncClient, issuer: Issuer) -> None:
    response = await api.post(
        REQUESTS, json=payables(package_id="moon-base"), headers=await auth(issuer, REQUESTER)
    )
    body = problem(response, 422)
    assert body["errors"] == [
        {"field": "package_id", "message": "there is no access package 'moon-base'"}
    ]
    assert "moon-base" in body["detail"]


async def test_missing_answer_and_bad_end_are_422_naming_each_field(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    body = {
        "package_id": "production-db-read",
        "justification": "incident",
        "answers": {"environment": "mars"},
        "requested_end": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
    }
    response = await api.post(REQUESTS, json=body, headers=await auth(issuer, REQUESTER))
    fields = {e["field"]: e["message"] for e in problem(response, 422)["errors"]}
    assert set(fields) == {"answers.ticket", "answers.environment", "requested_end"}
    assert fields["answers.ticket"].startswith("required")
    assert "'mars' is not one of eu, us" in fields["answers.environment"]
    assert "at most 30d" in fields["requested_end"]


async def test_good_request_starts_the_workflow_as_the_token_says(
    api: httpx.AsyncClient, issuer: Issuer, temporal: WorkflowEnvironment
) -> None:
    # A manager asks for a report; the requester is who the token names, never the body.
    end = datetime.now(UTC) + timedelta(days=10)
    body = {
        "package_id": "production-db-read",
        "beneficiary_id": REPORT,
        "justification": "on call",
        "answers": {"ticket": "INC-7", "environment": "eu"},
        "requested_end": end.isoformat(),
    }
    response = await api.post(REQUESTS, json=body, headers=await auth(issuer, REQUESTER))

    assert response.status_code == 202, response.text
    answer = response.json()
    request_id = answer["request_id"]
    assert request_id.startswith(f"access-request-{REPORT}-production-db-read-")
    assert answer["status"] == "submitted"
    assert answer["links"]["self"] == f"{REQUESTS}/{request_id}"
    start = await started_input(temporal.client, request_id)
    assert (start.requester_id, start.beneficiary_id) == (REQUESTER, REPORT)
    assert start.package_id == "production-db-read"
    assert start.answers == {"ticket": "INC-7", "environment": "eu"}
    assert start.requested_end == end
    assert start.submitted_at <= datetime.now(UTC)

    # A body that tries to name the requester is refused outright.
    forged = await api.post(
        REQUESTS, json=payables(requester_id=ADMIN), headers=await auth(issuer, REQUESTER)
    )
    assert problem(forged, 422)["errors"][0]["field"] == "requester_id"


async def test_same_idempotency_key_is_one_request(
    api: httpx.AsyncClient, issuer: Issuer, temporal: WorkflowEnvironment
) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    headers = {**await auth(issuer, REQUESTER), **key}
    first = await submit(api, headers)
    second = await submit(api, headers)
    assert first == second
    story = (await details(temporal.client, first)).story
    assert [e.kind for e in story] == ["submitted"]  # one run, started once
    # Another key, or the same key from someone else, is another request.
    assert await submit(api, await auth(issuer, REQUESTER)) != first
    assert await submit(api, {**await auth(issuer, REPORT), **key}) != first

    # Once the request closed, the key still answers with it (and its outcome).
    denied = await api.post(
        f"{REQUESTS}/{first}/decision",
        json={"decision": "deny", "comment": "no"},
        headers=await auth(issuer, FAKE_APPROVER),
    )
    assert denied.json()["status"] == "denied"
    await temporal.client.get_workflow_handle(first).result()
    again = await api.post(REQUESTS, json=payables(), headers=headers)
    assert again.status_code == 202
    assert again.json()["request_id"] == first
    assert again.json()["status"] == "denied"


async def test_a_key_outlives_temporals_retention(
    api: httpx.AsyncClient, issuer: Issuer, store: AccessRecordStore, temporal: WorkflowEnvironment
) -> None:
    # The record knows the closed request this key named; Temporal no longer does.
    key = f"key-{uuid.uuid4()}"
    request_id = request_workflow_id(REPORT, "accounts-payable", f"{REPORT}:{key}")
    closed = recorded_view(request_id, beneficiary=REPORT, approvers=[FAKE_APPROVER])
    store.record_request(closed.model_copy(update={"status": RequestStatus.EXPIRED}))

    again = await api.post(
        REQUESTS, json=payables(), headers={**await auth(issuer, REPORT), "Idempotency-Key": key}
    )

    assert again.status_code == 202, again.text
    assert again.json()["request_id"] == request_id
    assert again.json()["status"] == "expired"
    with pytest.raises(RPCError):  # no new run was started for it
        await temporal.client.get_workflow_handle(request_id).describe()


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
    async with _http(app) as http:
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


# ---- reading -----------------------------------------------------------------------------------


async def test_a_request_is_visible_only_to_those_involved(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    request_id = await submit(api, await auth(issuer, REQUESTER))
    path = f"{REQUESTS}/{request_id}"

    # Not in the store yet: read from the workflow itself.
    for reader in (
        await auth(issuer, REQUESTER),
        await auth(issuer, FAKE_APPROVER),
        await auth(issuer, ADMIN),
        await auth(issuer, AUDITOR),
    ):
        response = await api.get(path, headers=reader)
        assert response.status_code == 200, response.text
        assert RequestView.model_validate(response.json()).requester_id == REQUESTER

    stranger = await api.get(path, headers=await auth(issuer, STRANGER))
    missing = await api.get(
        f"{REQUESTS}/access-request-{REQUESTER}-nothing-0000000000",
        headers=await auth(issuer, STRANGER),
    )
    # The same answer either way: a stranger learns nothing about whether it exists.
    assert problem(stranger, 404)["detail"] == f"There is no access request {request_id!r}."
    problem(missing, 404)
    # Other workflows are not reachable through these endpoints.
    problem(
        await api.get(f"{REQUESTS}/identity-{REQUESTER}", headers=await auth(issuer, ADMIN)),
        404,
    )


def recorded_view(request_id: str, *, beneficiary: str, approvers: list[str]) -> RequestView:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    stage = StageView(
        index=0,
        name="manager",
        round="request",
        require="first",
        approvers=approvers,
        opened_at=at,
        deadline=at + timedelta(days=3),
    )
    return RequestView(
        request_id=request_id,
        package_id="accounts-payable",
        package_name="Accounts payable clerk",
        beneficiary_id=beneficiary,
        requester_id=beneficiary,
        status=RequestStatus.PENDING_APPROVAL,
        submitted_at=at,
        waiting_on=stage,
        stages=[stage],
        story=[StoryEntry(seq=1, at=at, kind="submitted", actor=beneficiary, text="asked")],
        updated_at=at,
    )


async def test_lists_come_from_the_store(
    api: httpx.AsyncClient, issuer: Issuer, store: AccessRecordStore
) -> None:
    person, approver = LISTER, LIST_APPROVER
    view = recorded_view(
        f"access-request-{person}-accounts-payable-1", beneficiary=person, approvers=[approver]
    )
    store.record_request(view)

    mine = await api.get(REQUESTS, headers=await auth(issuer, person))
    assert mine.status_code == 200, mine.text
    assert [r["request_id"] for r in mine.json()["requests"]] == [view.request_id]
    assert mine.json()["requests"][0]["waiting_on"]["approvers"] == [approver]
    granted_only = await api.get(
        REQUESTS, params={"status": "granted"}, headers=await auth(issuer, person)
    )
    assert granted_only.json() == {"requests": [], "count": 0}
    bad_status = await api.get(
        REQUESTS, params={"status": "lost"}, headers=await auth(issuer, person)
    )
    assert problem(bad_status, 422)["errors"][0]["field"] == "query.status"

    waiting = await api.get("/v1/access/approvals", headers=await auth(issuer, approver))
    assert [r["request_id"] for r in waiting.json()["requests"]] == [view.request_id]
    assert (await api.get("/v1/access/approvals", headers=await auth(issuer, person))).json()[
        "count"
    ] == 0

    # The store answers before the workflow (there is none for this one).
    detail = await api.get(f"{REQUESTS}/{view.request_id}", headers=await auth(issuer, approver))
    assert detail.status_code == 200
    assert RequestView.model_validate(detail.json()) == view


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


# ---- malformed input and configuration ---------------------------------------------------------


async def test_malformed_bodies_are_422_naming_each_field(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    headers = await auth(issuer, REQUESTER)
    body = {"package_id": 7, "answers": {"ticket": ["x"]}, "requested_end": "2026-12-01T09:00:00"}
    fields = {
        e["field"]
        for e in problem(await api.post(REQUESTS, json=body, headers=headers), 422)["errors"]
    }
    assert fields == {"package_id", "answers.ticket", "requested_end"}

    not_json = await api.post(
        REQUESTS,
        content=b'{"package_id": ',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert [e["field"] for e in problem(not_json, 422)["errors"]] == ["(body)"]

    decision = await api.post(
        f"{REQUESTS}/access-request-x/decision", json={"decision": "maybe"}, headers=headers
    )
    error = problem(decision, 422)
    assert [e["field"] for e in error["errors"]] == ["decision"]
    assert "decision" in error["detail"]


async def test_unconfigured_access_api_is_503_and_intake_still_works(
    temporal: WorkflowEnvironment, issuer: Issuer
) -> None:
    app = create_app(ApiSettings(intake_token="intake"), client=temporal.client)
    async with _http(app) as http:
        no_tokens = await http.get(REQUESTS, headers=await auth(issuer, REQUESTER))
        assert "TENURE_API_TOKEN_ISSUER" in problem(no_tokens, 503)["detail"]
        hire = {
            "event_id": f"hr-{uuid.uuid4().hex[:8]}",
            "type": "hire",
            "effective_at": "2026-12-01T09:00:00Z",
            "worker": {
                "employee_id": f"E{uuid.uuid4().hex[:6]}",
                "given_name": "A",
                "family_name": "B",
            },
        }
        intake = await http.post(
            "/v1/hr/events", json=hire, headers={"Authorization": "Bearer intake"}
        )
        assert intake.status_code == 202, intake.text

    app = create_app(
        ApiSettings(intake_token="intake", tokens=issuer.settings), client=temporal.client
    )
    async with _http(app) as http:
        no_store = await http.get("/v1/access/approvals", headers=await auth(issuer, REQUESTER))
        assert "TENURE_ACCESS_RECORD_DB" in problem(no_store, 503)["detail"]


def test_settings_and_policy_from_env(tmp_path: Path) -> None:
    settings = ApiSettings.from_env(
        {
            "TENURE_INTAKE_TOKEN": "t",
            "TENURE_ACCESS_RECORD_DB": str(tmp_path / "record.db"),
            "TENURE_POLICY": str(tmp_path / "policy.yaml"),
        }
    )
    assert settings.access_record_db == tmp_path / "record.db"
    assert settings.policy_path == tmp_path / "policy.yaml"
    defaults = ApiSettings.from_env({"TENURE_INTAKE_TOKEN": "t"})
    assert defaults.access_record_db is None
    assert defaults.policy_path == DEFAULT_POLICY_PATH

    # A bad policy file stops the API at startup, saying where and why.
    (tmp_path / "policy.yaml").write_text("tenant: {domain: example.com}\n")
    with pytest.raises(PolicyFileError, match=r"policy\.yaml: tenant\.mail_sender"):
        create_app(settings)


async def test_openapi_documents_the_access_endpoints(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    submit_op = spec["paths"][REQUESTS]["post"]
    assert submit_op["summary"] == "Request an access package"
    assert {"202", "401", "422", "503"} <= submit_op["responses"].keys()
    assert any(p["name"] == "Idempotency-Key" for p in submit_op["parameters"])
    decision = spec["paths"][f"{REQUESTS}/{{request_id}}/decision"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= decision["responses"].keys()
    export = spec["paths"]["/v1/audit/access-changes"]["get"]
    assert "application/x-ndjson" in export["responses"]["200"]["content"]
    assert {"AccessChange", "RequestView", "Problem", "NewAccessRequest"} <= spec["components"][
        "schemas"
    ].keys()
    assert "AccessToken" in spec["components"]["securitySchemes"]
