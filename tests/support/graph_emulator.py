"""Run the Graph emulator in-process on a free loopback port, and talk to its control surface."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import httpx
import uvicorn

from emulators.graph import create_app


class GraphEmulatorHandle(NamedTuple):
    base_url: str  # ".../v1.0", what GraphSettings.base_url expects
    token: str
    control_url: str  # ".../_emulator"


class EmulatorControl:
    """Thin client for /_emulator: faults, request log, outbox, seed."""

    def __init__(self, handle: GraphEmulatorHandle) -> None:
        self._http = httpx.AsyncClient(
            base_url=handle.control_url, headers={"Authorization": f"Bearer {handle.token}"}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    async def add_fault(self, status: int, path: str, retry_after: int = 1, **extra: Any) -> int:
        spec = {"status": status, "path": path, "retry_after": retry_after, **extra}
        return (await self._call("POST", "/faults", json=spec))["id"]

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")

    async def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return (await self._call("GET", "/requests", params={"since": since}))["value"]

    async def last_seq(self) -> int:
        entries = await self.requests()
        return entries[-1]["seq"] if entries else 0

    async def outbox(self, since: int = 0) -> list[dict[str, Any]]:
        return (await self._call("GET", "/outbox", params={"since": since}))["value"]

    async def seed(
        self, groups: list[dict[str, Any]] | None = None, users: list[dict[str, Any]] | None = None
    ) -> dict[str, dict[str, str]]:
        return await self._call(
            "POST", "/seed", json={"groups": groups or [], "users": users or []}
        )


def _bound_socket() -> socket.socket:
    # Bind port 0 ourselves and hand uvicorn the socket: no window for another process to grab it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def running_graph_emulator(
    db_path: str | None = None, token: str | None = None
) -> AsyncIterator[GraphEmulatorHandle]:
    """Serve the emulator in the current event loop; stop it (and close its database) on exit."""
    token = token or secrets.token_urlsafe(16)
    sock = _bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(db_path, token), log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the startup error
            await asyncio.sleep(0.01)
        root = f"http://127.0.0.1:{port}"
        yield GraphEmulatorHandle(f"{root}/v1.0", token, f"{root}/_emulator")
    finally:
        server.should_exit = True
        await task
        sock.close()
