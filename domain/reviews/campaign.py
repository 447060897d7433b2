"""The contracts of a review campaign: its workflows' inputs, updates and views, and its
activities' inputs and results.

A campaign (one workflow) snapshots its scope into the record, then runs each stage as batch
workflows of at most `batch_size` items, which take the reviewers' decisions as validated updates.
Items never travel through the campaign's own history: they live in the record, and each batch
loads its own, so no history grows with the number of items beyond a batch.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.reviews.definition import ReviewDefinition
from domain.reviews.items import ItemDecision, Outcome, Recommended, ReviewerItem


class ReviewContract:
    CAMPAIGN_WORKFLOW = "ReviewCampaignWorkflow"
    BATCH_WORKFLOW = "ReviewBatchWorkflow"
    # Campaign ids: review-<review id>-<when>; a Schedule appends its own timestamp.
    ID_PREFIX = "review-"
    SCHEDULE_PREFIX = "tenure-review-"
    # Campaign work has its own task queue, so a 100k-item campaign never queues ahead of a hire.
    TASK_QUEUE = "tenure-reviews"
    # Batch workflow updates and signals
    DECIDE = "decide"
    ESCALATE = "escalate"
    CLOSE = "close"
    ITEMS = "items"  # query: a reviewer's items in the batch
    # Campaign updates and queries (operators)
    CONFIRM_APPLY = "confirm_apply"
    DENIED_NOW = "denied_now"  # signal from a batch: denials to remove as decided
    END_STAGE = "end_stage"
    PROGRESS = "progress"


# `ApplicationError.type` of a decision or query sent before a batch has loaded its items (the
# API asks again after a moment).
NOT_READY = "ReviewNotReady"
# Its text: a failed query carries only the message, not the type.
NOT_READY_MESSAGE = "the stage is still opening; try again shortly"


def campaign_id(review_id: str, started: datetime) -> str:
    return f"{ReviewContract.ID_PREFIX}{review_id}-{started.strftime('%Y%m%dT%H%M%SZ')}"


def batch_workflow_id(campaign: str, stage: int, batch: int) -> str:
    return f"{campaign}/stage-{stage + 1}/batch-{batch}"


def schedule_id(review_id: str) -> str:
    return f"{ReviewContract.SCHEDULE_PREFIX}{review_id}"


# ---- the campaign workflow ------------------------------------------------------------------------


class CampaignInput(BaseModel):
    review_id: str
    definition: ReviewDefinition
    batch_size: int = Field(1000, ge=1, le=5000)
    # Off only on Temporal's time-skipping test server, which registers no custom attributes.
    record_search_attributes: bool = True


class Phase(StrEnum):
    SNAPSHOT = "snapshot"
    REVIEWING = "reviewing"
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # over the cap, or auto_apply off
    APPLYING = "applying"
    COMPLETED = "completed"
    ABORTED = "aborted"  # an operator refused the removals: nothing was removed


class SnapshotResult(BaseModel):
    items: int
    by_scope: dict[str, int] = Field(default_factory=dict)
    filtered_out: int = 0  # holders the review's filter left out
    birthright_only: int = 0  # held only through birthright, and birthright is not in scope
    missing: list[str] = Field(default_factory=list)  # scopes naming what the tenant lacks


class StageProgress(BaseModel):
    index: int
    name: str
    items: int = 0
    batches: int = 0
    opened_at: datetime | None = None
    ends_at: datetime | None = None
    closed_at: datetime | None = None
    outcomes: dict[str, int] = Field(default_factory=dict)  # Outcome -> items, once closed


class CampaignProgress(BaseModel):
    campaign_id: str
    review_id: str
    name: str
    phase: Phase
    started_at: datetime
    items: int = 0
    stages: list[StageProgress] = Field(default_factory=list)
    current_stage: int | None = None
    snapshot: SnapshotResult | None = None
    removals: int = 0  # denied items whose removal is (or would be) applied
    removal_share: float = 0.0
    cap: float = 0.0
    applied: dict[str, int] = Field(default_factory=dict)  # ApplyState -> items
    dry_run: bool = False
    waiting_for: str = ""  # what an operator must do, when the campaign waits
    finished_at: datetime | None = None


class ConfirmApplyInput(BaseModel):
    actor_id: str
    confirm: bool  # True: apply the removals; False: abort them (nothing is removed)
    reason: str = Field(min_length=1, max_length=2000)


class EndStageInput(BaseModel):
    """An operator ends the open stage now (as if its duration had passed)."""

    actor_id: str
    reason: str = Field(min_length=1, max_length=2000)


class RefusedReviewAttempt(BaseModel):
    actor_id: str
    reason: str
    item_ids: list[str] = Field(default_factory=list)
    at: datetime


# ---- the batch workflow ---------------------------------------------------------------------------


class BatchInput(BaseModel):
    campaign_id: str
    review_id: str
    stage: int
    batch: int
    ends_at: datetime
    definition: ReviewDefinition
    # Carried over a continue-as-new (a batch whose history grew long): its items as decided so
    # far; None on the first run, which loads them from the record.
    items: list[ReviewerItem] | None = None
    # Past this many events the batch continues as new (reviewers deciding item by item); far
    # below Temporal's limits and the campaign's budget of 10,000.
    history_budget: int = Field(4000, ge=20, le=40_000)


class BulkDecision(BaseModel):
    """A reviewer's decision on some of their undecided (or already decided: it changes them)
    items in one batch. `item_ids` empty means every item of theirs that `filter` selects."""

    actor_id: str
    decision: ItemDecision | None = None  # None with accept_recommendations
    accept_recommendations: bool = False  # each item gets its recommendation (approve or deny)
    item_ids: list[str] = Field(default_factory=list, max_length=5000)
    resource: str | None = None  # filter: only items on this resource (ledger key)
    recommendation: Recommended | None = None  # filter: only items with this recommendation
    justification: str = Field("", max_length=2000)


class BulkAnswer(BaseModel):
    decided: int
    outcomes: dict[str, int] = Field(default_factory=dict)


class EscalateInput(BaseModel):
    """Reviewers who have not started: the fallback reviewers join their items."""

    not_started: list[str]
    fallback: list[str]


class DeniedNow(BaseModel):
    """Denials a batch hands to its campaign to remove as decided (apply.when decided)."""

    batch: int
    item_ids: list[str]


class BatchOutcome(BaseModel):
    batch: int
    outcomes: dict[str, int] = Field(default_factory=dict)  # Outcome -> items


class ReviewerItemsQuery(BaseModel):
    reviewer_id: str


# ---- activities ------------------------------------------------------------------------------------


class ReviewActivityNames:
    SNAPSHOT = "reviews.snapshot"
    OPEN_STAGE = "reviews.open_stage"
    LOAD_BATCH = "reviews.load_batch"
    RECORD_DECISIONS = "reviews.record_decisions"
    REMIND = "reviews.remind"
    FIND_NOT_STARTED = "reviews.find_not_started"
    CLOSE_LEAVERS = "reviews.close_leavers"
    PLAN_APPLY = "reviews.plan_apply"
    APPLY_BATCH = "reviews.apply_batch"
    PLAN_ITEMS = "reviews.plan_items"
    RECORD_CAMPAIGN = "reviews.record_campaign"


class SnapshotInput(BaseModel):
    campaign_id: str
    review_id: str
    definition: ReviewDefinition
    started_at: datetime


class OpenStageInput(BaseModel):
    campaign_id: str
    stage: int
    definition: ReviewDefinition
    batch_size: int
    ends_at: datetime  # when the stage closes, for the reviewers' mail


class StageOpened(BaseModel):
    items: int
    batches: int
    without_reviewers: int = 0  # items that got the fallback reviewers (or nobody: kept)


class LoadBatchInput(BaseModel):
    campaign_id: str
    stage: int
    batch: int


class BatchItems(BaseModel):
    items: list[ReviewerItem]


class RecordDecisionsInput(BaseModel):
    campaign_id: str
    stage: int
    batch: int
    items: list[ReviewerItem]  # the decided ones, with outcome and decider


class RemindInput(BaseModel):
    campaign_id: str
    review_name: str
    stage: int
    stage_name: str
    ends_at: datetime
    lead: str  # "2d", for the story


class RemindResult(BaseModel):
    reviewers: int  # reminded: those with undecided items


class NotStartedInput(BaseModel):
    campaign_id: str
    stage: int
    definition: ReviewDefinition


class NotStarted(BaseModel):
    reviewers: list[str]  # had items, decided none
    fallback: list[str]  # resolved fallback reviewers, who were told


class CloseLeaversInput(BaseModel):
    campaign_id: str


class CloseLeaversResult(BaseModel):
    items: int  # items closed as left


class PlanApplyInput(BaseModel):
    campaign_id: str
    definition: ReviewDefinition


class ApplyPlan(BaseModel):
    items: int
    removals: int  # denied, not protected, not left
    protected: int
    left: int
    batches: list[int]  # batches (of the final outcomes) holding removals
    outcomes: dict[Outcome, int] = Field(default_factory=dict)


class PlanItemsInput(BaseModel):
    campaign_id: str
    item_ids: list[str]


class PlannedItems(BaseModel):
    batch: int | None  # the apply batch they are in; None when none is left to remove
    planned: int  # pending removal now
    protected: int = 0


class ApplyBatchInput(BaseModel):
    campaign_id: str
    review_name: str
    batch: int
    dry_run: bool
    # Set when nothing may be removed (an operator aborted): items are closed with this reason.
    not_applied_reason: str | None = None


class ApplyBatchResult(BaseModel):
    applied: dict[str, int] = Field(default_factory=dict)  # ApplyState -> items


class RecordCampaignInput(BaseModel):
    progress: CampaignProgress
