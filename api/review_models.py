"""The bodies the review endpoints take and the answers they give (besides the campaign's own
progress, which they return as the workflow reports it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.inbound import api_text, free_text
from domain.reviews.campaign import CampaignProgress, Phase, RefusedReviewAttempt, StageProgress
from domain.reviews.definition import ReviewId
from domain.reviews.items import (
    ItemDecision,
    Outcome,
    Recommended,
    ReviewerItem,
    ReviewItem,
    StageDecision,
)

# Item ids are `i-` and a digest (activities/reviews/scope.py); nothing else needs to pass.
ItemId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
Reason = Annotated[str, free_text(2000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartReviewBody(_Body):
    review_id: ReviewId = Field(
        description="A review of the policy file (`reviews:`), by its id.", examples=["q1-finance"]
    )


class ReviewDecisionBody(_Body):
    """A decision on some of the caller's items in the open stage. `item_ids` empty: every item
    of the caller's that the filters (`resource`, `recommendation`) select."""

    decision: ItemDecision | None = Field(
        None, description="approve, deny or dont_know; leave out with accept_recommendations."
    )
    accept_recommendations: bool = Field(
        False, description="Each item gets its recommendation (approve, or deny)."
    )
    item_ids: list[ItemId] = Field(default_factory=list, max_length=5000)
    resource: Annotated[str, api_text(300)] | None = Field(
        None,
        min_length=1,
        max_length=300,
        description="Only items on this resource (its ledger key, e.g. `group:Finance`).",
    )
    recommendation: Literal[Recommended.APPROVE, Recommended.DENY] | None = Field(
        None, description="Only items with this recommendation."
    )
    justification: Reason = Field("", max_length=2000)

    @model_validator(mode="after")
    def _one_way_to_decide(self) -> ReviewDecisionBody:
        if (self.decision is None) == (not self.accept_recommendations):
            raise ValueError(
                "give either a decision (approve, deny, dont_know) or accept_recommendations"
            )
        return self


class ConfirmApplyBody(_Body):
    confirm: bool = Field(
        description="true: apply the removals; false: abort them (nothing is removed)."
    )
    reason: Reason = Field(min_length=1, max_length=2000)


class EndStageBody(_Body):
    reason: Reason = Field(min_length=1, max_length=2000)


class StartedCampaign(BaseModel):
    campaign_id: str
    review_id: str
    name: str
    links: dict[str, str] = Field(description="Where to follow and act on the campaign.")


class CampaignSummary(BaseModel):
    """A campaign in a list; its progress in full is at its own URL."""

    campaign_id: str
    review_id: str
    name: str
    phase: Phase
    started_at: datetime
    finished_at: datetime | None = None
    items: int
    current_stage: int | None = None
    waiting_for: str = ""

    @classmethod
    def of(cls, progress: CampaignProgress) -> CampaignSummary:
        return cls.model_validate(progress.model_dump(include=set(cls.model_fields)))


class CampaignList(BaseModel):
    campaigns: list[CampaignSummary]
    count: int


class StageCounts(BaseModel):
    """One stage's items as the record holds them: decided (by a reviewer or a rule) or not."""

    index: int
    items: int = 0
    decided: int = 0
    undecided: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)


class CampaignCounts(BaseModel):
    items: int = 0
    stages: list[StageCounts] = Field(default_factory=list)
    final: dict[str, int] = Field(default_factory=dict, description="Items by final outcome.")
    applied: dict[str, int] = Field(default_factory=dict, description="Items by ApplyState.")


class CampaignView(BaseModel):
    progress: CampaignProgress
    source: Literal["workflow", "record"] = Field(
        description="`workflow`: the running campaign answered; `record`: its last recorded copy "
        "(it has finished, or did not answer)."
    )
    counts: CampaignCounts


class MyStage(BaseModel):
    """A stage of a campaign where the caller has items still to decide."""

    campaign_id: str
    review_id: str
    name: str
    stage: int
    stage_name: str
    ends_at: datetime | None = None
    undecided: int


class MyReviews(BaseModel):
    stages: list[MyStage]
    count: int


class ItemToReview(BaseModel):
    """One of the caller's items in the open stage, with its recommendation and why."""

    item_id: str
    batch: int
    holder_employee_id: str | None = None
    holder_name: str
    holder_kind: str = ""
    resource: str
    resource_name: str = ""
    grants: list[str] = Field(
        default_factory=list, description="Why the holder has it, as the holdings ledger says."
    )
    last_sign_in: datetime | None = None
    recommendation: Recommended
    recommendation_reason: str = ""
    outcome: Outcome | None = None
    decided_by: str | None = None
    justification: str = ""
    decided_at: datetime | None = None
    earlier: list[StageDecision] = Field(
        default_factory=list,
        description="What the stages before this one decided, in order, and why.",
    )

    @classmethod
    def of(cls, batch: int, item: ReviewerItem, full: ReviewItem | None) -> ItemToReview:
        extra = (
            {
                "holder_kind": full.holder_kind.value,
                "resource_name": full.resource_name,
                "grants": full.grants,
                "last_sign_in": full.last_sign_in,
                "recommendation_reason": full.recommendation_reason,
            }
            if full is not None
            else {}
        )
        return cls.model_validate(
            {**item.model_dump(exclude={"reviewers"}), "batch": batch, **extra}
        )


class ReviewerItems(BaseModel):
    campaign_id: str
    stage: StageProgress
    items: list[ItemToReview]
    count: int


class DecisionResult(BaseModel):
    campaign_id: str
    stage: int
    decided: int = Field(description="Items decided (or changed) by this call.")
    outcomes: dict[str, int] = Field(default_factory=dict)
    batches: int = Field(description="Batch workflows the decision went to.")


class RefusalList(BaseModel):
    refusals: list[RefusedReviewAttempt]
    count: int
