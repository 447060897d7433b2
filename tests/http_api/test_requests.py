"""The access API, submitting and reading requests: authentication, submitting (validation,
idempotency), who may read a request, lists from the store, malformed input and configuration.

Against a real Temporal dev server running a stand-in request workflow
(`tests/support/fake_access_request.py`); tokens from a real issuer, records from a real store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ApiSettings
from audit.store import AccessRecordStore
from domain.access.request import (
    RequestStatus,
    RequestView,
    StoryEntry,
    request_workflow_id,
)
from domain.approval.contract import StageView
from domain.policy.file import DEFAULT_POLICY_PATH, PolicyFileError
from tests.support.access_api import (
    ADMIN,
    AUDITOR,
    LIST_APPROVER,
    LISTER,
    REPORT,
    REQUESTER,
    REQUESTS,
    STRANGER,
    asgi_client,
    auth,
    details,
    payables,
    problem,
    started_input,
    submit,
)
from tests.support.fake_access_request import FAKE_APPROVER
from tests.support.token_issuer import Issuer

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
    async with asgi_client(app) as http:
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
    async with asgi_client(app) as http:
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
