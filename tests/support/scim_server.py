"""Start a local SCIM target (`python -m emulators.scim`) for a test, and stop it afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import httpx


class ScimServer(NamedTuple):
    base_url: str  # e.g. http://127.0.0.1:PORT/v2
    token: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def running_scim_server(
    db_path: Path | None = None, token: str | None = None, startup_timeout: float = 20.0
) -> AsyncIterator[ScimServer]:
    """Yield (base_url, token) of a SCIM server on a free port; stop it (by its pid) on exit.

    Pass the same `db_path` to two successive calls to test a restart; without one, the data lives
    in a temporary directory removed on exit.
    """
    token = token or secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="tenure-scim-") as tmp:
        db = db_path or Path(tmp) / "scim.db"
        log_path = Path(tmp) / "server.log"
        port = free_port()
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "emulators.scim",
                "--host", "127.0.0.1", "--port", str(port),
                f"--token={token}", "--db", str(db), "--name", "test",
                stdout=log, stderr=log,
            )  # fmt: skip
            try:
                base_url = f"http://127.0.0.1:{port}/v2"
                await _wait_until_serving(base_url, process, log_path, startup_timeout)
                yield ScimServer(base_url, token)
            finally:
                await _stop(process)


async def _wait_until_serving(
    base_url: str, process: asyncio.subprocess.Process, log_path: Path, within: float
) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"SCIM server exited early:\n{_tail(log_path)}")
            with contextlib.suppress(httpx.TransportError):
                # The only endpoint that needs no token (RFC 7643 §5).
                if (await client.get(f"{base_url}/ServiceProviderConfig")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"SCIM server not up in {within}s:\n{_tail(log_path)}")
            await asyncio.sleep(0.1)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=10)
    except TimeoutError:
        process.kill()
        await process.wait()


def _tail(log_path: Path) -> str:
    # Only on the failure path, once: a blocking read is fine here.
    return log_path.read_text(errors="replace")[-4000:]
