"""`tenure login`: a person's token stored for the CLI, its status, expiry and logout."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.caller import TokenVerifier
from cli import login_cmd
from cli.api_session import (
    NotLoggedInError,
    Session,
    authorized_client,
    load_session,
    save_session,
    session_path,
)
from cli.main import main as tenure
from stack.credentials import Credentials, credentials_path
from stack.stack_file import write_stack_file
from tests.support.graph_emulator import (
    GraphEmulatorHandle,
)

# ---- tenure login -------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TENURE_HOME", str(home))
    return home


def fake_stack(home: Path, emulator: GraphEmulatorHandle, **graph_extra: Any) -> None:
    """What a running stack leaves in TENURE_HOME, pointing at the test's emulator."""
    write_stack_file(
        {
            "api": {"url": "http://127.0.0.1:9", "token_audience": "api://tenure"},
            "graph": {"url": emulator.base_url, "control_url": emulator.control_url, **graph_extra},
            "supervisor_pid": os.getpid(),
        },
        home,
    )
    path = credentials_path(home)
    path.write_text(json.dumps(Credentials("intake", emulator.token).to_json()))


async def run(*argv: str) -> int:
    # The emulator serves on this event loop; the CLI's blocking calls must run beside it.
    return await asyncio.to_thread(tenure, list(argv))


async def test_login_stores_a_token_the_api_accepts(
    home: Path,
    emulator: GraphEmulatorHandle,
    verifier: TokenVerifier,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_stack(home, emulator, token_endpoint=emulator.token_endpoint)

    assert await run("login", "--as", "E1001") == 0

    out = capsys.readouterr().out
    assert "Logged in as E1001 (Ada Lovelace, ada.lovelace@" in out
    assert "roles: Tenure.Admin" in out
    path = session_path(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    session = load_session(home)
    assert session is not None
    assert (session.employee_id, session.api_url) == ("E1001", "http://127.0.0.1:9")
    assert timedelta(minutes=55) < session.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    caller = await verifier.caller(f"Bearer {session.token}")
    assert caller.employee_id == "E1001" and caller.is_admin

    with authorized_client(home) as http:
        assert http.headers["Authorization"] == f"Bearer {session.token}"
        assert str(http.base_url).startswith("http://127.0.0.1:9")

    assert await run("login", "--status") == 0
    assert "Logged in as E1001" in capsys.readouterr().out

    assert await run("logout") == 0
    assert "Logged out E1001" in capsys.readouterr().out
    assert not path.exists()
    assert await run("login", "--status") == 1
    assert "Nobody is logged in" in capsys.readouterr().out
    with pytest.raises(NotLoggedInError, match="tenure login --as"):
        authorized_client(home)


async def test_login_finds_the_token_endpoint_of_an_older_stack_file(
    home: Path, emulator: GraphEmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_stack(home, emulator)  # no token_endpoint: derived from the Graph URL
    assert await run("login", "--as", "E1002") == 0
    assert "Logged in as E1002 (Grace Hopper" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("employee_id", "says"),
    [
        ("E1004", "cannot log in as E1004: The user account with employeeId 'E1004'"),
        ("E9999", "cannot log in as E9999: No user with employeeId 'E9999'"),
    ],
)
async def test_login_refusals_are_one_clear_line(
    home: Path,
    emulator: GraphEmulatorHandle,
    capsys: pytest.CaptureFixture[str],
    employee_id: str,
    says: str,
) -> None:
    fake_stack(home, emulator, token_endpoint=emulator.token_endpoint)
    assert await run("login", "--as", employee_id) == 1
    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1
    assert not session_path(home).exists()


async def test_login_without_a_stack(
    home: Path, emulator: GraphEmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("login", "--as", "E1001") == 1
    assert capsys.readouterr().err == "tenure login: no local stack: start it with `make run`\n"

    fake_stack(home, emulator, token_endpoint=emulator.token_endpoint)
    # A stack.json left by a stack that was killed: its supervisor pid is gone.
    write_stack_file({"graph": {"url": emulator.base_url}, "supervisor_pid": 2**22 + 12345}, home)
    assert await run("login", "--as", "E1001") == 1
    assert "no local stack: start it with `make run`" in capsys.readouterr().err


def test_an_expired_login_is_reported(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_session(
        Session(
            api_url="http://127.0.0.1:9",
            token="t",
            employee_id="E1001",
            expires_at=datetime.now(UTC) - timedelta(minutes=1),
        ),
        home,
    )
    assert tenure(["login", "--status"]) == 1
    assert "The login as E1001 expired at" in capsys.readouterr().out
    with pytest.raises(NotLoggedInError, match="expired"):
        authorized_client(home)


def test_token_endpoint_fallback_uses_the_tenant_of_the_stack_file() -> None:
    stack = {"graph": {"url": "http://127.0.0.1:8710/v1.0", "tenant_id": "t-9"}}
    assert login_cmd._token_endpoint(stack) == "http://127.0.0.1:8710/t-9/oauth2/v2.0/token"
