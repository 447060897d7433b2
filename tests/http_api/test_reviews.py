"""The review API: starting campaigns, progress, a reviewer's items, bulk decisions routed to the
batch workflows that hold them, refusals (recorded), operators' answers, and the report.

Against the package's Temporal dev server, with the real campaign and batch workflows on a worker
of the reviews queue, whose activities are the record's own writes (tests/support/review_record.py:
no Graph, no mail). Tests of routing set up one open stage by hand: the record's campaign, items
and assignments, and batch workflows started with their items.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.settings import ApiSettings
from audit.review_report import FIELDS
from audit.store import AccessRecordStore
from domain.policy.model import Policy
from domain.reviews.campaign import (
    CampaignInput,
    Phase,
    ReviewContract,
    batch_workflow_id,
)
from domain.reviews.definition import ReviewDefinition
from domain.reviews.items import ApplyState, Outcome, Recommended, ReportRow, StageDecision
from tests.support.access_api import (
    ADMIN,
    AUDITOR,
    INTAKE_TOKEN,
    LIST_APPROVER,
    REQUESTER,
    STRANGER,
    asgi_client,
    auth,
    problem,
)
from tests.support.recording_client import RecordingClient
from tests.support.review_record import (
    REVIEW_ID,
    REVIEW_WORKFLOWS,
    RecordReviewActivities,
    new_campaign_id,
    review_item,
    reviews_policy,
    seed_stage,
    start_batches,
)
from tests.support.token_issuer import Issuer

REVIEWS = "/v1/reviews"
MANAGER = REQUESTER  # reviews the items of the people below as their manager
OTHER_REVIEWER = LIST_APPROVER
RETIRED = "retired"  # a review no longer in the policy: the API cannot check ahead of the batches

T = TypeVar("T")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return reviews_policy()


@pytest.fixture(scope="module")
def definition(policy: Policy) -> ReviewDefinition:
    return policy.reviews[REVIEW_ID]


@pytest.fixture(scope="module")
def record(store: AccessRecordStore) -> RecordReviewActivities:
    return RecordReviewActivities(store)


@pytest.fixture(scope="module")
async def review_worker(
    temporal: WorkflowEnvironment, record: RecordReviewActivities
) -> AsyncIterator[None]:
    async with Worker(
        temporal.client,
        task_queue=ReviewContract.TASK_QUEUE,
        workflows=REVIEW_WORKFLOWS,
        activities=record.activities(),
    ):
        yield


@pytest.fixture(scope="module")
def starts(temporal: WorkflowEnvironment) -> RecordingClient:
    return RecordingClient(temporal.client)


@pytest.fixture(scope="module")
def review_app(
    starts: RecordingClient,
    review_worker: None,
    worker: None,
    task_queue: str,
    store: AccessRecordStore,
    issuer: Issuer,
    policy: Policy,
) -> FastAPI:
    settings = ApiSettings(
        intake_token=INTAKE_TOKEN,
        task_queue=task_queue,
        access_record_db=store.path,
        tokens=issuer.settings,
    )
    return create_app(settings, client=starts, policy=policy)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def http(review_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(review_app) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 30) -> T:
    """The first truthy answer of `check`, asked every 0.1 s."""
    deadline = time.monotonic() + within
    while True:
        answer = await check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"still {answer!r} after {within} s")
        await asyncio.sleep(0.1)


async def as_(issuer: Issuer, who: str) -> dict[str, str]:
    return await auth(issuer, who)


def payroll_and_finance() -> list[list[tuple[Any, list[str]]]]:
    """Two batches: the manager reviews items in both; another reviewer one item of batch 1."""
    return [
        [
            (review_item("H3001", "group:Finance", reason="signed in 2 day(s) ago"), [MANAGER]),
            (review_item("H3002", "group:Payroll", recommendation=Recommended.DENY), [MANAGER]),
        ],
        [
            (review_item("H3003", "group:Finance"), [MANAGER]),
            (review_item("H3004", "group:Payroll"), [MANAGER]),
            (review_item("H3005", "group:Finance"), [OTHER_REVIEWER]),
        ],
    ]


async def open_stage(
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
    definition: ReviewDefinition,
    batches: list[list[tuple[Any, list[str]]]],
    *,
    review_id: str = REVIEW_ID,
    label: str = "direct",
    preloaded: bool = True,
) -> str:
    campaign = new_campaign_id(label)
    progress = await asyncio.to_thread(seed_stage, store, campaign, review_id, batches)
    await start_batches(temporal.client, store, progress, definition, preloaded=preloaded)
    return campaign


def decided(store: AccessRecordStore, campaign: str) -> dict[str, tuple[str | None, str | None]]:
    """item id -> (outcome, decided_by) of stage 1, from the record."""
    items = [item for batch in range(2) for item in store.load_stage_batch(campaign, 0, batch)]
    return {i.item_id: (i.outcome.value if i.outcome else None, i.decided_by) for i in items}


# ---- authentication and who may do what ---------------------------------------------------------

ROUTES = [
    ("POST", REVIEWS),
    ("GET", REVIEWS),
    ("GET", f"{REVIEWS}/mine"),
    ("GET", f"{REVIEWS}/review-x-1"),
    ("GET", f"{REVIEWS}/review-x-1/items"),
    ("POST", f"{REVIEWS}/review-x-1/decisions"),
    ("POST", f"{REVIEWS}/review-x-1/confirm"),
    ("POST", f"{REVIEWS}/review-x-1/end-stage"),
    ("GET", f"{REVIEWS}/review-x-1/report"),
    ("GET", f"{REVIEWS}/review-x-1/refusals"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_needs_a_token(http: httpx.AsyncClient, method: str, path: str) -> None:
    answer = await http.request(method, path, json={"review_id": REVIEW_ID})
    assert problem(answer, 401)["detail"].startswith("Missing token")
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_starting_needs_an_admin_and_a_review_of_the_policy(
    http: httpx.AsyncClient, issuer: Issuer, starts: RecordingClient
) -> None:
    before = len(starts.started)
    refused = await http.post(
        REVIEWS, json={"review_id": REVIEW_ID}, headers=await as_(issuer, MANAGER)
    )
    assert "Tenure.Admin" in problem(refused, 403)["detail"]
    unknown = await http.post(
        REVIEWS, json={"review_id": "no-such-review"}, headers=await as_(issuer, ADMIN)
    )
    body = problem(unknown, 422)
    assert body["errors"] == [
        {
            "field": "review_id",
            "message": f"there is no review 'no-such-review' in the policy (reviews: {REVIEW_ID})",
        }
    ]
    malformed = await http.post(
        REVIEWS, json={"review_id": "Not An Id"}, headers=await as_(issuer, ADMIN)
    )
    assert problem(malformed, 422)["errors"][0]["field"] == "review_id"
    assert starts.started[before:] == []


async def test_listing_every_campaign_is_for_auditors(
    http: httpx.AsyncClient, issuer: Issuer, store: AccessRecordStore, definition: ReviewDefinition
) -> None:
    campaign = new_campaign_id("listed")
    await asyncio.to_thread(seed_stage, store, campaign, REVIEW_ID, payroll_and_finance())

    refused = await http.get(REVIEWS, headers=await as_(issuer, MANAGER))
    assert f"{REVIEWS}/mine" in problem(refused, 403)["detail"]
    listed = await http.get(
        REVIEWS, params={"review_id": REVIEW_ID, "limit": 500}, headers=await as_(issuer, AUDITOR)
    )
    assert listed.status_code == 200, listed.text
    [mine] = [c for c in listed.json()["campaigns"] if c["campaign_id"] == campaign]
    assert mine["phase"] == "reviewing" and mine["items"] == 5 and mine["current_stage"] == 0

    # One campaign: its reviewers and auditors see it; to anyone else it does not exist.
    problem(await http.get(f"{REVIEWS}/{campaign}", headers=await as_(issuer, STRANGER)), 404)
    shown = await http.get(f"{REVIEWS}/{campaign}", headers=await as_(issuer, OTHER_REVIEWER))
    assert shown.status_code == 200, shown.text
    view = shown.json()
    assert view["source"] == "record"  # no workflow runs this campaign: the record's copy
    assert view["counts"]["items"] == 5
    assert view["counts"]["stages"] == [
        {"index": 0, "items": 5, "decided": 0, "undecided": 5, "outcomes": {}}
    ]
    problem(await http.get(f"{REVIEWS}/review-none-1", headers=await as_(issuer, AUDITOR)), 404)


# ---- deciding --------------------------------------------------------------------------------------


async def test_decisions_go_to_the_batches_that_hold_the_items(
    http: httpx.AsyncClient,
    issuer: Issuer,
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
    definition: ReviewDefinition,
) -> None:
    campaign = await open_stage(temporal, store, definition, payroll_and_finance())
    manager = await as_(issuer, MANAGER)

    mine = await http.get(f"{REVIEWS}/mine", headers=manager)
    [stage] = [s for s in mine.json()["stages"] if s["campaign_id"] == campaign]
    assert (stage["stage"], stage["stage_name"], stage["undecided"]) == (0, "managers", 4)

    items = await http.get(f"{REVIEWS}/{campaign}/items", headers=manager)
    assert items.status_code == 200, items.text
    listed = {i["item_id"]: i for i in items.json()["items"]}
    assert sorted(listed) == [
        "i-h3001-group-finance",
        "i-h3002-group-payroll",
        "i-h3003-group-finance",
        "i-h3004-group-payroll",
    ]
    first = listed["i-h3001-group-finance"]
    assert (first["batch"], first["recommendation"], first["recommendation_reason"]) == (
        0,
        "approve",
        "signed in 2 day(s) ago",
    )
    assert listed["i-h3002-group-payroll"]["recommendation_reason"] == "no sign-in"
    assert listed["i-h3004-group-payroll"]["batch"] == 1

    # By id, across both batches: each batch takes only its own item.
    by_id = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={
            "decision": "approve",
            "item_ids": ["i-h3001-group-finance", "i-h3003-group-finance"],
        },
        headers=manager,
    )
    assert by_id.status_code == 200, by_id.text
    assert by_id.json() == {
        "campaign_id": campaign,
        "stage": 0,
        "decided": 2,
        "outcomes": {"approved": 2},
        "batches": 2,
    }
    # By filter: every payroll item of the manager's, in whichever batch; a denial says why.
    by_filter = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={"decision": "deny", "resource": "group:Payroll", "justification": "moved teams"},
        headers=manager,
    )
    assert by_filter.status_code == 200, by_filter.text
    assert (by_filter.json()["decided"], by_filter.json()["batches"]) == (2, 2)

    assert await asyncio.to_thread(decided, store, campaign) == {
        "i-h3001-group-finance": ("approved", MANAGER),
        "i-h3002-group-payroll": ("denied", MANAGER),
        "i-h3003-group-finance": ("approved", MANAGER),
        "i-h3004-group-payroll": ("denied", MANAGER),
        "i-h3005-group-finance": (None, None),  # the other reviewer's: untouched
    }
    # Nothing left that the filter selects: nothing to do, and nothing refused.
    nothing = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={"accept_recommendations": True, "resource": "group:Sales"},
        headers=manager,
    )
    assert nothing.json()["decided"] == 0 and nothing.json()["batches"] == 0
    mine = await http.get(f"{REVIEWS}/mine", headers=manager)
    assert campaign not in [s["campaign_id"] for s in mine.json()["stages"]]

    neither = await http.post(f"{REVIEWS}/{campaign}/decisions", json={}, headers=manager)
    assert "accept_recommendations" in problem(neither, 422)["detail"]
    assert await asyncio.to_thread(store.review_refusals, campaign) == []


async def test_a_wrong_reviewer_is_refused_and_the_attempt_recorded(
    http: httpx.AsyncClient,
    issuer: Issuer,
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
    definition: ReviewDefinition,
) -> None:
    campaign = await open_stage(temporal, store, definition, payroll_and_finance())

    stranger = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={"decision": "deny", "justification": "let me", "item_ids": ["i-h3005-group-finance"]},
        headers=await as_(issuer, STRANGER),
    )
    assert problem(stranger, 403)["detail"] == (
        f"{STRANGER} is not a reviewer in this campaign (managers)"
    )
    # A reviewer of the stage, naming an item that is someone else's to review.
    other = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={
            "decision": "approve",
            "item_ids": ["i-h3001-group-finance", "i-h3005-group-finance"],
        },
        headers=await as_(issuer, MANAGER),
    )
    assert problem(other, 403)["detail"] == (
        f"{MANAGER} is not a reviewer of i-h3005-group-finance in this stage"
    )
    # A denial without the justification the review requires: refused whole, in every batch.
    bare = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={"accept_recommendations": True},
        headers=await as_(issuer, MANAGER),
    )
    assert problem(bare, 403)["detail"] == "justification: required for a denial"
    assert await asyncio.to_thread(decided, store, campaign) == {
        f"i-h300{n}-group-{r}": (None, None)
        for n, r in [(1, "finance"), (2, "payroll"), (3, "finance"), (4, "payroll"), (5, "finance")]
    }

    problem(
        await http.get(f"{REVIEWS}/{campaign}/refusals", headers=await as_(issuer, MANAGER)), 403
    )
    shown = await http.get(f"{REVIEWS}/{campaign}/refusals", headers=await as_(issuer, AUDITOR))
    assert shown.status_code == 200, shown.text
    attempts = [(a["actor_id"], a["reason"], a["item_ids"]) for a in shown.json()["refusals"]]
    assert attempts == [
        (
            STRANGER,
            f"{STRANGER} is not a reviewer in this campaign (managers)",
            ["i-h3005-group-finance"],
        ),
        (
            MANAGER,
            f"{MANAGER} is not a reviewer of i-h3005-group-finance in this stage",
            ["i-h3001-group-finance", "i-h3005-group-finance"],
        ),
        (MANAGER, "justification: required for a denial", []),
    ]
    problem(
        await http.get(f"{REVIEWS}/review-none-1/refusals", headers=await as_(issuer, AUDITOR)),
        404,
    )


@pytest.mark.parametrize("review_id", [REVIEW_ID, RETIRED])
async def test_no_one_decides_on_their_own_access(
    http: httpx.AsyncClient,
    issuer: Issuer,
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
    definition: ReviewDefinition,
    review_id: str,
) -> None:
    # The manager is listed as a reviewer of their own item (as a stage misconfigured by hand
    # might have it): the batch's rule still refuses it. For a review gone from the policy the
    # API cannot check first, and the batch workflow's validator is the one that refuses.
    own = review_item(MANAGER, "group:Finance")
    batches = [[(review_item("H3101", "group:Finance"), [MANAGER]), (own, [MANAGER])]]
    campaign = await open_stage(temporal, store, definition, batches, review_id=review_id)
    manager = await as_(issuer, MANAGER)
    for body in (
        {"decision": "approve", "item_ids": [own.item_id]},
        {"decision": "approve"},
    ):
        refused = await http.post(f"{REVIEWS}/{campaign}/decisions", json=body, headers=manager)
        assert problem(refused, 403)["detail"] == (
            f"{MANAGER} may not decide on their own access ({own.item_id})"
        )
    attempts = await asyncio.to_thread(store.review_refusals, campaign)
    assert [(a.actor_id, a.item_ids) for a in attempts] == [
        (MANAGER, [own.item_id]),
        (MANAGER, []),
    ]
    # The other item alone is fine.
    fine = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={"decision": "approve", "item_ids": ["i-h3101-group-finance"]},
        headers=manager,
    )
    assert fine.status_code == 200 and fine.json()["decided"] == 1, fine.text


async def test_a_closed_stage_is_409(
    http: httpx.AsyncClient,
    issuer: Issuer,
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
    definition: ReviewDefinition,
) -> None:
    campaign = await open_stage(
        temporal, store, definition, [[(review_item("H3201", "group:Finance"), [MANAGER])]]
    )
    batch = temporal.client.get_workflow_handle(batch_workflow_id(campaign, 0, 0))
    await batch.signal(ReviewContract.CLOSE)
    await batch.result()
    manager = await as_(issuer, MANAGER)
    late = await http.post(
        f"{REVIEWS}/{campaign}/decisions", json={"decision": "approve"}, headers=manager
    )
    assert "closed" in problem(late, 409)["detail"]
    # The batch closed the silent item by the stage's rule, and the record has it so.
    assert await asyncio.to_thread(decided, store, campaign) == {
        "i-h3201-group-finance": ("not_reviewed", "rule (managers): nobody decided → keep")
    }

    # The record says the stage has closed: refused before any batch is asked.
    closed = new_campaign_id("closed")
    await asyncio.to_thread(
        seed_stage,
        store,
        closed,
        REVIEW_ID,
        [[(review_item("H3202", "group:Finance"), [MANAGER])]],
        closed=True,
    )
    refused = await http.post(
        f"{REVIEWS}/{closed}/decisions", json={"decision": "approve"}, headers=manager
    )
    assert (
        problem(refused, 409)["detail"] == "no review stage is open: the campaign is between stages"
    )
    problem(await http.get(f"{REVIEWS}/{closed}/items", headers=manager), 409)
    reasons = [a.reason for a in await asyncio.to_thread(store.review_refusals, campaign)]
    assert reasons == ["this review stage has ended: decisions are closed"]


async def test_a_batch_still_loading_its_items_is_503_then_takes_the_decision(
    http: httpx.AsyncClient,
    issuer: Issuer,
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
    definition: ReviewDefinition,
    record: RecordReviewActivities,
) -> None:
    record.loading.clear()
    try:
        campaign = await open_stage(
            temporal,
            store,
            definition,
            [[(review_item("H3301", "group:Finance"), [MANAGER])]],
            preloaded=False,
        )
        manager = await as_(issuer, MANAGER)
        started = time.monotonic()
        waiting = await http.post(
            f"{REVIEWS}/{campaign}/decisions", json={"decision": "approve"}, headers=manager
        )
        assert "retry in a few seconds" in problem(waiting, 503)["detail"]
        assert waiting.headers["retry-after"] == "5"
        assert time.monotonic() - started >= 2.5  # asked again for about 3 s first
    finally:
        record.loading.set()
    taken = await http.post(
        f"{REVIEWS}/{campaign}/decisions", json={"decision": "approve"}, headers=manager
    )
    assert taken.status_code == 200 and taken.json()["decided"] == 1, taken.text


# ---- a campaign from start to report ----------------------------------------------------------


async def test_a_campaign_started_by_hand_runs_to_its_report(
    http: httpx.AsyncClient,
    issuer: Issuer,
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
    record: RecordReviewActivities,
    definition: ReviewDefinition,
) -> None:
    record.items[REVIEW_ID] = [
        review_item("H4001", "group:Finance", manager=MANAGER, recommendation=Recommended.DENY),
        review_item("H4002", "group:Finance", manager=MANAGER),
        review_item("H4003", "group:Finance", manager=MANAGER),
        review_item("H4004", "group:Finance", manager=MANAGER),
    ]
    admin, manager = await as_(issuer, ADMIN), await as_(issuer, MANAGER)
    started = await http.post(REVIEWS, json={"review_id": REVIEW_ID}, headers=admin)
    assert started.status_code == 202, started.text
    campaign = started.json()["campaign_id"]
    assert campaign.startswith(f"review-{REVIEW_ID}-")
    assert started.json()["links"]["report"] == f"{REVIEWS}/{campaign}/report"
    handle = temporal.client.get_workflow_handle(campaign)
    described = await handle.describe()
    assert described.task_queue == ReviewContract.TASK_QUEUE
    assert await described.static_summary() == (
        f"Access review: Finance access review ({REVIEW_ID}), started by {ADMIN}"
    )
    async for event in handle.fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        [given] = await temporal.client.data_converter.decode(attrs.input.payloads, [CampaignInput])
        assert given == CampaignInput(review_id=REVIEW_ID, definition=definition)
        break

    async def stage_open() -> dict[str, Any] | None:
        answer = await http.get(f"{REVIEWS}/{campaign}", headers=admin)
        if answer.status_code != 200:
            return None  # 503 until the campaign's first workflow task has run
        view = answer.json()
        stage = view["progress"]["stages"][0]
        return view if view["progress"]["phase"] == "reviewing" and stage["batches"] else None

    view = await eventually(stage_open)
    assert view["source"] == "workflow"
    assert view["progress"]["items"] == 4

    # A second start while it runs is refused: its items would be reviewed twice.
    again = await http.post(REVIEWS, json={"review_id": REVIEW_ID}, headers=admin)
    assert campaign in problem(again, 409)["detail"]

    async def my_four() -> list[dict[str, Any]] | None:
        answer = await http.get(f"{REVIEWS}/{campaign}/items", headers=manager)
        return answer.json()["items"] if answer.status_code == 200 else None

    items = await eventually(my_four)
    assert [i["holder_employee_id"] for i in items] == ["H4001", "H4002", "H4003", "H4004"]

    accepted = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={"accept_recommendations": True, "justification": "quarterly check"},
        headers=manager,
    )
    assert accepted.json()["outcomes"] == {"approved": 3, "denied": 1}, accepted.text
    changed = await http.post(
        f"{REVIEWS}/{campaign}/decisions",
        json={"decision": "deny", "item_ids": [items[1]["item_id"]], "justification": "left team"},
        headers=manager,
    )
    assert changed.json()["decided"] == 1, changed.text

    # Operators: only administrators; nothing waits for confirmation while the stage is open.
    not_admin = await http.post(
        f"{REVIEWS}/{campaign}/end-stage", json={"reason": "done"}, headers=manager
    )
    problem(not_admin, 403)
    early = await http.post(
        f"{REVIEWS}/{campaign}/confirm", json={"confirm": True, "reason": "go"}, headers=admin
    )
    assert "nothing waits for confirmation" in problem(early, 409)["detail"]
    ended = await http.post(
        f"{REVIEWS}/{campaign}/end-stage", json={"reason": "everyone has decided"}, headers=admin
    )
    assert ended.status_code == 200, ended.text

    # Two of four denied is 50 %, over the cap of 25 %: the campaign waits for an operator.
    async def waiting() -> dict[str, Any] | None:
        view = (await http.get(f"{REVIEWS}/{campaign}", headers=admin)).json()
        return view if view["progress"]["phase"] == "awaiting_confirmation" else None

    view = await eventually(waiting)
    assert view["progress"]["removals"] == 2 and view["progress"]["removal_share"] == 0.5
    assert "over the cap of 25%" in view["progress"]["waiting_for"]
    assert view["counts"]["stages"][0]["decided"] == 4

    confirmed = await http.post(
        f"{REVIEWS}/{campaign}/confirm",
        json={"confirm": True, "reason": "both confirmed with the manager"},
        headers=admin,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert await handle.result()
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    done = (await http.get(f"{REVIEWS}/{campaign}", headers=admin)).json()
    assert (done["source"], done["progress"]["phase"]) == ("record", "completed")
    assert done["progress"]["applied"] == {"removed": 2}
    late = await http.post(
        f"{REVIEWS}/{campaign}/end-stage", json={"reason": "again"}, headers=admin
    )
    assert "completed" in problem(late, 409)["detail"]

    report = await http.get(f"{REVIEWS}/{campaign}/report", headers=await as_(issuer, AUDITOR))
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["holder"], r["outcome"], r["decided_by"], r["applied"]) for r in rows] == [
        ("h4001@access.example.com", "denied", MANAGER, "removed"),
        ("h4002@access.example.com", "denied", MANAGER, "removed"),
        ("h4003@access.example.com", "approved", MANAGER, "nothing"),
        ("h4004@access.example.com", "approved", MANAGER, "nothing"),
    ]
    assert rows[1]["justification"] == "left team"


# ---- the report -----------------------------------------------------------------------------------


async def test_the_report_is_served_from_the_record_as_csv_and_json_lines(
    http: httpx.AsyncClient, issuer: Issuer, store: AccessRecordStore
) -> None:
    campaign = new_campaign_id("report")
    item = review_item("H5001", "group:Finance", recommendation=Recommended.DENY)
    kept = review_item("H5002", "group:Finance")

    def write() -> None:
        seed_stage(store, campaign, REVIEW_ID, [[(item, [MANAGER]), (kept, [MANAGER])]])
        at = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)
        store.record_stage_decisions(
            campaign,
            0,
            [
                StageDecision(
                    item_id=item.item_id,
                    outcome=Outcome.DENIED,
                    decided_by=MANAGER,
                    justification="no longer needed",
                    decided_at=at,
                )
            ],
        )
        store.finalize_outcomes(campaign, at=at)
        store.plan_removals(campaign)
        store.record_applied(
            campaign, [(item.item_id, ApplyState.REMOVED, "removed from the group", at)]
        )

    await asyncio.to_thread(write)
    auditor = await as_(issuer, AUDITOR)

    as_csv = await http.get(f"{REVIEWS}/{campaign}/report", headers=auditor)
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"] == f'attachment; filename="{campaign}.csv"'
    lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert lines[0] == FIELDS
    rows = [dict(zip(FIELDS, line, strict=True)) for line in lines[1:]]
    assert [(r["item_id"], r["outcome"], r["decided_by"], r["applied"]) for r in rows] == [
        (item.item_id, "denied", MANAGER, "removed"),
        (kept.item_id, "not_reviewed", "rule: nobody decided", "nothing"),
    ]
    assert rows[0]["recommendation_reason"] == "no sign-in"
    assert rows[0]["justification"] == "no longer needed"

    as_jsonl = await http.get(
        f"{REVIEWS}/{campaign}/report", params={"format": "jsonl"}, headers=auditor
    )
    assert as_jsonl.headers["content-type"] == "application/x-ndjson"
    assert as_jsonl.headers["content-disposition"].endswith(f'{campaign}.jsonl"')
    parsed = [ReportRow.model_validate(json.loads(line)) for line in as_jsonl.text.splitlines()]
    assert [r.item_id for r in parsed] == [item.item_id, kept.item_id]
    assert parsed[0].stages[0].decided_by == MANAGER
    assert parsed[0].apply_detail == "removed from the group"

    # Administrators may read it too; reviewers may not; an unknown campaign has none.
    admin = await as_(issuer, ADMIN)
    assert (await http.get(f"{REVIEWS}/{campaign}/report", headers=admin)).status_code == 200
    problem(await http.get(f"{REVIEWS}/{campaign}/report", headers=await as_(issuer, MANAGER)), 403)
    problem(await http.get(f"{REVIEWS}/review-none-1/report", headers=auditor), 404)
    bad = await http.get(f"{REVIEWS}/{campaign}/report", params={"format": "xml"}, headers=auditor)
    problem(bad, 422)


async def test_the_openapi_document_names_every_review_route(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    paths = {path: set(ops) for path, ops in spec["paths"].items() if path.startswith(REVIEWS)}
    assert paths == {
        REVIEWS: {"get", "post"},
        f"{REVIEWS}/mine": {"get"},
        f"{REVIEWS}/{{campaign_id}}": {"get"},
        f"{REVIEWS}/{{campaign_id}}/items": {"get"},
        f"{REVIEWS}/{{campaign_id}}/decisions": {"post"},
        f"{REVIEWS}/{{campaign_id}}/confirm": {"post"},
        f"{REVIEWS}/{{campaign_id}}/end-stage": {"post"},
        f"{REVIEWS}/{{campaign_id}}/report": {"get"},
        f"{REVIEWS}/{{campaign_id}}/refusals": {"get"},
    }
    decisions = spec["paths"][f"{REVIEWS}/{{campaign_id}}/decisions"]["post"]
    assert {"401", "403", "404", "409", "413", "422", "503"} <= set(decisions["responses"])
    assert Phase.AWAITING_CONFIRMATION.value in json.dumps(spec["components"]["schemas"]["Phase"])
