"""One organisation for the PIM workflow tests, hired once for the package (identity ids are
global in the time-skipping namespace; these use P-prefixed ids no other test uses). Each test
takes its own people so their activations and eligibilities never meet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.fake_directory import FakeDirectory
from tests.support.pim import PimHarness, pim_test_policy, pim_worker

STAFF = ["PADMIN", "PAPPROVER", "PSEC", "POWNER"]
PEOPLE = [f"P{i}" for i in range(1, 21)]


@pytest.fixture(scope="package")
async def org(
    time_skipping_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[PimHarness]:
    store = Path(tmp_path_factory.mktemp("pim")) / "record.db"
    async with pim_worker(time_skipping_env, pim_test_policy(), FakeDirectory(), store) as h:
        await h.hire("PBOSS")
        for person in STAFF:
            await h.hire(person, manager_id="PBOSS")
        for person in PEOPLE:
            await h.hire(person, manager_id="PBOSS")
        yield h
