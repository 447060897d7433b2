"""The Graph emulator as the API's token issuer (Entra's stand-in), seeded with the test's people."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

from api.caller import DEFAULT_AUDIENCE, TokenSettings
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
    running_graph_emulator,
)


class Issuer:
    """Tokens for the emulated directory's people; `settings` is what the API must accept."""

    def __init__(self, handle: GraphEmulatorHandle, control: EmulatorControl) -> None:
        self.settings = TokenSettings(issuer=handle.issuer, jwks_url=handle.jwks_url)
        self._control = control

    async def token(self, employee_id: str, *, audience: str = DEFAULT_AUDIENCE) -> str:
        return await self._control.token_for(employee_id, audience=audience)

    async def auth(self, employee_id: str) -> dict[str, str]:
        """Headers of a call by `employee_id` (with the app roles the issuer was given)."""
        return {"Authorization": f"Bearer {await self.token(employee_id)}"}


@asynccontextmanager
async def token_issuer(
    people: Iterable[str], roles: Mapping[str, list[str]] | None = None
) -> AsyncIterator[Issuer]:
    """An in-process emulator knowing `people` (employee ids, enabled) and their app roles."""
    async with running_graph_emulator() as handle:
        control = EmulatorControl(handle)
        try:
            await control.seed(
                users=[
                    {
                        "userPrincipalName": f"{employee_id.lower()}@access.example.com",
                        "displayName": f"Person {employee_id}",
                        "employeeId": employee_id,
                        "accountEnabled": True,
                    }
                    for employee_id in people
                ]
            )
            for employee_id, assigned in (roles or {}).items():
                await control.set_app_roles(employee_id, assigned)
            yield Issuer(handle, control)
        finally:
            await control.aclose()
