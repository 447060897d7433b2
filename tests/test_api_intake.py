"""The HR intake API against a real Temporal dev server (no worker: signals wait in history)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig, RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.intake import parse_intake
from api.settings import ApiSettings, SettingsError
from connection.temporal import TemporalSettings
from domain.lifecycle.events import HrEvent, identity_workflow_id
from domain.lifecycle.identity import IdentityContract
from domain.search_attributes import EMPLOYEE_ID as EMPLOYEE_ID_KEY
from domain.search_attributes import LIFECYCLE_STAGE as LIFECYCLE_STAGE_KEY
from tests.support.temporal_dev import temporal_dev_server

TOKEN = "test-intake-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server() as env:
        yield env


@pytest.fixture(scope="module")
async def api(temporal: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ApiSettings(intake_token=TOKEN), client=temporal.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenure.test") as http:
        yield http


def employee() -> str:
    # Unique per test: the dev server is shared by the whole module.
    return f"E{uuid.uuid4().hex[:8].upper()}"


def hire(emp: str, event_id: str | None = None, **worker: Any) -> dict[str, Any]:
    return {
        "event_id": event_id or f"hr-{uuid.uuid4().hex[:10]}",
        "type": "hire",
        "effective_at": "2026-12-01T09:00:00Z",
        "occurred_at": "2026-11-20T15:04:05Z",
        "worker": {
            "employee_id": emp,
            "given_name": "Ada",
            "family_name": "Lovelace",
            "department": "Finance",
            **worker,
        },
    }


async def signalled_event_ids(client: Client, emp: str) -> list[str]:
    handle = client.get_workflow_handle(identity_workflow_id(emp))
    ids = []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_signaled_event_attributes"):
            attrs = event.workflow_execution_signaled_event_attributes
            assert attrs.signal_name == IdentityContract.SIGNAL_HR_EVENT
            [payload] = await client.data_converter.decode(attrs.input.payloads, [HrEvent])
            ids.append(payload.event_id)
    return ids


async def workflow_exists(client: Client, emp: str) -> bool:
    try:
        await client.get_workflow_handle(identity_workflow_id(emp)).describe()
    except RPCError as err:
        assert err.status == RPCStatusCode.NOT_FOUND
        return False
    return True


async def test_single_event_starts_identity_with_signal(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment
) -> None:
    emp = employee()
    event = hire(emp)
    response = await api.post("/v1/hr/events", json=event, headers={**AUTH, "X-Request-Id": "r-1"})

    assert response.status_code == 202, response.text
    workflow_id = identity_workflow_id(emp)
    assert response.json() == {
        "accepted": [{"event_id": event["event_id"], "workflow_id": workflow_id}],
        "count": 1,
    }
    assert response.headers["x-request-id"] == "r-1"
    assert await signalled_event_ids(temporal.client, emp) == [event["event_id"]]

    description = await temporal.client.get_workflow_handle(workflow_id).describe()
    assert description.workflow_type == IdentityContract.WORKFLOW
    assert description.task_queue == IdentityContract.TASK_QUEUE
    assert description.typed_search_attributes[EMPLOYEE_ID_KEY] == emp
    assert description.typed_search_attributes[LIFECYCLE_STAGE_KEY] == "none"
    assert await description.static_summary() == f"Identity {emp}"


async def test_batch_reaches_every_employee_in_body_order(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment
) -> None:
    first, second, third = employee(), employee(), employee()
    moved = {**hire(first), "type": "update"}
    moved["worker"] = {**moved["worker"], "department": "Audit"}
    events = [hire(first), hire(second), moved, hire(third)]
    # An identical repeat is acknowledged once, not refused.
    body = {"events": [*events, events[1]]}

    response = await api.post("/v1/hr/events", json=body, headers=AUTH)

    assert response.status_code == 202, response.text
    assert response.json()["count"] == 4
    assert [a["event_id"] for a in response.json()["accepted"]] == [e["event_id"] for e in events]
    assert await signalled_event_ids(temporal.client, first) == [
        events[0]["event_id"],
        events[2]["event_id"],
    ]
    assert await signalled_event_ids(temporal.client, second) == [events[1]["event_id"]]
    assert await signalled_event_ids(temporal.client, third) == [events[3]["event_id"]]


async def test_resent_event_reaches_the_same_workflow(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment
) -> None:
    emp = employee()
    event = hire(emp)
    for _ in range(2):
        response = await api.post("/v1/hr/events", json=event, headers=AUTH)
        assert response.status_code == 202
    # Both deliveries land in the one run; the workflow ignores the repeated event_id.
    assert await signalled_event_ids(temporal.client, emp) == [event["event_id"]] * 2


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_unauthorized(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment, headers: dict[str, str]
) -> None:
    emp = employee()
    response = await api.post("/v1/hr/events", json=hire(emp), headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not await workflow_exists(temporal.client, emp)


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert {"type", "title", "detail", "errors"} <= problem.keys()
    return problem["errors"]


async def test_single_invalid_event_names_the_field(api: httpx.AsyncClient) -> None:
    event = hire(employee(), event_id="hr-naive")
    event["effective_at"] = "2026-12-01T09:00:00"  # no zone
    errors = _errors(await api.post("/v1/hr/events", json=event, headers=AUTH))
    assert errors == [
        {
            "index": 0,
            "event_id": "hr-naive",
            "field": "effective_at",
            "message": "must carry a timezone, e.g. 2026-12-01T09:00:00Z",
        }
    ]


async def test_batch_with_invalid_events_names_each_and_starts_nothing(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment
) -> None:
    emps = [employee() for _ in range(6)]
    missing_field = hire(emps[1], event_id="hr-missing")
    del missing_field["worker"]["employee_id"]
    naive = hire(emps[2], event_id="hr-naive")
    naive["occurred_at"] = "2026-11-20T15:04:05"
    unknown_type = {**hire(emps[3], event_id="hr-type"), "type": "promote"}
    nameless_hire = hire(emps[4], event_id="hr-nameless")
    del nameless_hire["worker"]["given_name"], nameless_hire["worker"]["family_name"]
    events = [hire(emps[0]), missing_field, naive, unknown_type, nameless_hire, hire(emps[5])]

    errors = _errors(await api.post("/v1/hr/events", json={"events": events}, headers=AUTH))

    by_index = {e["index"]: e for e in errors}
    assert sorted(by_index) == [1, 2, 3, 4]
    assert by_index[1]["field"] == "events[1].worker.employee_id"
    assert by_index[1]["event_id"] == "hr-missing"
    assert by_index[2]["field"] == "events[2].occurred_at"
    assert "timezone" in by_index[2]["message"]
    assert by_index[3]["field"] == "events[3].type"
    assert by_index[4]["field"] == "events[4]"
    assert "given_name" in by_index[4]["message"]
    assert "family_name" in by_index[4]["message"]
    # All or nothing: the valid events of the batch were not handed to Temporal either.
    for emp in emps:
        assert not await workflow_exists(temporal.client, emp)


async def test_duplicate_event_id_with_different_content(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment
) -> None:
    emp = employee()
    event = hire(emp, event_id="hr-dup")
    changed = hire(emp, event_id="hr-dup", department="Legal")
    errors = _errors(
        await api.post("/v1/hr/events", json={"events": [event, changed]}, headers=AUTH)
    )
    assert errors == [
        {
            "index": 1,
            "event_id": "hr-dup",
            "field": "events[1].event_id",
            "message": "event_id 'hr-dup' repeats events[0] with different content",
        }
    ]
    assert not await workflow_exists(temporal.client, emp)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"event_id": "hr-1", "type": ', "(body)"),
        (b"\xff\xfe not utf-8", "(body)"),
        (b"", "(body)"),
        (b"[]", "(body)"),
        (b'"hire"', "(body)"),
        (b'{"events": []}', "events"),
        (b'{"events": {"event_id": "x"}}', "events"),
        (b'{"events": [], "source": "x"}', "source"),
    ],
    ids=["truncated", "binary", "empty", "list", "string", "empty-batch", "not-list", "extra-key"],
)
async def test_malformed_bodies_are_422_not_500(
    api: httpx.AsyncClient, body: bytes, field: str
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    errors = _errors(await api.post("/v1/hr/events", content=body, headers=headers))
    assert [e["field"] for e in errors] == [field]


async def test_too_many_events(api: httpx.AsyncClient, temporal: WorkflowEnvironment) -> None:
    emp = employee()
    events = [hire(emp, event_id=f"hr-{i}") for i in range(1001)]
    errors = _errors(await api.post("/v1/hr/events", json={"events": events}, headers=AUTH))
    assert errors[0]["message"] == "at most 1000 events per request"
    assert not await workflow_exists(temporal.client, emp)


async def test_healthz_and_openapi(api: httpx.AsyncClient) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "temporal": "ok"}
    assert health.headers["x-request-id"]

    spec = (await api.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/hr/events"]["post"]
    body_schema = json.dumps(operation["requestBody"])
    assert "#/components/schemas/HrEvent" in body_schema
    assert {"HrEvent", "WorkerRecord", "EventBatch", "Problem"} <= spec["components"][
        "schemas"
    ].keys()
    assert {"202", "401", "422", "503"} <= operation["responses"].keys()
    assert (await api.get("/docs")).status_code == 200
    # The examples shown on the docs page are themselves valid bodies.
    for example in operation["requestBody"]["content"]["application/json"]["examples"].values():
        assert parse_intake(json.dumps(example["value"]).encode()).events


def test_settings_from_env(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as missing:
        ApiSettings.from_env({})
    assert "TENURE_INTAKE_TOKEN" in str(missing.value)
    assert "TENURE_INTAKE_TOKEN_FILE" in str(missing.value)

    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    settings = ApiSettings.from_env(
        {"TENURE_INTAKE_TOKEN_FILE": str(token_file), "TEMPORAL_API_KEY": "key"}
    )
    assert settings.intake_token == "from-file"
    assert settings.temporal.tls  # an API key implies TLS (Temporal Cloud)
    assert settings.temporal.address == TemporalSettings().address  # the documented default
    assert settings.task_queue == IdentityContract.TASK_QUEUE
    assert "from-file" not in repr(settings)
    assert "'key'" not in repr(settings)  # the API key's value never shows


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _assert_unavailable(client: Client) -> None:
    app = create_app(ApiSettings(intake_token=TOKEN), client=client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tenure.test") as http:
        response = await http.post("/v1/hr/events", json=hire(employee()), headers=AUTH)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "retry" in response.json()["detail"]
        assert (await http.get("/healthz")).status_code == 503


async def test_temporal_never_reachable_is_503() -> None:
    client = await Client.connect(
        f"127.0.0.1:{_closed_port()}",
        lazy=True,
        data_converter=pydantic_data_converter,
        retry_config=RetryConfig(max_retries=1, initial_interval_millis=10),
    )
    await _assert_unavailable(client)


async def test_temporal_gone_after_connect_is_503() -> None:
    async with temporal_dev_server() as env:
        client = await Client.connect(
            env.client.service_client.config.target_host,
            data_converter=pydantic_data_converter,
            retry_config=RetryConfig(max_retries=1, initial_interval_millis=10),
        )
    await _assert_unavailable(client)
