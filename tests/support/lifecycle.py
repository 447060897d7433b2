"""What a test worker registers to run identities end to end against the fake directory."""

from __future__ import annotations

from typing import Any

from activities.policy import PolicyActivities
from domain.policy import Policy
from tests.support.fake_directory import FakeDirectory
from workflows.identity import IdentityWorkflow
from workflows.joiner import JoinerWorkflow
from workflows.leaver import LeaverWorkflow, RetentionWorkflow
from workflows.mover import GraceRemovalWorkflow, MoverWorkflow

LIFECYCLE_WORKFLOWS: list[type] = [
    IdentityWorkflow,
    JoinerWorkflow,
    LeaverWorkflow,
    RetentionWorkflow,
    MoverWorkflow,
    GraceRemovalWorkflow,
]


def lifecycle_activities(policy: Policy, directory: FakeDirectory) -> list[Any]:
    plans = PolicyActivities(policy)
    return [
        plans.resolve_joiner_plan,
        plans.resolve_leaver_plan,
        plans.resolve_mover_plan,
        *directory.activities(),
    ]
