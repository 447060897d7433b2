"""One local stack (`tenure stack run` on free ports in a throwaway home) shared by the joiner and
lifecycle end-to-end tests: starting it costs seconds, so the package starts it once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from connection.temporal import TemporalSettings, connect
from stack.launcher import LaunchedStack, launched_stack
from tests.support.e2e import Apis


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedStack]:
    with launched_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="package")
async def temporal(stack: LaunchedStack) -> AsyncIterator[Client]:
    info = stack.info()["temporal"]
    yield await connect(TemporalSettings(address=info["address"], namespace=info["namespace"]))


@pytest.fixture(scope="package")
async def apis(stack: LaunchedStack) -> AsyncIterator[Apis]:
    views = Apis(stack.info())
    yield views
    await views.aclose()
