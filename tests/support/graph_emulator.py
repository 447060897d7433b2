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
from emulators.graph.tokens import DEFAULT_TENANT_ID, EMULATED_USER_GRANT


class GraphEmulatorHandle(NamedTuple):
    base_url: str  # ".../v1.0", what GraphSettings.base_url expects
    token: str
    control_url: str  # ".../_emulator"
    tenant_id: str = DEFAULT_TENANT_ID

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1.0")

    @property
    def issuer(self) -> str:
        """What the emulator puts in `iss` (and TENURE_API_TOKEN_ISSUER must name)."""
        return f"{self.root}/{self.tenant_id}/v2.0"

    @property
    def token_endpoint(self) -> str:
        return f"{self.root}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.root}/{self.tenant_id}/discovery/v2.0/keys"


class EmulatorControl:
    """Thin client for /_emulator: faults, request log, outbox, seed, app roles and tokens."""

    def __init__(self, handle: GraphEmulatorHandle) -> None:
        self._handle = handle
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

    async def set_app_roles(self, employee_id: str, roles: list[str]) -> dict[str, Any]:
        return await self._call("PUT", f"/app-roles/{employee_id}", json={"roles": roles})

    async def app_roles(self) -> dict[str, list[str]]:
        """Employee id -> app roles, as the emulator's token issuer will put them in `roles`."""
        value = (await self._call("GET", "/app-roles"))["value"]
        return {item["employeeId"]: item["roles"] for item in value}

    async def rotate_signing_key(self) -> str:
        return (await self._call("POST", "/signing-keys"))["kid"]

    async def request_token(self, **form: str | int) -> httpx.Response:
        """POST the token endpoint with the control token and `form` as given (errors included)."""
        return await self._http.post(
            self._handle.token_endpoint, data={k: str(v) for k, v in form.items()}
        )

    async def token_for(
        self,
        employee_id: str | None = None,
        *,
        username: str | None = None,
        audience: str = "api://tenure",
        lifetime_seconds: int | None = None,
        mfa: bool = False,
    ) -> str:
        """An access token for a person of the emulated directory (by employee id or UPN);
        `mfa` makes it one from a multifactor sign-in (`amr` ["pwd", "mfa"])."""
        form: dict[str, str | int] = {
            "grant_type": EMULATED_USER_GRANT,
            "scope": f"{audience}/.default",
        }
        if employee_id is not None:
            form["employee_id"] = employee_id
        if username is not None:
            form["username"] = username
        if lifetime_seconds is not None:
            form["lifetime_seconds"] = lifetime_seconds
        if mfa:
            form["mfa"] = "true"
        response = await self.request_token(**form)
        response.raise_for_status()
        return response.json()["access_token"]


def _bound_socket() -> socket.socket:
    # Bind port 0 ourselves and hand uvicorn the socket: no window for another process to grab it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def running_graph_emulator(
    db_path: str | None = None, token: str | None = None, tenant_id: str = DEFAULT_TENANT_ID
) -> AsyncIterator[GraphEmulatorHandle]:
    """Serve the emulator in the current event loop; stop it (and close its database) on exit."""
    token = token or secrets.token_urlsafe(16)
    sock = _bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(db_path, token, tenant_id),
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the startup error
            await asyncio.sleep(0.01)
        root = f"http://127.0.0.1:{port}"
        yield GraphEmulatorHandle(f"{root}/v1.0", token, f"{root}/_emulator", tenant_id)
    finally:
        server.should_exit = True
        await task
        sock.close()
