"""`tenure requests` and `tenure audit` commands against a mock API (httpx.MockTransport) and
through a running API: what they send, what they print, their refusals and errors."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.worker import Worker

from api.app import create_app
from api.settings import ApiSettings
from cli import api_calls
from cli.api_session import Session, save_session
from cli.main import main
from domain.access.request import RequestStatus
from tests.support.asgi_server import serving
from tests.support.fake_access_request import FAKE_APPROVER, FakeAccessRequestWorkflow
from tests.support.identities import start_identities
from tests.support.request_views import REQUEST_ID, story_view
from tests.support.temporal_dev import temporal_dev_server
from tests.support.token_issuer import Issuer, token_issuer

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[httpx.Request]]:
    """Route the CLI's API calls to a handler; returns the list of requests it saw."""

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        monkeypatch.setattr(
            api_calls,
            "open_client",
            lambda: httpx.Client(
                transport=httpx.MockTransport(record),
                base_url="http://tenure.test",
                headers={"Authorization": "Bearer session-token"},
            ),
        )
        return seen

    return install


def test_approve_round_trip(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(
        lambda request: httpx.Response(
            200,
            json={
                "request_id": REQUEST_ID,
                "status": "granted",
                "message": "approved: access is being granted",
            },
        )
    )
    assert main(["requests", "approve", REQUEST_ID, "--comment", "fine"]) == 0
    [request] = seen
    assert (request.method, request.url.path) == (
        "POST",
        f"/v1/access/requests/{REQUEST_ID}/decision",
    )
    assert json.loads(request.content) == {"decision": "approve", "comment": "fine"}
    assert request.headers["authorization"] == "Bearer session-token"
    assert "approved: access is being granted (granted)" in capsys.readouterr().out


def test_new_sends_answers_end_and_a_key(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    seen = api(
        lambda request: httpx.Response(
            202, json={"request_id": REQUEST_ID, "status": "submitted", "links": {}}
        )
    )
    code = main(
        [
            "requests",
            "new",
            "production-db-read",
            "--for",
            "E1002",
            "-j",
            "on call",
            "--answer",
            "ticket=INC-7",
            "--answer",
            "environment=eu",
            "--until",
            "2026-12-01T17:00Z",
        ]
    )
    assert code == 0
    [request] = seen
    assert json.loads(request.content) == {
        "package_id": "production-db-read",
        "beneficiary_id": "E1002",
        "justification": "on call",
        "answers": {"ticket": "INC-7", "environment": "eu"},
        "requested_end": "2026-12-01T17:00:00+00:00",
    }
    assert request.headers["idempotency-key"]
    out = capsys.readouterr().out
    assert REQUEST_ID in out and "submitted" in out


def test_show_fetches_and_renders(
    api: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: each story line on one line
    api(lambda request: httpx.Response(200, json=story_view().model_dump(mode="json")))
    assert main(["requests", "show", REQUEST_ID]) == 0
    assert "needed for the incident" in capsys.readouterr().out


def test_a_refusal_is_one_line_and_exit_1(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    api(
        lambda request: httpx.Response(
            403,
            json={
                "type": "about:blank",
                "title": "Not allowed",
                "status": 403,
                "detail": "E3333 is not an approver of stage 'manager'",
            },
            headers={"content-type": "application/problem+json"},
        )
    )
    assert main(["requests", "deny", REQUEST_ID]) == 1
    err = capsys.readouterr().err
    assert err == "tenure: E3333 is not an approver of stage 'manager'\n"


def test_field_errors_are_named(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    api(
        lambda request: httpx.Response(
            422,
            json={
                "title": "Invalid request",
                "status": 422,
                "detail": "Invalid request",
                "errors": [{"field": "answers.ticket", "message": "required"}],
            },
        )
    )
    assert main(["requests", "new", "production-db-read"]) == 1
    assert capsys.readouterr().err == "tenure: Invalid request (answers.ticket: required)\n"


def test_unreachable_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(
        api_calls,
        "open_client",
        lambda: httpx.Client(transport=httpx.MockTransport(refuse), base_url="http://127.0.0.1:9"),
    )
    assert main(["requests", "list"]) == 1
    assert "cannot reach the Tenure API at http://127.0.0.1:9" in capsys.readouterr().err


def test_audit_export_writes_json_lines(
    api: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [json.dumps({"change_id": f"c{i}", "employee_id": "E1"}) for i in range(3)]
    seen = api(
        lambda request: httpx.Response(
            200,
            content=("\n".join(lines) + "\n").encode(),
            headers={"content-type": "application/x-ndjson"},
        )
    )
    target = tmp_path / "changes.jsonl"
    assert (
        main(
            [
                "audit",
                "export",
                "-o",
                str(target),
                "--since",
                "2026-11-01T00:00Z",
                "--employee",
                "E1",
            ]
        )
        == 0
    )
    assert target.read_text().splitlines() == lines
    assert dict(seen[0].url.params) == {"since": "2026-11-01T00:00:00+00:00", "employee_id": "E1"}
    assert "Wrote 3 access change(s)" in capsys.readouterr().err

    assert main(["audit", "export"]) == 0
    assert capsys.readouterr().out.splitlines() == lines


def test_audit_export_refused_leaves_no_file(
    api: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api(
        lambda request: httpx.Response(
            403,
            json={
                "status": 403,
                "title": "Not allowed",
                "detail": "Exporting access changes needs the Tenure.Auditor app role.",
            },
        )
    )
    target = tmp_path / "changes.jsonl"
    assert main(["audit", "export", "-o", str(target)]) == 1
    assert not target.exists() and not list(tmp_path.iterdir())
    assert "Tenure.Auditor" in capsys.readouterr().err


def test_not_logged_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    monkeypatch.setenv("TENURE_HOME", str(tmp_path))
    assert main(["requests", "approvals"]) == 1
    assert capsys.readouterr().err == (
        "tenure: not logged in: run `tenure login --as <employee id>`\n"
    )


# ---- through a running API -----------------------------------------------------------------------

REQUESTER, STRANGER = "E1001", "E3333"


@pytest.fixture(scope="module")
async def live_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Issuer]]:
    """The API served over HTTP, with a real token issuer and the stand-in request workflow."""
    queue = f"requests-cli-{uuid.uuid4().hex[:8]}"
    async with (
        temporal_dev_server() as temporal,
        Worker(temporal.client, task_queue=queue, workflows=[FakeAccessRequestWorkflow]),
        token_issuer([REQUESTER, STRANGER, FAKE_APPROVER]) as issuer,
    ):
        await start_identities(temporal.client, [REQUESTER, STRANGER, FAKE_APPROVER])
        settings = ApiSettings(
            intake_token="intake",
            task_queue=queue,
            tokens=issuer.settings,
            access_record_db=tmp_path_factory.mktemp("record") / "access-record.db",
        )
        async with serving(create_app(settings, client=temporal.client)) as url:
            yield url, issuer


async def tenure_as(live: tuple[str, Issuer], home: Path, employee_id: str, *argv: str) -> int:
    """Run `tenure ...` as if `tenure login --as employee_id` had been run (in a thread: the API
    and the issuer serve from this event loop)."""
    url, issuer = live
    session = Session(
        api_url=url,
        token=await issuer.token(employee_id),
        employee_id=employee_id,
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
    )
    save_session(session, home)
    return await asyncio.to_thread(main, list(argv))


async def test_round_trip_through_the_running_api(
    live_api: tuple[str, Issuer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TENURE_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")

    new = ("requests", "new", "accounts-payable", "-j", "month-end close")
    assert await tenure_as(live_api, tmp_path, REQUESTER, *new) == 0
    [request_id] = re.findall(r"access-request-\S+", capsys.readouterr().out)[:1]

    deny = ("requests", "deny", request_id, "--comment", "not mine to say")
    assert await tenure_as(live_api, tmp_path, STRANGER, *deny) == 1
    assert capsys.readouterr().err == (
        f"tenure: {STRANGER} is not an approver of stage 'manager'\n"
    )

    approve = ("requests", "approve", request_id, "--comment", "ok")
    assert await tenure_as(live_api, tmp_path, FAKE_APPROVER, *approve) == 0
    assert "request granted (granted)" in capsys.readouterr().out

    assert await tenure_as(live_api, tmp_path, REQUESTER, "requests", "show", request_id) == 0
    shown = capsys.readouterr().out
    assert "granted" in shown
    assert "Refused attempt" in shown and STRANGER in shown
    assert f"{FAKE_APPROVER}" in shown and "comment: ok" in shown


def test_approvals_print_each_full_id_on_its_own_line(
    api: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The id is what `approve` needs: even a narrow terminal must show it whole.
    monkeypatch.setenv("COLUMNS", "40")
    waiting = story_view().model_copy(
        update={"status": RequestStatus.PENDING_APPROVAL, "waiting_on": story_view().stages[0]}
    )
    summary = json.loads(waiting.model_dump_json(exclude={"story", "stages", "answers"}))
    api(lambda request: httpx.Response(200, json={"requests": [summary], "count": 1}))
    assert main(["requests", "approvals"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert REQUEST_ID in lines
