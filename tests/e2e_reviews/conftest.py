"""A local stack of its own for the review end-to-end tests: its policy adds the reviews and the
group they cover to the demo policy, and its directories hold people Tenure did not hire."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from temporalio.client import Client

from connection.temporal import TemporalSettings, connect
from domain.policy.file import DEFAULT_POLICY_PATH
from stack.launcher import LaunchedStack, launched_stack
from tests.support.e2e import Apis

REVIEWS = {
    "e2e-groups": {
        "name": "E2E group and app review",
        "scope": [{"groups": ["Review Finance"]}, {"apps": ["ledger"]}],
        "stages": [
            {
                "reviewers": ["owner"],
                "fallback": [{"people": ["E8002"]}],  # SCIM apps have no owners
                "duration": "14d",
                "reminders": ["2d"],
            }
        ],
        "recommend": {"inactive_days": 30},
        "recurrence": {"every": "quarterly", "start": "2027-01-04"},
        "apply": {"max_removal_share": "25%", "protected": ["BG0001"]},
    },
    "e2e-workloads": {
        "name": "E2E workload review",
        "scope": [{"service_principals": ["E2E Payroll"]}],
        "stages": [{"reviewers": ["owner"], "duration": "7d", "no_response": "recommendation"}],
        "recommend": {"inactive_days": 60},
        "recurrence": {"every": "monthly", "start": "2027-01-01"},
        "apply": {"max_removal_share": 1},
    },
}


def review_policy(directory: Path) -> Path:
    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    policy["groups"] = [*policy["groups"], "Review Finance"]
    policy["reviews"] = REVIEWS
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedStack]:
    home = tmp_path_factory.mktemp("review-stack")
    with launched_stack(home, policy=review_policy(home)) as running:
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
