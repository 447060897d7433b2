"""Access-review activities (implemented by activities/reviews/)."""

from __future__ import annotations

from temporalio import activity

from domain.reviews.campaign import (
    ApplyBatchInput,
    ApplyBatchResult,
    ApplyPlan,
    BatchItems,
    CloseLeaversInput,
    CloseLeaversResult,
    LoadBatchInput,
    NotStarted,
    NotStartedInput,
    OpenStageInput,
    PlanApplyInput,
    PlanItemsInput,
    PlannedItems,
    RecordCampaignInput,
    RecordDecisionsInput,
    RemindInput,
    RemindResult,
    ReviewActivityNames,
    SnapshotInput,
    SnapshotResult,
    StageOpened,
)

__all__ = [
    "apply_batch",
    "close_leavers",
    "find_not_started",
    "load_batch",
    "open_stage",
    "plan_apply",
    "plan_items",
    "record_campaign",
    "record_decisions",
    "remind",
    "snapshot",
]


@activity.defn(name=ReviewActivityNames.SNAPSHOT)
async def snapshot(input: SnapshotInput) -> SnapshotResult:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.OPEN_STAGE)
async def open_stage(input: OpenStageInput) -> StageOpened:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.LOAD_BATCH)
async def load_batch(input: LoadBatchInput) -> BatchItems:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.RECORD_DECISIONS)
async def record_decisions(input: RecordDecisionsInput) -> None:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.REMIND)
async def remind(input: RemindInput) -> RemindResult:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.FIND_NOT_STARTED)
async def find_not_started(input: NotStartedInput) -> NotStarted:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.CLOSE_LEAVERS)
async def close_leavers(input: CloseLeaversInput) -> CloseLeaversResult:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.PLAN_APPLY)
async def plan_apply(input: PlanApplyInput) -> ApplyPlan:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.PLAN_ITEMS)
async def plan_items(input: PlanItemsInput) -> PlannedItems:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.APPLY_BATCH)
async def apply_batch(input: ApplyBatchInput) -> ApplyBatchResult:
    raise NotImplementedError


@activity.defn(name=ReviewActivityNames.RECORD_CAMPAIGN)
async def record_campaign(input: RecordCampaignInput) -> None:
    raise NotImplementedError
