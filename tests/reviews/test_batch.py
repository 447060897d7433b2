"""A batch whose reviewers decide item by item continues as new before its history grows long,
and keeps every decision across it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.policy.model import Policy
from domain.reviews.campaign import (
    BatchInput,
    BatchOutcome,
    BulkAnswer,
    BulkDecision,
    ReviewContract,
    batch_workflow_id,
)
from domain.reviews.definition import ReviewDefinition
from domain.reviews.items import HolderKind, ItemDecision, ReviewerItem, ReviewItem
from tests.support.reviews import ReviewWorld, review_world

ITEMS = 12


@pytest.fixture
async def world(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, demo_policy: Policy
) -> AsyncIterator[ReviewWorld]:
    async with review_world(time_skipping_env, tmp_path, demo_policy) as w:
        yield w


async def test_item_by_item_decisions_survive_a_continue_as_new(world: ReviewWorld) -> None:
    campaign = "review-batch-test"
    ids = [f"i-{n:02d}" for n in range(ITEMS)]
    world.store.add_review_items(
        campaign,
        [
            ReviewItem(
                item_id=i,
                holder_kind=HolderKind.USER,
                holder_id=f"u-{i}",
                employee_id=f"H{i}",
                holder_name=f"{i}@example.com",
                resource="group:Finance",
                resource_name="Finance",
                resource_id="g-1",
                scope="groups",
            )
            for i in ids
        ],
    )
    world.store.assign_stage(campaign, 0, [(i, 0, ["R1"]) for i in ids])
    definition = ReviewDefinition.model_validate(
        {
            "name": "Finance",
            "scope": [{"groups": ["Finance"]}],
            "stages": [{"reviewers": [{"people": ["R1"]}], "duration": "7d"}],
        }
    )
    now = await world.env.get_current_time()
    handle = await world.env.client.start_workflow(
        ReviewContract.BATCH_WORKFLOW,
        BatchInput(
            campaign_id=campaign,
            review_id="finance",
            stage=0,
            batch=0,
            ends_at=now + timedelta(days=7),
            definition=definition,
            items=[
                ReviewerItem(item_id=i, holder_employee_id=f"H{i}", reviewers=["R1"]) for i in ids
            ],
            history_budget=30,  # a few decisions' worth, so the test sees it happen
        ),
        id=batch_workflow_id(campaign, 0, 0),
        task_queue=world.queue,
        result_type=BatchOutcome,
    )
    first_run = (await handle.describe()).run_id
    for i in ids:
        decision = ItemDecision.APPROVE if i != ids[-1] else ItemDecision.DONT_KNOW
        await handle.execute_update(
            ReviewContract.DECIDE,
            BulkDecision(actor_id="R1", decision=decision, item_ids=[i]),
            result_type=BulkAnswer,
        )
    described = await world.env.client.get_workflow_handle(handle.id).describe()
    assert described.run_id != first_run, "the batch never continued as new"
    assert described.status is WorkflowExecutionStatus.RUNNING
    assert described.raw_description.workflow_execution_info.history_length <= 40

    outcome = await handle.result()  # follows the runs it continued as
    assert outcome.outcomes == {"approved": ITEMS - 1, "dont_know": 1}
    recorded = {i.item_id: i for i in world.store.load_stage_batch(campaign, 0, 0)}
    assert {i: recorded[i].decided_by for i in ids[:-1]} == {i: "R1" for i in ids[:-1]}
    assert recorded[ids[-1]].outcome is not None and "did not know" in (
        recorded[ids[-1]].decided_by or ""
    )
