"""Review campaigns on the time-skipping server: reminders, silence, fallbacks, stages, the cap,
protected accounts, leavers, recommendations and self-review, each end to end through the real
review activities, the Graph emulator and the record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.policy.model import Policy
from domain.reviews.campaign import (
    CampaignProgress,
    ConfirmApplyInput,
    EndStageInput,
    Phase,
    ReviewContract,
    ReviewerItemsQuery,
    batch_workflow_id,
)
from domain.reviews.definition import ReviewDefinition
from domain.reviews.items import ReportRow, ReviewerItem
from tests.support.reviews import ReviewWorld, review_world

DAY = timedelta(days=1)


@pytest.fixture
async def world(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, demo_policy: Policy
) -> AsyncIterator[ReviewWorld]:
    async with review_world(time_skipping_env, tmp_path, demo_policy) as w:
        yield w


def review(**fields: Any) -> ReviewDefinition:
    base: dict[str, Any] = {
        "name": "Finance access",
        "scope": [{"groups": ["Finance"]}],
        "stages": [{"reviewers": ["owner"], "duration": "14d"}],
        "recommend": None,
    }
    return ReviewDefinition.model_validate({**base, **fields})


async def finance(world: ReviewWorld, *members: str, owners: tuple[str, ...] = ("olga",)) -> None:
    """Users RV1.. (ann, bob, ...) in Finance, owned by olga (O1). Employee ids of their own:
    identities other tests leave on the shared server must not answer for them."""
    for name, employee_id in (("olga", "O1"), ("oscar", "O2"), ("fay", "F1"), ("alma", "A1")):
        await world.user(name, employee_id)
    for i, name in enumerate(members, start=1):
        if name not in world.ids:
            await world.user(name, f"RV{i}")
    await world.group("Finance", list(members), list(owners))


async def until_open(
    world: ReviewWorld, campaign: WorkflowHandle, stage: int = 0
) -> CampaignProgress:
    """The stage's batches are running and have loaded their items."""
    for _ in range(300):
        progress = await world.progress(campaign)
        view = progress.stages[stage]
        if progress.phase is Phase.REVIEWING and view.opened_at and view.batches:
            handle = world.env.client.get_workflow_handle(batch_workflow_id(campaign.id, stage, 0))
            try:
                await handle.query(
                    ReviewContract.ITEMS, ReviewerItemsQuery(reviewer_id="-"), result_type=list
                )
                return progress
            except Exception:
                pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"stage {stage + 1} never opened: {progress}")


async def decide(
    world: ReviewWorld, campaign: WorkflowHandle, stage: int = 0, **fields: Any
) -> Any:
    for _ in range(100):
        try:
            return await world.decide(campaign, stage, 0, **fields)
        except WorkflowUpdateFailedError as err:
            if getattr(err.cause, "type", "") != "ReviewNotReady":
                raise
        await asyncio.sleep(0.05)
    raise AssertionError("the batch never loaded")


async def items_of(
    world: ReviewWorld, campaign: WorkflowHandle, reviewer: str, stage: int = 0
) -> list[ReviewerItem]:
    handle = world.env.client.get_workflow_handle(batch_workflow_id(campaign.id, stage, 0))
    return await handle.query(
        ReviewContract.ITEMS,
        ReviewerItemsQuery(reviewer_id=reviewer),
        result_type=list[ReviewerItem],
    )


def report(world: ReviewWorld, campaign: WorkflowHandle) -> dict[str, ReportRow]:
    return {row.holder.split("@")[0]: row for row in world.store.iter_report(campaign.id)}


async def members(world: ReviewWorld, group: str) -> set[str]:
    page = (
        await world.graph.get(f"/groups/{world.ids[group]}/members?$select=userPrincipalName")
    ).json()
    return {m["userPrincipalName"].split("@")[0] for m in page["value"]}


async def end_stage(campaign: WorkflowHandle) -> None:
    await campaign.execute_update(
        ReviewContract.END_STAGE,
        EndStageInput(actor_id="ops", reason="test: end now"),
        result_type=CampaignProgress,
    )


# ---- reminders ----------------------------------------------------------------------------------


async def test_reminders_come_at_their_times_and_only_to_reviewers_with_undecided_items(
    world: ReviewWorld,
) -> None:
    await finance(world, "ann", "bob")
    await world.user("sal", "RV9")
    await world.group("Sales", ["sal"], ["oscar"])
    definition = review(
        scope=[{"groups": ["Finance", "Sales"]}],
        stages=[{"reviewers": ["owner"], "duration": "14d", "reminders": ["7d", "2d", "4h"]}],
    )
    campaign = await world.start("finance-sales", definition)
    progress = await until_open(world, campaign)
    opened = progress.stages[0].opened_at
    assert opened is not None
    answer = await decide(world, campaign, actor_id="O1", decision="approve")
    assert answer.decided == 2

    result = await campaign.result()

    ends = opened + 14 * DAY
    reminded = [m.at for m in world.mails.to("O2", "Reminder")]
    expected = [ends - 7 * DAY, ends - 2 * DAY, ends - timedelta(hours=4)]
    assert len(reminded) == 3
    for got, want in zip(reminded, expected, strict=True):
        assert abs(got - want) < timedelta(seconds=5), (got, want)
    # O1 finished before the first reminder: asked once, never reminded.
    assert world.mails.to("O1", "Reminder") == []
    assert len(world.mails.to("O1", "to review")) == 1
    assert result.phase is Phase.COMPLETED


# ---- silence --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "outcome", "still_member"),
    [
        ("keep", "not_reviewed", True),
        ("remove", "denied", False),
        ("approve", "approved", True),
        ("recommendation", "denied", False),  # never signed in: the recommendation is deny
    ],
)
async def test_each_no_response_outcome_is_applied_and_names_its_rule(
    world: ReviewWorld, rule: str, outcome: str, still_member: bool
) -> None:
    await finance(world, "ann")
    definition = review(
        stages=[{"reviewers": ["owner"], "duration": "7d", "no_response": rule}],
        recommend={"inactive_days": 30},
        apply={"max_removal_share": 1},
    )
    campaign = await world.start(f"silence-{rule}", definition)
    await campaign.result()
    row = report(world, campaign)["ann"]
    assert row.outcome == outcome
    assert row.decided_by.startswith("rule (stage 1): nobody decided")
    assert ("ann" in await members(world, "Finance")) is still_member
    assert row.applied == ("removed" if not still_member else "nothing")


# ---- fallback reviewers ----------------------------------------------------------------------


async def test_fallback_reviewers_take_items_nobody_else_reviews(world: ReviewWorld) -> None:
    await finance(world, "ann", owners=())  # Finance has no owners
    definition = review(
        stages=[{"reviewers": ["owner"], "fallback": [{"people": ["F1"]}], "duration": "7d"}]
    )
    campaign = await world.start("orphaned-group", definition)
    await until_open(world, campaign)
    assert [i.holder_name for i in await items_of(world, campaign, "F1")] == ["ann@example.com"]
    await decide(world, campaign, actor_id="F1", decision="approve")
    await campaign.result()
    assert report(world, campaign)["ann"].decided_by == "F1"


async def test_reviewers_who_have_not_started_are_escalated_to_the_fallback(
    world: ReviewWorld,
) -> None:
    await finance(world, "ann")
    definition = review(
        stages=[
            {
                "reviewers": ["owner"],
                "fallback": [{"people": ["F1"]}],
                "duration": "7d",
                "escalate_after": "3d",
            }
        ],
        apply={"max_removal_share": 1},
    )
    campaign = await world.start("escalation", definition)
    await until_open(world, campaign)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await decide(world, campaign, actor_id="F1", decision="deny", justification="x")
    assert "F1 has no items to decide here" in str(refused.value.cause)
    await world.env.sleep(3 * DAY + timedelta(hours=1))
    assert world.mails.to("F1", "escalated")
    await decide(world, campaign, actor_id="F1", decision="deny", justification="left the team")
    await campaign.result()
    row = report(world, campaign)["ann"]
    assert (row.outcome, row.decided_by, row.justification) == ("denied", "F1", "left the team")
    assert "ann" not in await members(world, "Finance")


# ---- stages -------------------------------------------------------------------------------------


async def test_a_second_stage_sees_only_what_the_first_denied(world: ReviewWorld) -> None:
    await finance(world, "ann", "bob")
    definition = review(
        stages=[
            {"reviewers": ["owner"], "duration": "7d"},
            {
                "name": "audit",
                "reviewers": [{"people": ["A1"]}],
                "duration": "7d",
                "only": ["denied"],
            },
        ]
    )
    campaign = await world.start("two-stages", definition)
    await until_open(world, campaign)
    ann, bob = world.ids["ann"], world.ids["bob"]
    by_holder = {i.holder_name: i.item_id for i in await items_of(world, campaign, "O1")}
    await decide(
        world,
        campaign,
        actor_id="O1",
        decision="deny",
        justification="moved",
        item_ids=[by_holder["ann@example.com"]],
    )
    await decide(
        world, campaign, actor_id="O1", decision="approve", item_ids=[by_holder["bob@example.com"]]
    )
    await end_stage(campaign)
    progress = await until_open(world, campaign, stage=1)
    assert progress.stages[1].items == 1
    seen = await items_of(world, campaign, "A1", stage=1)
    assert [i.holder_name for i in seen] == ["ann@example.com"]
    # The second stage's reviewer sees what the first decided, and why.
    (before,) = seen[0].earlier
    assert (before.stage, before.outcome.value, before.decided_by, before.justification) == (
        0,
        "denied",
        "O1",
        "moved",
    )
    await decide(world, campaign, stage=1, actor_id="A1", decision="approve", justification="ok")
    await campaign.result()
    rows = report(world, campaign)
    assert [(s.outcome, s.decided_by) for s in rows["ann"].stages] == [
        ("denied", "O1"),
        ("approved", "A1"),
    ]
    assert rows["ann"].outcome == "approved" and rows["bob"].stage == "1"
    assert await members(world, "Finance") == {"ann", "bob"}
    assert ann and bob


# ---- the cap ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("confirm", [True, False])
async def test_the_cap_pauses_the_campaign_until_an_operator_confirms_or_aborts(
    world: ReviewWorld, confirm: bool
) -> None:
    await finance(world, "ann", "bob", "cas", "dan")
    definition = review(apply={"max_removal_share": "50%"})
    campaign = await world.start(f"cap-{confirm}", definition)
    await until_open(world, campaign)
    by_holder = {
        i.holder_name.split("@")[0]: i.item_id for i in await items_of(world, campaign, "O1")
    }
    await decide(
        world,
        campaign,
        actor_id="O1",
        decision="deny",
        justification="cleanup",
        item_ids=[by_holder[n] for n in ("ann", "bob", "cas")],
    )
    await end_stage(campaign)
    for _ in range(200):
        progress = await world.progress(campaign)
        if progress.phase is Phase.AWAITING_CONFIRMATION:
            break
        await asyncio.sleep(0.05)
    assert progress.phase is Phase.AWAITING_CONFIRMATION
    assert progress.removals == 3 and "75.0%" in progress.waiting_for
    assert await members(world, "Finance") == {"ann", "bob", "cas", "dan"}  # nothing yet

    await campaign.execute_update(
        ReviewContract.CONFIRM_APPLY,
        ConfirmApplyInput(actor_id="ops", confirm=confirm, reason="checked with Finance"),
        result_type=CampaignProgress,
    )
    result = await campaign.result()
    rows = report(world, campaign)
    if confirm:
        assert result.phase is Phase.COMPLETED
        assert await members(world, "Finance") == {"dan"}
        assert rows["ann"].applied == "removed" and rows["ann"].applied_at is not None
    else:
        assert result.phase is Phase.ABORTED
        assert await members(world, "Finance") == {"ann", "bob", "cas", "dan"}
        assert rows["ann"].applied == "not_applied"
        assert "aborted by ops: checked with Finance" in rows["ann"].apply_detail


# ---- protected accounts --------------------------------------------------------------------------


async def test_protected_accounts_are_never_removed(world: ReviewWorld) -> None:
    await finance(world, "ann", "breakglass")
    definition = review(apply={"max_removal_share": 1, "protected": ["BreakGlass@example.com"]})
    campaign = await world.start("protected", definition)
    await until_open(world, campaign)
    await decide(world, campaign, actor_id="O1", decision="deny", justification="review")
    await campaign.result()
    rows = report(world, campaign)
    assert rows["breakglass"].outcome == "denied"
    assert rows["breakglass"].applied == "not_applied"
    assert "protected" in rows["breakglass"].apply_detail
    assert await members(world, "Finance") == {"breakglass"}


# ---- leavers -------------------------------------------------------------------------------------


async def test_a_leaver_mid_campaign_has_their_items_closed_as_left(world: ReviewWorld) -> None:
    await finance(world, "ann", "bob")
    world.population.stages.update({"RV1": "active", "RV2": "active", "O1": "active"})
    definition = review(apply={"max_removal_share": 1})
    campaign = await world.start("leaver", definition)
    await until_open(world, campaign)
    await decide(world, campaign, actor_id="O1", decision="deny", justification="review")
    world.population.stages["RV1"] = "disabled"  # ann leaves before the stage ends
    result = await campaign.result()
    rows = report(world, campaign)
    assert rows["ann"].outcome == "left" and rows["ann"].applied == "not_applied"
    assert "left during the campaign" in rows["ann"].apply_detail
    assert rows["bob"].applied == "removed"
    assert result.stages[0].outcomes.get("left") == 1


# ---- recommendations -------------------------------------------------------------------------------


async def test_recommendations_come_from_sign_in_activity(world: ReviewWorld) -> None:
    await finance(world, "ann", "bob", "cas")
    now: datetime = await world.env.get_current_time()
    await world.signed_in("ann", now - 2 * DAY)
    await world.signed_in("bob", now - 90 * DAY)  # cas never signed in
    definition = review(recommend={"inactive_days": 30}, apply={"max_removal_share": 1})
    campaign = await world.start("recommendations", definition)
    await until_open(world, campaign)
    seen = {
        i.holder_name.split("@")[0]: i.recommendation.value
        for i in await items_of(world, campaign, "O1")
    }
    assert seen == {"ann": "approve", "bob": "deny", "cas": "deny"}
    await decide(world, campaign, actor_id="O1", accept_recommendations=True, justification="idle")
    await campaign.result()
    rows = report(world, campaign)
    assert "signed in 2 day(s) ago" in rows["ann"].recommendation_reason
    assert "no sign-in for 90 days" in rows["bob"].recommendation_reason
    assert rows["cas"].recommendation_reason == "no sign-in on record"
    assert await members(world, "Finance") == {"ann"}


# ---- self-review -----------------------------------------------------------------------------------


async def test_a_self_review_lets_people_decide_on_their_own_access(world: ReviewWorld) -> None:
    await finance(world, "ann")
    definition = review(stages=[{"reviewers": ["self"], "duration": "7d"}])
    campaign = await world.start("self-review", definition)
    await until_open(world, campaign)
    await decide(world, campaign, actor_id="RV1", decision="approve")
    await campaign.result()
    assert report(world, campaign)["ann"].decided_by == "RV1"


async def test_a_reviewer_cannot_decide_on_their_own_access(world: ReviewWorld) -> None:
    await finance(world, "ann", "olga")  # olga owns Finance and is a member of it
    definition = review(
        stages=[{"reviewers": ["owner"], "fallback": [{"people": ["F1"]}], "duration": "7d"}]
    )
    campaign = await world.start("own-access", definition)
    await until_open(world, campaign)
    own = [i for i in await items_of(world, campaign, "F1") if i.holder_name.startswith("olga")]
    assert own, "olga's own membership goes to the fallback reviewer"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await decide(world, campaign, actor_id="O1", decision="approve", item_ids=[own[0].item_id])
    assert "own access" in str(refused.value.cause)
    await decide(
        world, campaign, actor_id="O1", decision="approve"
    )  # ann's, which is hers to review
    await decide(world, campaign, actor_id="F1", decision="approve")
    await campaign.result()
    rows = report(world, campaign)
    assert rows["olga"].decided_by == "F1" and rows["ann"].decided_by == "O1"


# ---- applying as decided ---------------------------------------------------------------------------


async def test_denials_are_removed_as_decided_within_the_cap_and_the_rest_waits(
    world: ReviewWorld,
) -> None:
    await finance(world, "ann", "bob", "cas", "dan")
    definition = review(apply={"when": "decided", "max_removal_share": "50%"})
    campaign = await world.start("as-decided", definition)
    await until_open(world, campaign)
    ids = {i.holder_name.split("@")[0]: i.item_id for i in await items_of(world, campaign, "O1")}
    await decide(
        world,
        campaign,
        actor_id="O1",
        decision="deny",
        justification="left",
        item_ids=[ids["ann"]],
    )
    # Removed while the stage is still open.
    for _ in range(200):
        if "ann" not in await members(world, "Finance"):
            break
        await asyncio.sleep(0.05)
    assert await members(world, "Finance") == {"bob", "cas", "dan"}
    assert (await world.progress(campaign)).phase is Phase.REVIEWING
    # A denial handed over can no longer change.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await decide(world, campaign, actor_id="O1", decision="approve", item_ids=[ids["ann"]])
    assert "can no longer change" in str(refused.value.cause)

    # Two more denials: the cap (2 of 4) lets one go now; the third waits for the end.
    await decide(
        world,
        campaign,
        actor_id="O1",
        decision="deny",
        justification="left",
        item_ids=[ids["bob"], ids["cas"]],
    )
    for _ in range(200):
        if len(await members(world, "Finance")) == 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert len(await members(world, "Finance")) == 2  # never past the cap

    await end_stage(campaign)
    for _ in range(200):
        progress = await world.progress(campaign)
        if progress.phase is Phase.AWAITING_CONFIRMATION:
            break
        await asyncio.sleep(0.05)
    assert progress.phase is Phase.AWAITING_CONFIRMATION and progress.removals == 3
    await campaign.execute_update(
        ReviewContract.CONFIRM_APPLY,
        ConfirmApplyInput(actor_id="ops", confirm=True, reason="the third too"),
        result_type=CampaignProgress,
    )
    result = await campaign.result()
    assert await members(world, "Finance") == {"dan"}
    assert result.applied == {"removed": 3}
    assert {r.applied for n, r in report(world, campaign).items() if n != "dan"} == {"removed"}


def test_applying_as_decided_needs_a_single_stage() -> None:
    with pytest.raises(ValueError, match="only for a review of one stage"):
        review(
            apply={"when": "decided"},
            stages=[
                {"reviewers": ["owner"], "duration": "7d"},
                {"reviewers": ["owner"], "duration": "7d", "only": ["denied"]},
            ],
        )
