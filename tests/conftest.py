"""Shared fixtures: the time-skipping Temporal test server and the policy used by workflow tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.policy.file import DEFAULT_POLICY_PATH, load_policy
from domain.policy.model import Policy

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    # The SDK would try to download the server; the venv ships it (docs/platform-notes.md#temporal-binaries-without-downloads).
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(VENV_BIN / "temporal-test-server"),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def demo_policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)
