"""Access-review campaigns over HTTP: start one, follow its progress, review one's items, decide
them in bulk, answer the campaign's operator questions, and read its report and refused attempts.

The campaign and its batch workflows own the rules: the batches' update validator refuses
non-reviewers, decisions on one's own access and decisions after the close. Here the caller comes
from the verified token only; a decision is routed to the batch workflows that hold the caller's
items (the record knows which), and their refusals become statuses. Every refused decision is
kept in the record with who tried, why and on what. Reports and refusals are read from the
record, so they outlive the workflows.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.access_problems import (
    NOT_AN_IDENTITY,
    UNAUTHENTICATED,
    UNCONFIGURED,
    problem_responses,
    temporal_unavailable,
)
from api.access_services import (
    AUTHENTICATED,
    AccessServices,
    CallerDep,
    StoreDep,
    documented_body,
    json_body,
    services_of,
    temporal_of,
)
from api.caller import Caller
from api.problems import ProblemException
from api.review_models import (
    CampaignCounts,
    CampaignList,
    CampaignSummary,
    CampaignView,
    ConfirmApplyBody,
    DecisionResult,
    EndStageBody,
    ItemToReview,
    MyReviews,
    MyStage,
    RefusalList,
    ReviewDecisionBody,
    ReviewerItems,
    StageCounts,
    StartedCampaign,
    StartReviewBody,
)
from audit.review_report import report_csv, report_jsonl
from audit.store import AccessRecordStore
from domain.approval.contract import DecisionRefusal
from domain.reviews.campaign import (
    NOT_READY,
    NOT_READY_MESSAGE,
    BulkAnswer,
    BulkDecision,
    CampaignInput,
    CampaignProgress,
    ConfirmApplyInput,
    EndStageInput,
    Phase,
    RefusedReviewAttempt,
    ReviewContract,
    ReviewerItemsQuery,
    StageProgress,
    batch_workflow_id,
)
from domain.reviews.campaign import (
    campaign_id as new_campaign_id,
)
from domain.reviews.items import ReviewerItem
from domain.reviews.rules import decision_refusal, targeted
from domain.search_attributes import CAMPAIGN_PHASE, REVIEW_ID

log = logging.getLogger(__name__)

REVIEWS_PREFIX = "/v1/reviews"
TAG_REVIEWS = "Access reviews"
CSV = "text/csv"
NDJSON = "application/x-ndjson"
# /mine reads this many campaigns from the record, newest first: open ones are among the newest.
MINE_SCAN = 200
# A batch still loading its items answers "not ready": asked again after these pauses (about 3 s
# in all), then the caller is told to retry.
NOT_READY_PAUSES = (0.25, 0.5, 1.0, 1.25)
# Query answers that mean "busy now", not "broken": retried like a batch still loading.
_BUSY = (
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
)
# Report lines read from the record per hop to its thread.
REPORT_CHUNK = 500
# Campaign ids are built by `campaign_id` (or a Schedule from the same prefix): anything else is
# not a campaign, and must not let a caller reach another workflow's updates or queries.
_CAMPAIGN_ID = r"^review-[A-Za-z0-9._:-]+$"
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

router = APIRouter(prefix=REVIEWS_PREFIX, tags=[TAG_REVIEWS], dependencies=AUTHENTICATED)

CampaignIdPath = Annotated[
    str,
    Path(
        description="The campaign's id (its workflow id), as `POST /v1/reviews` or "
        "`GET /v1/reviews` give it.",
        examples=["review-q1-finance-20270104T090000Z"],
        max_length=200,
        pattern=_CAMPAIGN_ID,
    ),
]

_READ = {
    "s401": UNAUTHENTICATED,
    "s422": "Invalid campaign id or query",
    "s503": UNCONFIGURED,
}
_ACT = {
    "s401": UNAUTHENTICATED,
    "s404": "No such campaign",
    "s413": "Body too large",
    "s422": "Malformed body",
    "s503": "Not configured, Temporal unreachable, or the campaign did not answer in time "
    "(retry after Retry-After)",
}


# ---- starting and listing ------------------------------------------------------------------------


@router.post(
    "",
    status_code=202,
    response_model=StartedCampaign,
    summary="Start a campaign of a review (administrators)",
    description=(
        "Starts a campaign of one of the policy's reviews now, whatever its recurrence. The "
        "campaign snapshots the review's scope, then opens its stages; follow it at its URL. "
        "Refused (409) while another campaign of the same review still runs."
    ),
    responses=problem_responses(
        s401=UNAUTHENTICATED,
        s403="The caller is not an administrator, or not a Tenure identity",
        s409="A campaign of this review is still running",
        s413="Body too large",
        s422="No such review in the policy, or a malformed body",
        s503=UNCONFIGURED,
    ),
    openapi_extra=documented_body(StartReviewBody),
)
async def start_campaign(
    body: Annotated[StartReviewBody, json_body(StartReviewBody)],
    request: Request,
    caller: CallerDep,
    store: StoreDep,
) -> StartedCampaign:
    _require_admin(caller, "Starting a campaign")
    services = services_of(request)
    definition = services.policy.reviews.get(body.review_id)
    if definition is None:
        known = ", ".join(sorted(services.policy.reviews)) or "none"
        message = f"there is no review {body.review_id!r} in the policy (reviews: {known})"
        raise ProblemException(
            422,
            "Invalid request",
            f"The campaign cannot be started: review_id: {message}",
            errors=[{"field": "review_id", "message": message}],
        )
    client = temporal_of(request)
    running = await _running_campaign_of(store, client, body.review_id)
    if running is not None:
        raise ProblemException(
            409,
            "Campaign running",
            f"Campaign {running} of review {body.review_id!r} is still running; end it before "
            "starting another (its items would be reviewed twice).",
        )
    cid = new_campaign_id(body.review_id, datetime.now(UTC))
    try:
        await client.start_workflow(
            ReviewContract.CAMPAIGN_WORKFLOW,
            CampaignInput(review_id=body.review_id, definition=definition),
            id=cid,
            task_queue=ReviewContract.TASK_QUEUE,
            # Two starts within one second name the same campaign: the second is refused.
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(REVIEW_ID, body.review_id),
                    SearchAttributePair(CAMPAIGN_PHASE, Phase.SNAPSHOT.value),
                ]
            ),
            static_summary=f"Access review: {definition.name} ({body.review_id}), "
            f"started by {caller.employee_id}",
        )
    except WorkflowAlreadyStartedError:
        raise ProblemException(
            409,
            "Campaign running",
            f"Campaign {cid} has just been started; follow it at {REVIEWS_PREFIX}/{cid}.",
        ) from None
    except (RPCError, RuntimeError) as err:
        log.warning("Temporal refused campaign %s: %s", cid, err)
        raise temporal_unavailable(str(err)) from err
    return StartedCampaign(
        campaign_id=cid, review_id=body.review_id, name=definition.name, links=_links(cid)
    )


def _links(cid: str) -> dict[str, str]:
    base = f"{REVIEWS_PREFIX}/{cid}"
    return {
        "self": base,
        "items": f"{base}/items",
        "decisions": f"{base}/decisions",
        "report": f"{base}/report",
    }


async def _running_campaign_of(
    store: AccessRecordStore, client: Client, review_id: str
) -> str | None:
    """A campaign of the review the record has not seen finish and Temporal says still runs."""
    recent = await asyncio.to_thread(store.list_campaigns, review_id=review_id, limit=5)
    for progress in recent:
        if progress.finished_at is not None:
            continue
        try:
            described = await client.get_workflow_handle(progress.campaign_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue  # gone from Temporal: it cannot be running
            raise temporal_unavailable(str(err)) from err
        if described.status is WorkflowExecutionStatus.RUNNING:
            return progress.campaign_id
    return None


@router.get(
    "",
    response_model=CampaignList,
    summary="Every campaign (auditors and administrators)",
    description="Campaigns newest first, as the record last saw them. Reviewers see their own "
    "work at `GET /v1/reviews/mine`.",
    responses=problem_responses(
        **_READ, s403="The caller is neither an auditor nor an administrator"
    ),
)
async def list_campaigns(
    caller: CallerDep,
    store: StoreDep,
    review_id: Annotated[
        str | None,
        Query(description="Only campaigns of this review.", max_length=48, pattern=r"^[a-z0-9-]+$"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CampaignList:
    if not caller.is_auditor:  # administrators count as auditors
        raise ProblemException(
            403,
            "Not allowed",
            "Listing campaigns needs the Tenure.Auditor or Tenure.Admin app role; your own "
            f"items to review are at {REVIEWS_PREFIX}/mine.",
        )
    found = await asyncio.to_thread(store.list_campaigns, review_id=review_id, limit=limit)
    return CampaignList(campaigns=[CampaignSummary.of(p) for p in found], count=len(found))


@router.get(
    "/mine",
    response_model=MyReviews,
    summary="Stages where I have items to decide",
    description="Open stages of recent campaigns in which the caller has undecided items, with "
    "how many.",
    responses=problem_responses(**_READ, s403=NOT_AN_IDENTITY),
)
async def my_reviews(caller: CallerDep, store: StoreDep) -> MyReviews:
    me = caller.employee_id

    def find() -> list[MyStage]:
        mine = []
        for progress in store.list_campaigns(limit=MINE_SCAN):
            stage = open_stage(progress)
            if stage is None:
                continue
            waiting = store.undecided_items_of(progress.campaign_id, stage.index, [me]).get(me)
            if waiting:
                mine.append(
                    MyStage(
                        campaign_id=progress.campaign_id,
                        review_id=progress.review_id,
                        name=progress.name,
                        stage=stage.index,
                        stage_name=stage.name,
                        ends_at=stage.ends_at,
                        undecided=len(waiting),
                    )
                )
        return mine

    stages = await asyncio.to_thread(find)
    return MyReviews(stages=stages, count=len(stages))


# ---- one campaign ----------------------------------------------------------------------------------


@router.get(
    "/{campaign_id}",
    response_model=CampaignView,
    summary="A campaign's progress",
    description=(
        "The campaign's phase, stages, removals against the cap, what was applied and what an "
        "operator must do, from the running workflow (or, once it has finished, the record), "
        "with the record's count of decided and undecided items per stage. Visible to auditors, "
        "administrators and the campaign's reviewers; to anyone else it does not exist (404)."
    ),
    responses=problem_responses(
        **_READ, s403=NOT_AN_IDENTITY, s404="No such campaign visible to the caller"
    ),
)
async def get_campaign(
    campaign_id: CampaignIdPath, request: Request, caller: CallerDep, store: StoreDep
) -> CampaignView:
    progress, source = await campaign_progress(request, store, campaign_id)
    if not caller.is_auditor and not await _reviews_in(store, progress, caller.employee_id):
        raise _campaign_not_found(campaign_id)
    raw = await asyncio.to_thread(store.campaign_counts, campaign_id)
    counts = CampaignCounts(
        items=raw.get("items", 0),
        stages=[
            StageCounts(index=index, **entry)
            for index, entry in sorted(raw.get("stages", {}).items())
        ],
        final=raw.get("final", {}),
        applied=raw.get("applied", {}),
    )
    return CampaignView(progress=progress, source=source, counts=counts)


async def _reviews_in(store: AccessRecordStore, progress: CampaignProgress, me: str) -> bool:
    for stage in progress.stages:
        batches = await asyncio.to_thread(
            store.batches_of_reviewer, progress.campaign_id, stage.index, me
        )
        if batches:
            return True
    return False


@router.get(
    "/{campaign_id}/items",
    response_model=ReviewerItems,
    summary="My items in the open stage",
    description="The caller's items in the campaign's open stage, decided or not, each with its "
    "recommendation and the reason for it. Empty for someone who reviews nothing in it.",
    responses=problem_responses(
        **_READ,
        s403=NOT_AN_IDENTITY,
        s404="No such campaign",
        s409="No stage of the campaign is open",
    ),
)
async def my_items(
    campaign_id: CampaignIdPath, request: Request, caller: CallerDep, store: StoreDep
) -> ReviewerItems:
    progress, _ = await campaign_progress(request, store, campaign_id)
    stage = _require_open_stage(progress)
    batches = await asyncio.to_thread(
        store.batches_of_reviewer, campaign_id, stage.index, caller.employee_id
    )
    held = await _held_items(request, campaign_id, stage.index, batches, caller.employee_id)
    ids = [item.item_id for items in held.values() for item in items]
    full = await asyncio.to_thread(store.review_items, campaign_id, ids)
    listed = sorted(
        (ItemToReview.of(batch, item, full.get(item.item_id)) for batch, item in _each(held)),
        key=lambda i: i.item_id,
    )
    return ReviewerItems(campaign_id=campaign_id, stage=stage, items=listed, count=len(listed))


def _each(held: dict[int, list[ReviewerItem]]) -> Iterator[tuple[int, ReviewerItem]]:
    for batch, items in held.items():
        for item in items:
            yield batch, item


# ---- deciding --------------------------------------------------------------------------------------


@router.post(
    "/{campaign_id}/decisions",
    response_model=DecisionResult,
    summary="Decide my items (one, some, or all of them)",
    description=(
        "Approve, deny or say you don't know, or accept the recommendations, for the caller's "
        "items in the open stage: those named by `item_ids`, or every one of the caller's items "
        "that `resource` and `recommendation` select. A justification may be required (for "
        "denials, or always) by the review. A later decision replaces an earlier one until the "
        "stage closes. The decision is taken whole or refused whole: a refused attempt (not a "
        "reviewer of an item, one's own access, the stage closed) is recorded with who tried "
        "and why."
    ),
    responses=problem_responses(
        **_ACT,
        s403="The caller may not take this decision (the detail says why), or is not a Tenure "
        "identity",
        s409="No stage of the campaign is open, or it has just closed",
    ),
    openapi_extra=documented_body(ReviewDecisionBody),
)
async def decide(
    campaign_id: CampaignIdPath,
    body: Annotated[ReviewDecisionBody, json_body(ReviewDecisionBody)],
    request: Request,
    caller: CallerDep,
    store: StoreDep,
) -> DecisionResult:
    me = caller.employee_id
    bulk = BulkDecision(actor_id=me, **body.model_dump())
    refused = _Refusals(store, campaign_id, bulk)
    progress, _ = await campaign_progress(request, store, campaign_id)
    stage = open_stage(progress)
    if stage is None:
        raise await refused.closed(f"no review stage is open: the campaign is {_phase(progress)}")
    batches = await asyncio.to_thread(store.batches_of_reviewer, campaign_id, stage.index, me)
    if not batches:
        raise await refused.not_allowed(f"{me} is not a reviewer in this campaign ({stage.name})")
    held = await _held_items(request, campaign_id, stage.index, batches, me)
    plan = _route(held, bulk)
    if isinstance(plan, str):
        raise await refused.not_allowed(plan)
    reason = _precheck(services_of(request), progress, stage.index, held, plan)
    if reason is not None:
        raise await refused.not_allowed(reason)
    if not plan:
        # Nothing of the caller's matches the filters: nothing to do, and nothing refused.
        return DecisionResult(campaign_id=campaign_id, stage=stage.index, decided=0, batches=0)

    client = temporal_of(request)
    timeout = services_of(request).update_timeout.total_seconds()
    handles = {
        batch: client.get_workflow_handle(batch_workflow_id(campaign_id, stage.index, batch))
        for batch in plan
    }
    try:
        async with asyncio.timeout(timeout):
            answers = await asyncio.gather(
                *(_decide_in(handles[batch], part) for batch, part in plan.items()),
                return_exceptions=True,
            )
    except TimeoutError:
        raise _did_not_answer(campaign_id, "the decision") from None
    decided, outcomes, failures = _tally(answers)
    if failures:
        raise await _failed(refused, failures, decided, campaign_id)
    return DecisionResult(
        campaign_id=campaign_id,
        stage=stage.index,
        decided=decided,
        outcomes=outcomes,
        batches=len(plan),
    )


def _route(
    held: dict[int, list[ReviewerItem]], bulk: BulkDecision
) -> dict[int, BulkDecision] | str:
    """The part of the decision each batch takes (only batches where it chooses something), or
    why it is refused: an item id the caller does not review in this stage."""
    if bulk.item_ids:
        where = {item.item_id: batch for batch, item in _each(held)}
        strangers = [i for i in dict.fromkeys(bulk.item_ids) if i not in where]
        if strangers:
            listed = ", ".join(strangers[:5]) + (" ..." if len(strangers) > 5 else "")
            return f"{bulk.actor_id} is not a reviewer of {listed} in this stage"
        plan = {}
        for batch in sorted(set(where[i] for i in bulk.item_ids)):
            ids = [i for i in dict.fromkeys(bulk.item_ids) if where[i] == batch]
            plan[batch] = bulk.model_copy(update={"item_ids": ids})
    else:
        plan = {batch: bulk for batch in sorted(held)}
    return {batch: part for batch, part in plan.items() if targeted(held[batch], part)}


def _precheck(
    services: AccessServices,
    progress: CampaignProgress,
    stage: int,
    held: dict[int, list[ReviewerItem]],
    plan: dict[int, BulkDecision],
) -> str | None:
    """The batches' own rule, asked of every batch before any is sent the decision, so one
    batch's refusal (a denial without the justification the review requires, say) never leaves
    the others decided. The batches check again, with the campaign's own definition; this uses
    the policy's, which is the same unless the policy changed during the campaign."""
    definition = services.policy.reviews.get(progress.review_id)
    if definition is None or stage >= len(definition.stages):
        return None
    for batch, part in plan.items():
        items = {item.item_id: item for item in held[batch]}
        reason = decision_refusal(items, part, definition.stages[stage], definition.justification)
        if reason is not None:
            return reason
    return None


async def _decide_in(handle: WorkflowHandle[Any, Any], bulk: BulkDecision) -> BulkAnswer:
    for pause in (*NOT_READY_PAUSES, None):
        try:
            return await handle.execute_update(ReviewContract.DECIDE, bulk, result_type=BulkAnswer)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == NOT_READY and pause:
                await asyncio.sleep(pause)
                continue
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _tally(
    answers: list[BulkAnswer | BaseException],
) -> tuple[int, dict[str, int], list[_Failure]]:
    decided = 0
    outcomes: dict[str, int] = {}
    failures: list[_Failure] = []
    for answer in answers:
        if isinstance(answer, BulkAnswer):
            decided += answer.decided
            for key, n in answer.outcomes.items():
                outcomes[key] = outcomes.get(key, 0) + n
        else:
            failures.append(_classify(answer))
    return decided, outcomes, failures


@dataclass(frozen=True)
class _Failure:
    kind: Literal["not_allowed", "closed", "not_ready", "unavailable", "bug"]
    message: str


def _classify(err: BaseException) -> _Failure:
    if isinstance(err, WorkflowUpdateFailedError):
        cause = err.cause
        if isinstance(cause, ApplicationError):
            if cause.type == DecisionRefusal.NOT_ALLOWED:
                return _Failure("not_allowed", cause.message)
            if cause.type == DecisionRefusal.CLOSED:
                return _Failure("closed", cause.message)
            if cause.type == NOT_READY:
                return _Failure("not_ready", cause.message)
        log.error("a batch failed a decision: %r", cause)
        return _Failure("bug", str(cause))
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        # What Temporal says of a batch that has completed: its stage has closed.
        return _Failure("closed", "this review stage has ended: decisions are closed")
    if isinstance(err, (RPCError, RuntimeError, WorkflowUpdateRPCTimeoutOrCancelledError)):
        return _Failure("unavailable", str(err))
    raise err


async def _failed(
    refused: _Refusals, failures: list[_Failure], decided: int, campaign_id: str
) -> ProblemException:
    """The worst failure as a problem; says so when other batches took their part."""
    partly = (
        f" ({decided} item(s) in other batches were decided before this was refused)"
        if decided
        else ""
    )
    kinds = {f.kind: f for f in failures}
    if "not_allowed" in kinds:
        return await refused.not_allowed(kinds["not_allowed"].message + partly)
    if "closed" in kinds:
        return await refused.closed(kinds["closed"].message + partly)
    if "not_ready" in kinds:
        return _not_ready(campaign_id)
    if "unavailable" in kinds:
        return temporal_unavailable(kinds["unavailable"].message + partly)
    return ProblemException(
        500, "Internal Server Error", "A batch of the campaign failed this decision." + partly
    )


class _Refusals:
    """Refused decisions: each answered with a problem and kept in the record."""

    def __init__(self, store: AccessRecordStore, campaign_id: str, bulk: BulkDecision) -> None:
        self._store = store
        self._campaign_id = campaign_id
        self._bulk = bulk

    async def not_allowed(self, reason: str) -> ProblemException:
        await self._record(reason)
        return ProblemException(403, "Not allowed", reason)

    async def closed(self, reason: str) -> ProblemException:
        await self._record(reason)
        return ProblemException(409, "Stage closed", reason)

    async def _record(self, reason: str) -> None:
        attempt = RefusedReviewAttempt(
            actor_id=self._bulk.actor_id,
            reason=reason,
            item_ids=self._bulk.item_ids,
            at=datetime.now(UTC),
        )
        try:
            await asyncio.to_thread(self._store.record_review_refusal, self._campaign_id, attempt)
        except SQLAlchemyError as err:
            # The refusal still stands; only its trace in the record is missing.
            log.warning(
                "could not record %s's refused decision in %s: %s",
                attempt.actor_id,
                self._campaign_id,
                err,
            )


# ---- operators ----------------------------------------------------------------------------------


@router.post(
    "/{campaign_id}/confirm",
    response_model=CampaignProgress,
    summary="Confirm or abort the removals (administrators)",
    description="Answers a campaign waiting for an operator (its removals are over the cap, or "
    "auto_apply is off): `confirm: true` applies them, `false` aborts them and nothing is "
    "removed. Either way the reason is kept.",
    responses=problem_responses(
        **_ACT,
        s403="The caller is not an administrator, or not a Tenure identity",
        s409="Nothing waits for confirmation (the detail says what the campaign is doing)",
    ),
    openapi_extra=documented_body(ConfirmApplyBody),
)
async def confirm_apply(
    campaign_id: CampaignIdPath,
    body: Annotated[ConfirmApplyBody, json_body(ConfirmApplyBody)],
    request: Request,
    caller: CallerDep,
    store: StoreDep,
) -> CampaignProgress:
    _require_admin(caller, "Confirming or aborting removals")
    update = ConfirmApplyInput(
        actor_id=caller.employee_id, confirm=body.confirm, reason=body.reason
    )
    return await _operate(request, store, campaign_id, ReviewContract.CONFIRM_APPLY, update)


@router.post(
    "/{campaign_id}/end-stage",
    response_model=CampaignProgress,
    summary="End the open stage now (administrators)",
    description="Closes the open stage as if its duration had passed: items nobody decided get "
    "the stage's no-response outcome, and the next stage (or the apply) begins.",
    responses=problem_responses(
        **_ACT,
        s403="The caller is not an administrator, or not a Tenure identity",
        s409="No stage is open, or it is already ending",
    ),
    openapi_extra=documented_body(EndStageBody),
)
async def end_stage(
    campaign_id: CampaignIdPath,
    body: Annotated[EndStageBody, json_body(EndStageBody)],
    request: Request,
    caller: CallerDep,
    store: StoreDep,
) -> CampaignProgress:
    _require_admin(caller, "Ending a stage")
    update = EndStageInput(actor_id=caller.employee_id, reason=body.reason)
    return await _operate(request, store, campaign_id, ReviewContract.END_STAGE, update)


async def _operate(
    request: Request,
    store: AccessRecordStore,
    campaign_id: str,
    update_name: str,
    update: BaseModel,
) -> CampaignProgress:
    handle = temporal_of(request).get_workflow_handle(campaign_id)
    try:
        async with asyncio.timeout(services_of(request).update_timeout.total_seconds()):
            return await handle.execute_update(update_name, update, result_type=CampaignProgress)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == DecisionRefusal.CLOSED:
            raise ProblemException(409, "Not waiting", cause.message) from err
        log.error("update %s of %s failed: %r", update_name, campaign_id, cause)
        raise ProblemException(
            500, "Internal Server Error", "The campaign's workflow failed this action."
        ) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            # Also what Temporal says of a campaign that has finished: tell the two apart.
            recorded = await asyncio.to_thread(store.get_campaign, campaign_id)
            if recorded is not None:
                raise ProblemException(
                    409,
                    "Not waiting",
                    f"Campaign {campaign_id} is {_phase(recorded)}: it takes no more actions.",
                ) from err
            raise _campaign_not_found(campaign_id) from err
        raise temporal_unavailable(str(err)) from err
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise _did_not_answer(campaign_id, update_name) from err
    except RuntimeError as err:
        raise temporal_unavailable(str(err)) from err


# ---- evidence -------------------------------------------------------------------------------------


@router.get(
    "/{campaign_id}/report",
    summary="A campaign's report (auditors and administrators)",
    description=(
        "Every item with its recommendation and reason, each stage's decision and who made it "
        "(or the rule that decided, always named), the justification, and what was applied and "
        "when, or why not. CSV (a header of field names, `stages` as compact text) or JSON lines "
        "(one ReportRow per line). From the record, so it is served after the workflow is gone."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One row per item, in item order",
            "headers": {
                "Content-Disposition": {
                    "description": "attachment, with a file name of the campaign's id",
                    "schema": {"type": "string"},
                }
            },
            "content": {
                CSV: {"schema": {"type": "string"}},
                NDJSON: {"schema": {"$ref": "#/components/schemas/ReportRow"}},
            },
        },
        **problem_responses(
            **_READ,
            s403="The caller is neither an auditor nor an administrator",
            s404="The record holds no such campaign",
        ),
    },
)
async def report(
    campaign_id: CampaignIdPath,
    caller: CallerDep,
    store: StoreDep,
    format_: Annotated[
        Literal["csv", "jsonl"], Query(alias="format", description="csv (default) or jsonl")
    ] = "csv",
) -> StreamingResponse:
    _require_auditor(caller, "Reading a campaign's report")
    await _require_recorded(store, campaign_id)
    rows = store.iter_report(campaign_id)
    lines = report_csv(rows) if format_ == "csv" else report_jsonl(rows)
    name = f"{_FILE_UNSAFE.sub('-', campaign_id)}.{format_}"
    return StreamingResponse(
        _text_chunks(lines),
        media_type=CSV if format_ == "csv" else NDJSON,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _text_chunks(lines: Iterator[str]) -> AsyncIterator[bytes]:
    # The store reads a page per short connection, so each chunk may come from any thread.
    while chunk := await asyncio.to_thread(_take, lines, REPORT_CHUNK):
        yield "".join(chunk).encode()


def _take(lines: Iterator[str], count: int) -> list[str]:
    chunk = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == count:
            break
    return chunk


@router.get(
    "/{campaign_id}/refusals",
    response_model=RefusalList,
    summary="Refused decisions of a campaign (auditors and administrators)",
    description="Every decision the API refused in the campaign, in time order: who tried, why, "
    "and on which items.",
    responses=problem_responses(
        **_READ,
        s403="The caller is neither an auditor nor an administrator",
        s404="The record holds no such campaign",
    ),
)
async def refusals(campaign_id: CampaignIdPath, caller: CallerDep, store: StoreDep) -> RefusalList:
    _require_auditor(caller, "Reading a campaign's refused attempts")
    attempts = await asyncio.to_thread(store.review_refusals, campaign_id)
    if not attempts:
        await _require_recorded(store, campaign_id)
    return RefusalList(refusals=attempts, count=len(attempts))


# ---- shared -----------------------------------------------------------------------------------------


async def campaign_progress(
    request: Request, store: AccessRecordStore, campaign_id: str
) -> tuple[CampaignProgress, Literal["workflow", "record"]]:
    """The running campaign's own progress; the record's copy once it has finished (or when the
    workflow is gone, or does not answer); 404 when neither knows it."""
    recorded = await asyncio.to_thread(store.get_campaign, campaign_id)
    if recorded is not None and recorded.finished_at is not None:
        return recorded, "record"
    services = services_of(request)
    handle = temporal_of(request).get_workflow_handle(campaign_id)
    try:
        live = await handle.query(
            ReviewContract.PROGRESS,
            result_type=CampaignProgress,
            rpc_timeout=services.query_timeout,
        )
        return live, "workflow"
    except RPCError as err:
        if recorded is not None:
            if err.status != RPCStatusCode.NOT_FOUND:
                log.warning("campaign %s did not answer its progress: %s", campaign_id, err)
            return recorded, "record"
        if err.status == RPCStatusCode.NOT_FOUND:
            raise _campaign_not_found(campaign_id) from err
        raise temporal_unavailable(str(err)) from err
    except WorkflowQueryFailedError as err:
        # It has not run its first step yet ("the campaign has not started yet").
        if recorded is not None:
            return recorded, "record"
        raise ProblemException(
            503,
            "Campaign starting",
            f"Campaign {campaign_id} is starting; retry in a few seconds.",
            headers={"Retry-After": "2"},
        ) from err
    except RuntimeError as err:
        if recorded is not None:
            return recorded, "record"
        raise temporal_unavailable(str(err)) from err


def open_stage(progress: CampaignProgress) -> StageProgress | None:
    """The stage taking decisions now: opened, not closed, with batches to decide in."""
    if progress.phase is not Phase.REVIEWING or progress.current_stage is None:
        return None
    if not 0 <= progress.current_stage < len(progress.stages):
        return None
    stage = progress.stages[progress.current_stage]
    if stage.opened_at is None or stage.closed_at is not None or stage.batches == 0:
        return None
    return stage


def _require_open_stage(progress: CampaignProgress) -> StageProgress:
    stage = open_stage(progress)
    if stage is None:
        raise ProblemException(
            409, "Stage closed", f"No review stage is open: the campaign is {_phase(progress)}."
        )
    return stage


def _phase(progress: CampaignProgress) -> str:
    if progress.phase is Phase.REVIEWING:
        return "between stages"
    return progress.phase.value.replace("_", " ")


async def _held_items(
    request: Request, campaign_id: str, stage: int, batches: list[int], me: str
) -> dict[int, list[ReviewerItem]]:
    """The caller's items in each batch the record routes them to, as the batch workflows hold
    them. A batch that has not started, or not loaded its items, answers none yet: it is asked
    again for a few seconds, then the caller is told to retry (503)."""
    client = temporal_of(request)
    timeout = services_of(request).query_timeout
    query = ReviewerItemsQuery(reviewer_id=me)
    held: dict[int, list[ReviewerItem]] = {}

    async def ask(batch: int) -> list[ReviewerItem] | None:
        """The caller's items in one batch; None while it has not loaded them (or started)."""
        handle = client.get_workflow_handle(batch_workflow_id(campaign_id, stage, batch))
        try:
            return await handle.query(
                ReviewContract.ITEMS, query, result_type=list[ReviewerItem], rpc_timeout=timeout
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None  # the campaign has not started this batch yet
            if err.status in _BUSY:
                # A batch busy taking another reviewer's decision: asked again after a pause.
                return None
            raise temporal_unavailable(str(err)) from err
        except WorkflowQueryFailedError as err:
            if NOT_READY_MESSAGE in str(err):
                return None
            raise temporal_unavailable(f"a batch of the campaign cannot answer: {err}") from err
        except RuntimeError as err:
            raise temporal_unavailable(str(err)) from err

    waiting = list(batches)
    for pause in (*NOT_READY_PAUSES, None):
        for batch, items in zip(
            waiting, await asyncio.gather(*(ask(b) for b in waiting)), strict=True
        ):
            if items is not None:
                held[batch] = items
        waiting = [b for b in waiting if b not in held]
        if not waiting:
            return held
        if pause is None:
            break
        await asyncio.sleep(pause)
    log.warning("campaign %s: batches %s of stage %d are not ready", campaign_id, waiting, stage)
    raise _not_ready(campaign_id)


async def _require_recorded(store: AccessRecordStore, campaign_id: str) -> None:
    recorded = await asyncio.to_thread(store.get_campaign, campaign_id)
    if recorded is None and not await asyncio.to_thread(store.count_review_items, campaign_id):
        raise _campaign_not_found(campaign_id)


def _require_admin(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise ProblemException(403, "Not allowed", f"{what} needs the Tenure.Admin app role.")


def _require_auditor(caller: Caller, what: str) -> None:
    if not caller.is_auditor:  # administrators count as auditors
        raise ProblemException(
            403, "Not allowed", f"{what} needs the Tenure.Auditor or Tenure.Admin app role."
        )


def _campaign_not_found(campaign_id: str) -> ProblemException:
    return ProblemException(404, "Not Found", f"There is no campaign {campaign_id!r}.")


def _not_ready(campaign_id: str) -> ProblemException:
    return ProblemException(
        503,
        "Stage opening",
        f"Campaign {campaign_id} is still opening this stage for you; retry in a few seconds.",
        headers={"Retry-After": "5"},
    )


def _did_not_answer(campaign_id: str, what: str) -> ProblemException:
    return ProblemException(
        503,
        "Campaign did not answer",
        f"Campaign {campaign_id} did not take {what} in time (is the reviews worker running?). "
        "It may still take it: read the campaign before trying again.",
        headers={"Retry-After": "5"},
    )
