"""`tenure hr import` against the real API (uvicorn on a free port) and a Temporal dev server."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.settings import ApiSettings
from cli import hr_cmd
from connection.temporal import TemporalSettings
from domain.lifecycle.events import identity_workflow_id
from tests.support.temporal_dev import target_host, temporal_dev_server

TOKEN = "import-test-token"


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server() as env:
        yield env


@pytest.fixture(scope="module")
def api_url(
    temporal: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    # The app connects to Temporal itself (lifespan), as `python -m api` does.
    settings = ApiSettings(
        intake_token=TOKEN,
        temporal=TemporalSettings(address=target_host(temporal)),
        access_record_db=tmp_path_factory.mktemp("record") / "access-record.db",
    )
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    # Bind the socket here and hand it over: no window in which another process takes the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tenure")
    hr_cmd.register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["hr", "import", *argv])
    return args.handler(args)


def tag() -> str:
    return uuid.uuid4().hex[:6].upper()


def hire(emp: str, event_id: str, **worker: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "hire",
        "effective_at": "2026-12-01T09:00:00Z",
        "worker": {"employee_id": emp, "given_name": "Ada", "family_name": "Lovelace", **worker},
    }


async def signalled(client: Client, emp: str) -> int:
    count = 0
    async for event in client.get_workflow_handle(identity_workflow_id(emp)).fetch_history_events():
        count += event.HasField("workflow_execution_signaled_event_attributes")
    return count


async def exists(client: Client, emp: str) -> bool:
    try:
        await client.get_workflow_handle(identity_workflow_id(emp)).describe()
    except RPCError:
        return False
    return True


async def test_import_json_lines(
    api_url: str,
    temporal: WorkflowEnvironment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    t = tag()
    emps = [f"J{t}{i}" for i in range(5)]
    events = [hire(emp, f"j-{t}-{i}") for i, emp in enumerate(emps)]
    update = {**events[0], "event_id": f"j-{t}-u", "type": "update"}
    lines = [json.dumps(e) for e in events]
    lines[2:2] = ["", "   "]  # blank lines are skipped
    lines += [json.dumps(update), json.dumps(events[1])]  # the last one repeats line 2
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(lines) + "\n")

    code = await asyncio.to_thread(
        run_cli, str(feed), "--api-url", api_url, "--token", TOKEN, "--batch-size", "2"
    )

    out = capsys.readouterr().out
    assert code == 0, out
    assert "7 read, 6 accepted, 0 rejected, 1 duplicate(s)" in out
    assert f"line 9 (j-{t}-1): same as line 2" in out
    assert await signalled(temporal.client, emps[0]) == 2
    for emp in emps[1:]:
        assert await signalled(temporal.client, emp) == 1


async def test_import_csv_reports_rejections_per_line(
    api_url: str,
    temporal: WorkflowEnvironment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = tag()
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "event_id,type,effective_at,occurred_at,employee_id,given_name,family_name,department,"
        "job_title,manager_id,location,employment_type,attr_clearance\n"
        f"c-{t}-1,hire,2026-12-01T09:00:00Z,,C{t}1,Ada,Lovelace,Finance,Analyst,,London,,secret\n"
        f"c-{t}-2,hire,2026-12-01T09:00:00Z,,C{t}2,Grace,Hopper,IT,,C{t}1,,contractor,\n"
        f"c-{t}-3,hire,2026-12-01T09:00:00,,C{t}3,Alan,Turing,,,,,,\n"  # naive timestamp
        f"c-{t}-4,hire,2026-12-01T09:00:00Z,,C{t}4,,,,,,,,\n"  # hire without names
        f"c-{t}-5,terminate,2026-12-31T17:00:00Z,,C{t}1,,,,,,,,\n"
    )
    # URL and token from the environment this time.
    monkeypatch.setenv("TENURE_API_URL", api_url)
    monkeypatch.setenv("TENURE_INTAKE_TOKEN", TOKEN)

    code = await asyncio.to_thread(run_cli, str(feed))

    out = capsys.readouterr().out
    assert code == 1, out
    assert "5 read, 3 accepted, 2 rejected, 0 duplicate(s)" in out
    assert f"line 4 (c-{t}-3): effective_at: must carry a timezone" in out
    assert (
        f"line 5 (c-{t}-4): (event): a hire needs worker.given_name and worker.family_name" in out
    )
    assert await signalled(temporal.client, f"C{t}1") == 2
    assert await signalled(temporal.client, f"C{t}2") == 1
    assert not await exists(temporal.client, f"C{t}3")
    assert not await exists(temporal.client, f"C{t}4")


async def test_csv_cells_lose_padding_spaces_but_not_line_breaks(
    api_url: str,
    temporal: WorkflowEnvironment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    t = tag()
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "event_id,type,effective_at,employee_id,given_name,family_name\n"
        f"  p-{t}-1 ,hire,2026-12-01T09:00:00Z, P{t}1 ,Ada,Lovelace\n"
        f'p-{t}-2,hire,2026-12-01T09:00:00Z,"P{t}2\n",Grace,Hopper\n'
    )

    code = await asyncio.to_thread(run_cli, str(feed), "--api-url", api_url, "--token", TOKEN)

    out = capsys.readouterr().out
    assert code == 1, out
    assert "2 read, 1 accepted, 1 rejected" in out
    assert f"(p-{t}-2): worker.employee_id: must be 1 to 64 letters A-Z" in out
    assert await signalled(temporal.client, f"P{t}1") == 1


async def test_unparsable_line_sends_nothing(
    api_url: str,
    temporal: WorkflowEnvironment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    t = tag()
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        json.dumps(hire(f"B{t}1", f"b-{t}-1"))
        + "\n"
        + '{"event_id": "broken", "type": \n'
        + json.dumps(hire(f"B{t}2", f"b-{t}-2"))
        + "\n[1, 2]\n"
    )

    code = await asyncio.to_thread(run_cli, str(feed), "--api-url", api_url, "--token", TOKEN)

    err = capsys.readouterr().err
    assert code == 2
    assert "nothing was sent" in err
    assert "line 2: not valid JSON" in err
    assert "line 4: expected one event as a JSON object, got a list" in err
    assert not await exists(temporal.client, f"B{t}1")
    assert not await exists(temporal.client, f"B{t}2")


async def test_conflicting_duplicate_is_rejected_and_wrong_token_stops(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = tag()
    feed = tmp_path / "feed.jsonl"
    first = hire(f"D{t}", f"d-{t}")
    feed.write_text(json.dumps(first) + "\n" + json.dumps(hire(f"D{t}", f"d-{t}", job_title="X")))

    code = await asyncio.to_thread(run_cli, str(feed), "--api-url", api_url, "--token", "nope")

    out = capsys.readouterr().out
    assert code == 1
    assert f"line 2 (d-{t}): event_id repeats line 1 with different content" in out
    assert "the API refused the intake token (401)" in out


async def test_a_later_file_reusing_an_event_id_is_told_which_line(
    api_url: str,
    temporal: WorkflowEnvironment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    t = tag()
    first, second = tmp_path / "monday.jsonl", tmp_path / "tuesday.jsonl"
    first.write_text(json.dumps(hire(f"R{t}", f"r-{t}")) + "\n")
    # Tuesday's export reuses Monday's id for another event, and brings one new event.
    second.write_text(
        json.dumps(hire(f"R{t}", f"r-{t}", department="Audit"))
        + "\n"
        + json.dumps(hire(f"S{t}", f"s-{t}"))
        + "\n"
    )
    args = ("--api-url", api_url, "--token", TOKEN)
    assert await asyncio.to_thread(run_cli, str(first), *args) == 0
    capsys.readouterr()

    code = await asyncio.to_thread(run_cli, str(second), *args)

    out = capsys.readouterr().out
    assert code == 1, out
    assert "2 read, 1 accepted, 1 rejected" in out
    assert f"line 1 (r-{t}): event_id: event_id 'r-{t}' was accepted on" in out
    assert await signalled(temporal.client, f"R{t}") == 1
    assert await signalled(temporal.client, f"S{t}") == 1


def test_missing_endpoint_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENURE_API_URL", raising=False)
    monkeypatch.delenv("TENURE_INTAKE_TOKEN", raising=False)
    monkeypatch.setenv("TENURE_HOME", str(tmp_path / "no-stack"))
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(hire("E1", "e-1")) + "\n")

    assert run_cli(str(feed)) == 2
    err = capsys.readouterr().err
    assert "TENURE_API_URL" in err
    assert "TENURE_INTAKE_TOKEN" in err


def test_endpoint_from_stack_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENURE_API_URL", raising=False)
    monkeypatch.delenv("TENURE_INTAKE_TOKEN", raising=False)
    monkeypatch.setenv("TENURE_HOME", str(tmp_path))
    (tmp_path / "stack.json").write_text(
        json.dumps({"api": {"url": "http://127.0.0.1:1", "intake_token": "from-stack"}})
    )
    assert hr_cmd.resolve_endpoint(None, None) == ("http://127.0.0.1:1", "from-stack")
    assert hr_cmd.resolve_endpoint("http://x", "t") == ("http://x", "t")


def test_unreachable_api_stops_with_what_was_not_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    events = [hr_cmd.SourceEvent(i + 1, hire("U1", f"u-{i}")) for i in range(3)]
    unique, summary = hr_cmd.drop_duplicates(events)
    with httpx.Client(base_url=closed) as http:
        hr_cmd.send_events(http, unique, summary, batch_size=2, retry_delays=(0.0,))
    assert not summary.ok
    assert summary.aborted is not None
    assert "cannot reach the API" in summary.aborted
    assert "3 event(s) not sent" in summary.aborted
