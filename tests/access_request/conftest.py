"""One organisation for the access request tests, hired once for the package: identity ids are global
in the time-skipping test namespace, so the approval tests and the granted-access tests share it.
Each test uses its own requesters (E1..E26) so their requests and holdings never meet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.access import (
    AccessHarness,
    access_test_policy,
    access_worker,
)
from tests.support.fake_directory import FakeDirectory

# M0 runs the company; M1 manages the requesters E1..; the rest are approvers named by the policy.
TOP = ["M0"]
PEERS = ["M1", "A1", "Q1", "Q2", "Q3", "ALT1", "OWNER", "ADMIN"]
REQUESTERS = [f"E{i}" for i in range(1, 27)]


@pytest.fixture(scope="package")
async def org(
    time_skipping_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AccessHarness]:
    store = Path(tmp_path_factory.mktemp("access")) / "record.db"
    async with access_worker(
        time_skipping_env, access_test_policy(), FakeDirectory(), store
    ) as harness:
        await harness.hire("M0")
        for person in PEERS:
            await harness.hire(person, manager_id="M0")
        for person in REQUESTERS:
            await harness.hire(person, manager_id="M1")
        yield harness
