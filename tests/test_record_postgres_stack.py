"""The worker and the API as separate processes sharing one access record on PostgreSQL.

`tenure stack run` (without its demo) starts with TENURE_ACCESS_RECORD_URL naming a fresh database
of the tests' own PostgreSQL server (`tests/support/postgres.py`); the stack hands that URL to both
of its children, the worker and the API. An access request is submitted and approved through the
API; its story, which only the worker writes, is read back through the API, and found in
PostgreSQL itself, next to the HR event ids the API took. No SQLite record is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import URL, make_url

from audit.schema import hr_events, requests, story_lines
from audit.store import record_url_from_env
from connection.temporal import TemporalSettings, connect
from domain.access.request import RequestStatus
from domain.lifecycle.identity import LifecycleStage
from emulators.graph.tokens import EMULATED_USER_GRANT
from stack.children import tenure_env
from stack.config import StackConfig, StackConfigError
from stack.credentials import load_or_create_credentials
from stack.launcher import LaunchedStack, launched_stack
from tests.support.e2e import Apis, hire, identity, wait_all_applied, wait_until
from tests.support.postgres import PostgresServer, postgres  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e

REQUESTS = "/v1/access/requests"
PACKAGE = "accounts-payable"  # demo policy: Finance may request; one stage, the manager approves
MANAGER, REQUESTER = "E8300", "E8301"
HIRES = [
    hire(MANAGER, department="Finance", job_title="Finance Manager", location="London"),
    hire(REQUESTER, department="Finance", job_title="Accounts Clerk", manager_id=MANAGER),
]


@pytest.fixture(scope="module")
def record(postgres: PostgresServer) -> Iterator[URL]:  # noqa: F811 (the fixture)
    url = postgres.create_database("tenure_stack")
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, record: URL) -> Iterator[LaunchedStack]:
    env = {"TENURE_ACCESS_RECORD_URL": record.render_as_string(hide_password=False)}
    with launched_stack(tmp_path_factory.mktemp("stack"), extra_env=env) as running:
        yield running


class Caller:
    """The API as one person: a token from the Graph emulator's token endpoint."""

    def __init__(self, apis: Apis, employee_id: str) -> None:
        self.apis, self.employee_id = apis, employee_id
        self.token: str | None = None

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.token is None:
            answer = await self.apis.control.post(
                self.apis.info["graph"]["token_endpoint"],
                data={
                    "grant_type": EMULATED_USER_GRANT,
                    "employee_id": self.employee_id,
                    "scope": f"{self.apis.info['api']['token_audience']}/.default",
                },
            )
            assert answer.status_code == 200, answer.text
            self.token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {self.token}"}
        return await self.apis.api.request(method, path, headers=headers, **kwargs)

    async def view_when(self, request_id: str, status: RequestStatus) -> dict[str, Any]:
        """The request as the API reads it from the record, once it has `status`."""
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            answer = await self.call("GET", f"{REQUESTS}/{request_id}")
            assert answer.status_code == 200, answer.text
            seen.update(answer.json())
            return seen["status"] == status.value and (
                status is not RequestStatus.PENDING_APPROVAL or bool(seen.get("waiting_on"))
            )

        await wait_until(reached, 30, f"{request_id} to be {status.value}")
        return seen


@pytest.fixture(scope="module")
async def apis(stack: LaunchedStack) -> AsyncIterator[Apis]:
    views = Apis(stack.info())
    yield views
    await views.aclose()


async def test_a_request_decided_through_the_api_is_read_back_from_the_postgresql_record(
    stack: LaunchedStack, apis: Apis, record: URL
) -> None:
    info = stack.info()["temporal"]
    temporal = await connect(TemporalSettings(address=info["address"], namespace=info["namespace"]))
    posted = await apis.post_events(HIRES)
    assert posted.status_code == 202, posted.text
    await wait_all_applied(temporal, HIRES, timeout_s=60)

    async def all_active() -> bool:
        for event in HIRES:
            state = await identity(temporal, event["worker"]["employee_id"])
            if state is None or state.stage is not LifecycleStage.ACTIVE:
                return False
        return True

    await wait_until(all_active, 30, "the hires to be active")
    requester, manager = Caller(apis, REQUESTER), Caller(apis, MANAGER)

    submitted = await requester.call(
        "POST", REQUESTS, json={"package_id": PACKAGE, "justification": "supplier invoices"}
    )
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    pending = await requester.view_when(request_id, RequestStatus.PENDING_APPROVAL)
    assert pending["waiting_on"]["approvers"] == [MANAGER]
    waiting = await manager.call("GET", "/v1/access/approvals")
    assert [r["request_id"] for r in waiting.json()["requests"]] == [request_id]

    decided = await manager.call(
        "POST", f"{REQUESTS}/{request_id}/decision", json={"decision": "approve", "comment": "ok"}
    )
    assert decided.status_code == 200, decided.text
    granted = await requester.view_when(request_id, RequestStatus.GRANTED)
    story = granted["story"]
    assert story[0]["kind"] == "submitted"
    assert any(
        e["kind"] == "decision" and e["actor"] == MANAGER and e["data"]["decision"] == "approve"
        for e in story
    )
    assert story[-1]["kind"] == "granted"

    # The story the API served is PostgreSQL's: the worker wrote it there; the API wrote the ids.
    engine = create_engine(record)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(requests.c.status, requests.c.last_seq).where(
                    requests.c.request_id == request_id
                )
            ).one()
            lines = conn.execute(
                select(story_lines.c.seq).where(story_lines.c.request_id == request_id)
            ).scalars()
            event_ids = set(conn.execute(select(hr_events.c.event_id)).scalars())
    finally:
        engine.dispose()
    assert row.status == "granted" and row.last_seq == story[-1]["seq"]
    assert sorted(lines) == [e["seq"] for e in story]
    assert {e["event_id"] for e in HIRES} <= event_ids
    assert not (stack.home / "access-record.db").exists()
    assert stack.pid_of("worker") != stack.pid_of("api")


def test_the_stack_hands_a_record_url_to_the_worker_and_the_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("TENURE_POLICY", "TENURE_ACCESS_RECORD_DB", "TENURE_ACCESS_RECORD_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TENURE_HOME", str(tmp_path / "home"))
    config = StackConfig.from_env()
    creds = load_or_create_credentials(config.home, config.apps)
    default = tenure_env(config, creds)
    assert default["TENURE_ACCESS_RECORD_DB"] == str(config.home / "access-record.db")
    assert "TENURE_ACCESS_RECORD_URL" not in default

    url = "postgresql+psycopg://tenure@127.0.0.1:5432/record"
    monkeypatch.setenv("TENURE_ACCESS_RECORD_URL", url)
    env = tenure_env(StackConfig.from_env(), creds)
    # The URL, and the stack's own SQLite file unset (empty), so the children see only one.
    assert env["TENURE_ACCESS_RECORD_URL"] == url and env["TENURE_ACCESS_RECORD_DB"] == ""
    assert record_url_from_env(env) == make_url(url)

    monkeypatch.setenv("TENURE_ACCESS_RECORD_URL", "mysql://somewhere/record")
    with pytest.raises(StackConfigError, match="TENURE_ACCESS_RECORD_URL="):
        StackConfig.from_env()
