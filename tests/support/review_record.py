"""Review campaigns for API and CLI tests, on the real record and the real workflows.

`RecordReviewActivities` are the review activities a worker runs, reduced to the record: the
snapshot writes items the test gives (by review id) instead of reading Graph, a stage's reviewers
are resolved from the items themselves (manager, owners) and named people, nobody is mailed, and a
removal is marked done without touching Graph or SCIM. Decisions, stage assignments, finalizing,
the removal plan and the campaign's progress are the store's own writes, so what the API reads is
what a real campaign leaves behind.

`seed_stage` and `start_batches` set up one open stage by hand (the record's campaign, its items
and assignments, and batch workflows started with their items), for tests of the API's routing
that need no campaign workflow.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from temporalio import activity
from temporalio.client import Client

from audit.store import AccessRecordStore
from domain.approval.stages import ApproverKind, ApproverSource
from domain.policy.file import DEFAULT_POLICY_PATH
from domain.policy.model import Policy
from domain.reviews.campaign import (
    ApplyBatchInput,
    ApplyBatchResult,
    ApplyPlan,
    BatchInput,
    BatchItems,
    CampaignProgress,
    CloseLeaversInput,
    CloseLeaversResult,
    LoadBatchInput,
    NotStarted,
    NotStartedInput,
    OpenStageInput,
    Phase,
    PlanApplyInput,
    RecordCampaignInput,
    RecordDecisionsInput,
    RemindInput,
    RemindResult,
    ReviewActivityNames,
    ReviewContract,
    SnapshotInput,
    SnapshotResult,
    StageOpened,
    StageProgress,
    batch_workflow_id,
)
from domain.reviews.definition import ReviewDefinition
from domain.reviews.items import (
    ApplyState,
    HolderKind,
    Outcome,
    Recommended,
    ReviewerItem,
    ReviewItem,
)
from domain.reviews.rules import item_reviewers, recorded_decisions
from workflows.reviews.batch import ReviewBatchWorkflow
from workflows.reviews.campaign import ReviewCampaignWorkflow

REVIEW_WORKFLOWS = [ReviewCampaignWorkflow, ReviewBatchWorkflow]
REVIEW_ID = "finance"
POLICY_REVIEWS = f"""
{REVIEW_ID}:
  name: Finance access review
  scope: [{{groups: [Finance]}}]
  stages:
    - name: managers
      reviewers: [manager]
      duration: 14d
  justification: deny
  apply: {{max_removal_share: 0.25}}
"""


def reviews_policy() -> Policy:
    """The demo policy with one review: managers review Finance, denials say why, cap 25 %."""
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    raw["reviews"] = yaml.safe_load(POLICY_REVIEWS)
    return Policy.model_validate(raw)


def review_item(
    holder: str,
    resource: str,
    *,
    manager: str | None = None,
    recommendation: Recommended = Recommended.APPROVE,
    reason: str = "",
    owners: Sequence[str] = (),
) -> ReviewItem:
    """A user's hold on a resource, with a readable id (`i-<holder>-<resource>`)."""
    return ReviewItem(
        item_id=f"i-{holder}-{resource.replace(':', '-')}".lower(),
        holder_kind=HolderKind.USER,
        holder_id=f"obj-{holder}",
        employee_id=holder,
        holder_name=f"{holder.lower()}@access.example.com",
        manager_id=manager,
        resource=resource,
        resource_name=resource.split(":", 1)[-1],
        resource_id=f"id-{resource}",
        scope="groups",
        grants=[f"held outside Tenure ({resource})"],
        owners=list(owners),
        recommendation=recommendation,
        recommendation_reason=reason
        or ("signed in 2 day(s) ago" if recommendation is Recommended.APPROVE else "no sign-in"),
    )


class RecordReviewActivities:
    """The review activities, on the record only; `items` by review id is what snapshots find."""

    def __init__(self, store: AccessRecordStore) -> None:
        self.store = store
        self.items: dict[str, list[ReviewItem]] = {}
        # Cleared, a batch's load waits: the batch stays "not ready" for decisions.
        self.loading = asyncio.Event()
        self.loading.set()

    def activities(self) -> list[Any]:
        return [
            self.snapshot,
            self.open_stage,
            self.load_batch,
            self.record_decisions,
            self.remind,
            self.find_not_started,
            self.close_leavers,
            self.plan_apply,
            self.apply_batch,
            self.record_campaign,
        ]

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    @activity.defn(name=ReviewActivityNames.SNAPSHOT)
    async def snapshot(self, input: SnapshotInput) -> SnapshotResult:
        items = self.items.get(input.review_id, [])
        await self._db(self.store.add_review_items, input.campaign_id, items)
        return SnapshotResult(items=len(items), by_scope={"groups": len(items)})

    @activity.defn(name=ReviewActivityNames.OPEN_STAGE)
    async def open_stage(self, input: OpenStageInput) -> StageOpened:
        stage = input.definition.stages[input.stage]
        rows: list[tuple[str, int, list[str]]] = []
        for page in await self._db(
            list, self.store.iter_stage_candidates(input.campaign_id, input.stage, stage.only)
        ):
            for item in page:
                reviewers, _ = item_reviewers(
                    _resolve(stage.reviewers, item),
                    _resolve(stage.fallback, item),
                    item.employee_id,
                    stage,
                )
                rows.append((item.item_id, len(rows) // input.batch_size, reviewers))
        await self._db(self.store.assign_stage, input.campaign_id, input.stage, rows)
        return StageOpened(items=len(rows), batches=-(-len(rows) // input.batch_size))

    @activity.defn(name=ReviewActivityNames.LOAD_BATCH)
    async def load_batch(self, input: LoadBatchInput) -> BatchItems:
        await self.loading.wait()
        items = await self._db(
            self.store.load_stage_batch, input.campaign_id, input.stage, input.batch
        )
        return BatchItems(items=items)

    @activity.defn(name=ReviewActivityNames.RECORD_DECISIONS)
    async def record_decisions(self, input: RecordDecisionsInput) -> None:
        decisions = recorded_decisions(input.items, datetime.now(UTC))
        await self._db(self.store.record_stage_decisions, input.campaign_id, input.stage, decisions)

    @activity.defn(name=ReviewActivityNames.REMIND)
    async def remind(self, input: RemindInput) -> RemindResult:
        return RemindResult(reviewers=0)

    @activity.defn(name=ReviewActivityNames.FIND_NOT_STARTED)
    async def find_not_started(self, input: NotStartedInput) -> NotStarted:
        return NotStarted(reviewers=[], fallback=[])

    @activity.defn(name=ReviewActivityNames.CLOSE_LEAVERS)
    async def close_leavers(self, input: CloseLeaversInput) -> CloseLeaversResult:
        return CloseLeaversResult(items=0)

    @activity.defn(name=ReviewActivityNames.PLAN_APPLY)
    async def plan_apply(self, input: PlanApplyInput) -> ApplyPlan:
        outcomes = await self._db(self.store.finalize_outcomes, input.campaign_id)
        removals, protected, batches = await self._db(self.store.plan_removals, input.campaign_id)
        items = await self._db(self.store.count_review_items, input.campaign_id)
        return ApplyPlan(
            items=items,
            removals=removals,
            protected=protected,
            left=0,
            batches=batches,
            outcomes={Outcome(k): v for k, v in outcomes.items()},
        )

    @activity.defn(name=ReviewActivityNames.APPLY_BATCH)
    async def apply_batch(self, input: ApplyBatchInput) -> ApplyBatchResult:
        rows = await self._db(self.store.removal_batch, input.campaign_id, input.batch)
        now = datetime.now(UTC)
        results = [
            (item.item_id, ApplyState.REMOVED, "removed (test stand-in)", now)
            if input.not_applied_reason is None and not input.dry_run
            else (item.item_id, ApplyState.NOT_APPLIED, input.not_applied_reason or "dry run", now)
            for item, state in rows
            if state is ApplyState.PENDING
        ]
        await self._db(self.store.record_applied, input.campaign_id, results)
        return ApplyBatchResult(applied=dict(Counter(r[1].value for r in results)))

    @activity.defn(name=ReviewActivityNames.RECORD_CAMPAIGN)
    async def record_campaign(self, input: RecordCampaignInput) -> None:
        await self._db(self.store.record_campaign, input.progress)


def _resolve(sources: Sequence[ApproverSource], item: ReviewItem) -> list[str]:
    """Reviewers the item itself names (its manager, its resource's owners) and named people."""
    found: list[str] = []
    for source in sources:
        if source.kind is ApproverKind.PEOPLE:
            found.extend(source.people)
        elif source.kind is ApproverKind.MANAGER and item.manager_id:
            found.append(item.manager_id)
        elif source.kind is ApproverKind.OWNER:
            found.extend(item.owners)
    return found


# ---- one open stage, set up by hand -----------------------------------------------------------------


def new_campaign_id(label: str) -> str:
    return f"{ReviewContract.ID_PREFIX}{label}-{uuid.uuid4().hex[:10]}"


def seed_stage(
    store: AccessRecordStore,
    campaign: str,
    review_id: str,
    batches: Sequence[Sequence[tuple[ReviewItem, list[str]]]],
    *,
    name: str = "Test review",
    phase: Phase = Phase.REVIEWING,
    closed: bool = False,
) -> CampaignProgress:
    """Record a campaign whose first stage is open with these batches of (item, reviewers)."""
    now = datetime.now(UTC)
    items = [item for batch in batches for item, _ in batch]
    store.add_review_items(campaign, items)
    store.assign_stage(
        campaign,
        0,
        [
            (item.item_id, n, reviewers)
            for n, batch in enumerate(batches)
            for item, reviewers in batch
        ],
    )
    progress = CampaignProgress(
        campaign_id=campaign,
        review_id=review_id,
        name=name,
        phase=phase,
        started_at=now,
        items=len(items),
        current_stage=0,
        stages=[
            StageProgress(
                index=0,
                name="managers",
                items=len(items),
                batches=len(batches),
                opened_at=now,
                ends_at=now + timedelta(days=14),
                closed_at=now if closed else None,
            )
        ],
        cap=0.25,
    )
    store.record_campaign(progress)
    return progress


async def start_batches(
    client: Client,
    store: AccessRecordStore,
    progress: CampaignProgress,
    definition: ReviewDefinition,
    *,
    preloaded: bool = True,
) -> list[str]:
    """Start the stage's batch workflows on the reviews queue: with their items given (so no
    load runs) or, `preloaded=False`, loading them from the record as a campaign's batches do."""
    stage = progress.stages[0]
    ids = []
    for batch in range(stage.batches):
        items: list[ReviewerItem] | None = (
            await asyncio.to_thread(store.load_stage_batch, progress.campaign_id, 0, batch)
            if preloaded
            else None
        )
        workflow_id = batch_workflow_id(progress.campaign_id, 0, batch)
        await client.start_workflow(
            ReviewContract.BATCH_WORKFLOW,
            BatchInput(
                campaign_id=progress.campaign_id,
                review_id=progress.review_id,
                stage=0,
                batch=batch,
                ends_at=stage.ends_at or datetime.now(UTC) + timedelta(days=14),
                definition=definition,
                items=items,
            ),
            id=workflow_id,
            task_queue=ReviewContract.TASK_QUEUE,
        )
        ids.append(workflow_id)
    return ids
