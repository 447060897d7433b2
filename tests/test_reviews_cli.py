"""`tenure reviews` commands against a mock API (httpx.MockTransport) and through a running API:
what they send, what they print, their refusals and errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.worker import Worker

from api.app import create_app
from api.caller import AUDITOR_ROLE
from api.settings import ApiSettings
from audit.store import AccessRecordStore
from cli import api_calls
from cli.api_session import Session, save_session
from cli.main import main
from cli.reviews_cmd import progress_bar
from domain.reviews.campaign import CampaignProgress, Phase, ReviewContract, StageProgress
from domain.reviews.items import Recommended
from tests.support.asgi_server import serving
from tests.support.identities import start_identities
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
from tests.support.temporal_dev import temporal_dev_server
from tests.support.token_issuer import Issuer, token_issuer

Handler = Callable[[httpx.Request], httpx.Response]
CAMPAIGN = "review-finance-20270104T090000Z"
OPENED = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[httpx.Request]]:
    """Route the CLI's API calls to a handler; returns the list of requests it saw."""

    def install(handler: Handler) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        monkeypatch.setattr(
            api_calls,
            "open_client",
            lambda: httpx.Client(
                transport=httpx.MockTransport(record),
                base_url="http://tenure.test",
                headers={"Authorization": "Bearer session-token"},
            ),
        )
        return seen

    return install


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # each printed line on one line


def answer(body: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=body)


def refusal(status: int, detail: str) -> Handler:
    return lambda request: httpx.Response(
        status,
        json={"type": "about:blank", "title": "Refused", "status": status, "detail": detail},
        headers={"content-type": "application/problem+json"},
    )


def campaign_view(phase: Phase, **progress: Any) -> dict[str, Any]:
    stages = [
        StageProgress(
            index=0,
            name="managers",
            items=40,
            batches=1,
            opened_at=OPENED,
            ends_at=OPENED + timedelta(days=14),
            closed_at=None if phase is Phase.REVIEWING else OPENED + timedelta(days=3),
            outcomes={} if phase is Phase.REVIEWING else {"approved": 25, "denied": 15},
        ),
        StageProgress(index=1, name="owners"),
    ]
    view = CampaignProgress(
        campaign_id=CAMPAIGN,
        review_id=REVIEW_ID,
        name="Finance access review",
        phase=phase,
        started_at=OPENED,
        items=40,
        stages=stages,
        current_stage=0 if phase is Phase.REVIEWING else None,
        cap=0.25,
        **progress,
    )
    decided = 10 if phase is Phase.REVIEWING else 40
    return {
        "progress": view.model_dump(mode="json"),
        "source": "workflow",
        "counts": {
            "items": 40,
            "stages": [
                {
                    "index": 0,
                    "items": 40,
                    "decided": decided,
                    "undecided": 40 - decided,
                    "outcomes": {},
                }
            ],
            "final": {},
            "applied": {},
        },
    }


# ---- what each command sends and prints -------------------------------------------------------


def test_start_posts_the_review_and_names_the_campaign(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = api(
        answer(
            {"campaign_id": CAMPAIGN, "review_id": REVIEW_ID, "name": "Finance", "links": {}},
            202,
        )
    )
    assert main(["reviews", "start", REVIEW_ID]) == 0
    [request] = seen
    assert (request.method, request.url.path) == ("POST", "/v1/reviews")
    assert json.loads(request.content) == {"review_id": REVIEW_ID}
    out = capsys.readouterr().out
    assert CAMPAIGN in out.splitlines()[1] and f"tenure reviews show {CAMPAIGN}" in out


def test_list_and_mine(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    summary = {
        "campaign_id": CAMPAIGN,
        "review_id": REVIEW_ID,
        "name": "Finance access review",
        "phase": "awaiting_confirmation",
        "started_at": OPENED.isoformat(),
        "items": 40,
        "current_stage": None,
        "waiting_for": "15 removal(s) are 37.5% of 40 item(s), over the cap of 25%",
    }
    seen = api(answer({"campaigns": [summary], "count": 1}))
    assert main(["reviews", "list", "--review", REVIEW_ID, "--limit", "5"]) == 0
    assert dict(seen[0].url.params) == {"review_id": REVIEW_ID, "limit": "5"}
    out = capsys.readouterr().out.splitlines()
    assert CAMPAIGN in out
    assert "awaiting confirmation" in out[2] and "40 item(s)" in out[2]
    assert "over the cap of 25%" in out[3]

    mine = {
        "campaign_id": CAMPAIGN,
        "review_id": REVIEW_ID,
        "name": "Finance access review",
        "stage": 0,
        "stage_name": "managers",
        "ends_at": (OPENED + timedelta(days=14)).isoformat(),
        "undecided": 7,
    }
    seen = api(answer({"stages": [mine], "count": 1}))
    assert main(["reviews", "mine"]) == 0
    assert seen[0].url.path == "/v1/reviews/mine"
    out = capsys.readouterr().out
    assert "managers: 7 item(s) undecided" in out and "ends 2027-01-18 09:00 UTC" in out

    api(answer({"stages": [], "count": 0}))
    assert main(["reviews", "mine"]) == 0
    assert capsys.readouterr().out == "Nothing waits for your review.\n"


def test_show_draws_each_stage_with_a_bar_and_says_what_an_operator_must_do(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api(answer(campaign_view(Phase.REVIEWING)))
    assert main(["reviews", "show", CAMPAIGN]) == 0
    out = capsys.readouterr().out
    assert f"1 managers  {progress_bar(10, 40)} 10/40 decided  open ends 2027-01-18" in out
    assert "[█████░░░░░░░░░░░░░░░]" in out
    assert "2 owners  not opened yet" in out
    assert f"tenure reviews end-stage {CAMPAIGN} --reason TEXT" in out

    waiting = campaign_view(
        Phase.AWAITING_CONFIRMATION,
        removals=15,
        removal_share=0.375,
        waiting_for="15 removal(s) are 37.5% of 40 item(s), over the cap of 25%: confirm or abort",
    )
    api(answer(waiting))
    assert main(["reviews", "show", CAMPAIGN]) == 0
    out = capsys.readouterr().out
    assert "awaiting confirmation" in out
    assert f"{progress_bar(40, 40)} 40/40 decided  closed 2027-01-07 09:00 UTC" in out
    assert "(approved 25, denied 15)" in out
    assert "Removals  15 of 40 item(s): 37.5% (cap 25%)  over the cap" in out
    assert "Operator: 15 removal(s) are 37.5%" in out
    assert f"tenure reviews confirm {CAMPAIGN} --reason TEXT" in out
    assert f"tenure reviews confirm {CAMPAIGN} --abort --reason TEXT" in out

    done = campaign_view(
        Phase.COMPLETED,
        removals=15,
        removal_share=0.375,
        applied={"removed": 14, "not_applied": 1},
        finished_at=OPENED + timedelta(days=4),
    )
    api(answer(done))
    assert main(["reviews", "show", CAMPAIGN]) == 0
    out = capsys.readouterr().out
    assert "Applied   not applied 1, removed 14" in out
    assert f"tenure reviews report {CAMPAIGN}" in out

    api(answer(done))
    assert main(["reviews", "show", CAMPAIGN, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["progress"]["applied"] == {
        "removed": 14,
        "not_applied": 1,
    }


def test_progress_bar() -> None:
    assert progress_bar(0, 10, width=10) == "[░░░░░░░░░░]"
    assert progress_bar(5, 10, width=10) == "[█████░░░░░]"
    assert progress_bar(99, 100, width=10) == "[█████████░]"  # full only when all are decided
    assert progress_bar(100, 100, width=10) == "[██████████]"
    assert progress_bar(0, 0, width=4) == "[░░░░]"


def test_items_show_the_recommendation_and_its_reason(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = StageProgress(
        index=0, name="managers", items=2, batches=1, opened_at=OPENED, ends_at=OPENED
    )
    items = [
        {
            "item_id": "i-aaaa",
            "batch": 0,
            "holder_employee_id": "E2001",
            "holder_name": "ann@example.com",
            "resource": "group:Finance",
            "recommendation": "deny",
            "recommendation_reason": "no sign-in for 90 days",
            "outcome": None,
        },
        {
            "item_id": "i-bbbb",
            "batch": 0,
            "holder_employee_id": "E2002",
            "holder_name": "bob@example.com",
            "resource": "app:ledger:reader",
            "recommendation": "approve",
            "recommendation_reason": "signed in 2 day(s) ago",
            "outcome": "approved",
            "decided_by": "E1001",
        },
    ]
    api(
        answer(
            {
                "campaign_id": CAMPAIGN,
                "stage": stage.model_dump(mode="json"),
                "items": items,
                "count": 2,
            }
        )
    )
    assert main(["reviews", "items", CAMPAIGN]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0] == "managers (stage 1), ends 2027-01-04 09:00 UTC: 2 item(s) of yours, 1 undecided"
    )
    assert out[1] == "i-aaaa"
    assert out[2] == (
        "  ann@example.com · group:Finance · recommend deny (no sign-in for 90 days) · undecided"
    )
    assert out[4] == (
        "  bob@example.com · app:ledger:reader · recommend approve (signed in 2 day(s) ago) · "
        "approved by E1001"
    )
    assert f"tenure reviews decide {CAMPAIGN}" in out[5]


@pytest.mark.parametrize(
    ("argv", "body"),
    [
        (
            ["--approve", "--item", "i-1", "--item", "i-2"],
            {"decision": "approve", "item_ids": ["i-1", "i-2"]},
        ),
        (["--deny", "-j", "left"], {"decision": "deny", "justification": "left"}),
        (
            ["--dont-know", "--resource", "group:Sales"],
            {"decision": "dont_know", "resource": "group:Sales"},
        ),
        (
            ["--accept-recommendations", "--recommended", "deny", "-j", "idle"],
            {"accept_recommendations": True, "recommendation": "deny", "justification": "idle"},
        ),
    ],
)
def test_decide_sends_the_decision_and_its_filters(
    api: Any, capsys: pytest.CaptureFixture[str], argv: list[str], body: dict[str, Any]
) -> None:
    seen = api(
        answer(
            {
                "campaign_id": CAMPAIGN,
                "stage": 0,
                "decided": 2,
                "outcomes": {"approved": 1, "denied": 1},
                "batches": 1,
            }
        )
    )
    assert main(["reviews", "decide", CAMPAIGN, *argv]) == 0
    [request] = seen
    assert request.url.path == f"/v1/reviews/{CAMPAIGN}/decisions"
    assert json.loads(request.content) == {"justification": "", **body}
    assert capsys.readouterr().out == "Decided 2 item(s) in stage 1: approved 1, denied 1\n"


def test_decide_needs_exactly_one_way_to_decide(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = api(answer({}))
    for argv in ([], ["--approve", "--deny"]):
        with pytest.raises(SystemExit) as exited:
            main(["reviews", "decide", CAMPAIGN, *argv])
        assert exited.value.code == 2
    assert seen == []
    capsys.readouterr()

    api(answer({"campaign_id": CAMPAIGN, "stage": 0, "decided": 0, "outcomes": {}, "batches": 0}))
    assert main(["reviews", "decide", CAMPAIGN, "--approve", "--resource", "group:None"]) == 0
    assert "Nothing decided" in capsys.readouterr().out


def test_a_refusal_prints_the_problem_and_exits_1(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api(refusal(403, "E3333 is not a reviewer in this campaign (managers)"))
    assert main(["reviews", "decide", CAMPAIGN, "--approve"]) == 1
    assert capsys.readouterr().err == (
        "tenure: E3333 is not a reviewer in this campaign (managers)\n"
    )
    api(refusal(409, "nothing waits for confirmation: the campaign is reviewing"))
    assert main(["reviews", "confirm", CAMPAIGN, "--reason", "go"]) == 1
    assert "nothing waits for confirmation" in capsys.readouterr().err


def test_confirm_abort_and_end_stage(api: Any, capsys: pytest.CaptureFixture[str]) -> None:
    progress = campaign_view(Phase.REVIEWING)["progress"]
    seen = api(answer(progress))
    assert main(["reviews", "confirm", CAMPAIGN, "--reason", "checked"]) == 0
    assert main(["reviews", "confirm", CAMPAIGN, "--abort", "--reason", "too many"]) == 0
    assert main(["reviews", "end-stage", CAMPAIGN, "--reason", "all decided"]) == 0
    assert [(r.url.path, json.loads(r.content)) for r in seen] == [
        (f"/v1/reviews/{CAMPAIGN}/confirm", {"confirm": True, "reason": "checked"}),
        (f"/v1/reviews/{CAMPAIGN}/confirm", {"confirm": False, "reason": "too many"}),
        (f"/v1/reviews/{CAMPAIGN}/end-stage", {"reason": "all decided"}),
    ]
    out = capsys.readouterr().out
    assert "Confirmed: the removals are being applied." in out
    assert "Aborted: nothing will be removed" in out
    assert "Ending managers" in out
    with pytest.raises(SystemExit):
        main(["reviews", "confirm", CAMPAIGN])  # a reason is required


def test_report_is_written_whole_or_not_at_all(
    api: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A justification with a line break: the CSV record spans two lines and must stay whole.
    text = 'campaign_id,item_id,justification\r\nc,i-1,"two\nlines"\r\nc,i-2,\r\n'
    seen = api(
        lambda request: httpx.Response(
            200, content=text.encode(), headers={"content-type": "text/csv"}
        )
    )
    target = tmp_path / "report.csv"
    assert main(["reviews", "report", CAMPAIGN, "-o", str(target)]) == 0
    assert seen[0].url.path == f"/v1/reviews/{CAMPAIGN}/report"
    assert dict(seen[0].url.params) == {"format": "csv"}
    assert target.read_bytes() == text.encode()
    assert list(csv.reader(io.StringIO(target.read_bytes().decode())))[1][2] == "two\nlines"
    assert capsys.readouterr().err == f"Wrote the report (2 item(s)) to {target}\n"

    lines = '{"item_id":"i-1"}\n{"item_id":"i-2"}\n'
    seen = api(lambda request: httpx.Response(200, content=lines.encode()))
    assert main(["reviews", "report", CAMPAIGN, "--format", "jsonl"]) == 0
    assert dict(seen[0].url.params) == {"format": "jsonl"}
    assert capsys.readouterr().out == lines

    api(
        refusal(
            403, "Reading a campaign's report needs the Tenure.Auditor or Tenure.Admin app role."
        )
    )
    refused = tmp_path / "refused.csv"
    assert main(["reviews", "report", CAMPAIGN, "-o", str(refused)]) == 1
    assert "Tenure.Auditor" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_not_logged_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    monkeypatch.setenv("TENURE_HOME", str(tmp_path))
    assert main(["reviews", "mine"]) == 1
    assert capsys.readouterr().err == (
        "tenure: not logged in: run `tenure login --as <employee id>`\n"
    )


# ---- through a running API -----------------------------------------------------------------------

MANAGER, STRANGER, AUDITOR = "E1001", "E3333", "E0500"


class Live:
    def __init__(self, url: str, issuer: Issuer, campaign: str) -> None:
        self.url, self.issuer, self.campaign = url, issuer, campaign


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    """The API over HTTP with a token issuer, the review workflows on a worker, and one campaign
    whose stage is open, with the manager's two items in two batches."""
    store = AccessRecordStore(tmp_path_factory.mktemp("record") / "access-record.db")
    policy = reviews_policy()
    record = RecordReviewActivities(store)
    async with (
        temporal_dev_server() as temporal,
        Worker(
            temporal.client,
            task_queue=ReviewContract.TASK_QUEUE,
            workflows=REVIEW_WORKFLOWS,
            activities=record.activities(),
        ),
        token_issuer([MANAGER, STRANGER, AUDITOR], {AUDITOR: [AUDITOR_ROLE]}) as issuer,
    ):
        await start_identities(temporal.client, [MANAGER, STRANGER, AUDITOR])
        campaign = new_campaign_id("cli")
        progress = await asyncio.to_thread(
            seed_stage,
            store,
            campaign,
            REVIEW_ID,
            [
                [
                    (
                        review_item("H6001", "group:Finance", recommendation=Recommended.DENY),
                        [MANAGER],
                    )
                ],
                [(review_item("H6002", "group:Finance"), [MANAGER])],
            ],
        )
        await start_batches(temporal.client, store, progress, policy.reviews[REVIEW_ID])
        settings = ApiSettings(
            intake_token="intake",
            task_queue=f"reviews-cli-{uuid.uuid4().hex[:8]}",
            tokens=issuer.settings,
            access_record_db=store.path,
        )
        async with serving(create_app(settings, client=temporal.client, policy=policy)) as url:
            yield Live(url, issuer, campaign)


async def tenure_as(live: Live, home: Path, employee_id: str, *argv: str) -> int:
    """Run `tenure ...` as if `tenure login --as employee_id` had been run (in a thread: the API,
    the issuer and the worker serve from this event loop)."""
    session = Session(
        api_url=live.url,
        token=await live.issuer.token(employee_id),
        employee_id=employee_id,
        expires_at=datetime.now(UTC) + timedelta(minutes=10),
    )
    save_session(session, home)
    return await asyncio.to_thread(main, list(argv))


async def test_a_reviewer_decides_and_an_auditor_reads_the_report(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TENURE_HOME", str(tmp_path))
    cid = live.campaign

    assert await tenure_as(live, tmp_path, MANAGER, "reviews", "mine") == 0
    assert "managers: 2 item(s) undecided" in capsys.readouterr().out
    assert await tenure_as(live, tmp_path, MANAGER, "reviews", "items", cid) == 0
    out = capsys.readouterr().out
    assert "recommend deny (no sign-in)" in out and "2 undecided" in out

    refused = ("reviews", "decide", cid, "--approve")
    assert await tenure_as(live, tmp_path, STRANGER, *refused) == 1
    assert capsys.readouterr().err == (
        f"tenure: {STRANGER} is not a reviewer in this campaign (managers)\n"
    )
    bare = ("reviews", "decide", cid, "--accept-recommendations")
    assert await tenure_as(live, tmp_path, MANAGER, *bare) == 1
    assert capsys.readouterr().err == "tenure: justification: required for a denial\n"
    accept = (*bare, "-j", "quarterly check")
    assert await tenure_as(live, tmp_path, MANAGER, *accept) == 0
    assert capsys.readouterr().out == "Decided 2 item(s) in stage 1: approved 1, denied 1\n"

    assert await tenure_as(live, tmp_path, MANAGER, "reviews", "show", cid) == 0
    assert f"{progress_bar(2, 2)} 2/2 decided" in capsys.readouterr().out

    target = tmp_path / "report.jsonl"
    report = ("reviews", "report", cid, "--format", "jsonl", "-o", str(target))
    assert await tenure_as(live, tmp_path, MANAGER, *report) == 1
    assert "Tenure.Auditor" in capsys.readouterr().err
    assert await tenure_as(live, tmp_path, AUDITOR, *report) == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["holder"], r["outcome"], r["decided_by"]) for r in rows] == [
        ("h6001@access.example.com", "denied", MANAGER),
        ("h6002@access.example.com", "approved", MANAGER),
    ]
    assert await tenure_as(live, tmp_path, AUDITOR, "reviews", "list") == 0
    assert cid in capsys.readouterr().out.splitlines()
