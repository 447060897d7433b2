"""The Graph emulator, seeded once for the token tests, and the clients and verifier they use."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.caller import TokenSettings, TokenVerifier
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
    running_graph_emulator,
)
from tests.support.tokens import (
    NO_EMPLOYEE_ID_UPN,
    PEOPLE,
    Fetches,
    upn,
)


@pytest.fixture(scope="package")
async def emulator() -> AsyncIterator[GraphEmulatorHandle]:
    async with running_graph_emulator() as handle:
        control = EmulatorControl(handle)
        users = [{"userPrincipalName": upn(p), **p} for p in PEOPLE]
        users.append({"userPrincipalName": NO_EMPLOYEE_ID_UPN, "displayName": "No employee id"})
        await control.seed(users=users)
        await control.set_app_roles("E1001", ["Tenure.Admin"])
        await control.set_app_roles("E1002", ["Tenure.Auditor"])
        await control.aclose()
        yield handle


@pytest.fixture
async def control(emulator: GraphEmulatorHandle) -> AsyncIterator[EmulatorControl]:
    ctl = EmulatorControl(emulator)
    yield ctl
    await ctl.aclose()


@pytest.fixture
async def fetches() -> AsyncIterator[Fetches]:
    f = Fetches()
    yield f
    await f.http.aclose()


@pytest.fixture
async def verifier(emulator: GraphEmulatorHandle) -> AsyncIterator[TokenVerifier]:
    v = TokenVerifier(TokenSettings(issuer=emulator.issuer, jwks_url=emulator.jwks_url))
    yield v
    await v.aclose()
