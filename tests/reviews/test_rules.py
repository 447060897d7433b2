"""The pure review rules: recommendations, filters, protected accounts, reviewers, decisions,
silence, and the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.reviews.campaign import BulkDecision
from domain.reviews.definition import (
    ApplySettings,
    Justification,
    NoResponse,
    Recommendation,
    ReviewStage,
    ScopeFilter,
)
from domain.reviews.items import (
    HolderKind,
    ItemDecision,
    Outcome,
    Recommended,
    ReviewerItem,
    ReviewItem,
)
from domain.reviews.rules import (
    apply_bulk,
    close_items,
    decision_refusal,
    is_protected,
    item_reviewers,
    over_cap,
    passes_filter,
    recommend,
)

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def item(**fields: object) -> ReviewItem:
    base: dict[str, object] = {
        "item_id": "i-1",
        "holder_kind": HolderKind.USER,
        "holder_id": "u-1",
        "employee_id": "E1",
        "holder_name": "ann@example.com",
        "resource": "group:Finance",
        "resource_name": "Finance",
        "resource_id": "g-1",
        "scope": "groups",
    }
    return ReviewItem.model_validate({**base, **fields})


def stage(**fields: object) -> ReviewStage:
    return ReviewStage.model_validate({"reviewers": ["owner"], **fields})


def batch(*items: ReviewerItem) -> dict[str, ReviewerItem]:
    return {i.item_id: i for i in items}


def reviewer_item(
    item_id: str, holder: str, reviewers: list[str], rec: str = "none"
) -> ReviewerItem:
    return ReviewerItem(
        item_id=item_id,
        holder_employee_id=holder,
        resource="group:Finance",
        reviewers=reviewers,
        recommendation=Recommended(rec),
    )


def test_recommendations_follow_sign_in_activity() -> None:
    rule = Recommendation(inactive_days=30)
    assert recommend(None, NOW, rule)[0] is Recommended.DENY
    stale, reason = recommend(NOW - timedelta(days=45), NOW, rule)
    assert stale is Recommended.DENY and "no sign-in for 45 days" in reason
    fresh, reason = recommend(NOW - timedelta(days=3), NOW, rule)
    assert fresh is Recommended.APPROVE and "3 day(s) ago" in reason
    assert recommend(None, NOW, None) == (Recommended.NONE, "")


def test_filters_keep_only_matching_holders() -> None:
    contractor = item(employment_type="Contractor", department="Finance")
    assert passes_filter(contractor, ScopeFilter(contractors_only=True), NOW)
    assert not passes_filter(
        item(employment_type="Employee"), ScopeFilter(contractors_only=True), NOW
    )
    assert not passes_filter(contractor, ScopeFilter(departments=["Sales"]), NOW)
    assert passes_filter(item(user_type="Guest"), ScopeFilter(guests_only=True), NOW)
    assert not passes_filter(item(user_type="Member"), ScopeFilter(guests_only=True), NOW)
    inactive = ScopeFilter(inactive_days=30)
    assert passes_filter(item(last_sign_in=NOW - timedelta(days=40)), inactive, NOW)
    assert passes_filter(item(last_sign_in=None), inactive, NOW)  # never signed in
    assert not passes_filter(item(last_sign_in=NOW - timedelta(days=2)), inactive, NOW)


def test_protected_accounts_match_any_name_ignoring_case() -> None:
    settings = ApplySettings(protected=["BreakGlass@example.com", "E42"])
    assert is_protected(item(holder_name="breakglass@example.com"), settings)
    assert is_protected(item(employee_id="E42"), settings)
    assert not is_protected(item(), settings)


def test_nobody_reviews_their_own_access_and_fallback_fills_the_gap() -> None:
    assert item_reviewers(["E1", "E2"], ["E9"], "E1", stage()) == (["E2"], False)
    # The only reviewer is the holder: the fallback reviewers take it.
    assert item_reviewers(["E1"], ["E9"], "E1", stage()) == (["E9"], True)
    assert item_reviewers([], [], "E1", stage(fallback=[{"people": ["E9"]}])) == ([], True)
    # A self-review: the holder alone.
    assert item_reviewers(["E2"], [], "E1", stage(reviewers=["self"])) == (["E1"], False)


def test_decisions_are_refused_for_strangers_own_access_and_missing_justification() -> None:
    items = batch(
        reviewer_item("i-1", "E1", ["E2"], "deny"),
        reviewer_item("i-2", "E4", ["E3"], "approve"),
        reviewer_item("i-3", "E2", ["E3"], "approve"),  # E2's own access
    )
    regular = stage()

    def refusal(**fields: object) -> str | None:
        bulk = BulkDecision.model_validate({"actor_id": "E2", **fields})
        return decision_refusal(items, bulk, regular, Justification.DENY)

    assert refusal(decision="approve") is None  # E2's one item, i-1
    assert "not a reviewer of i-2" in (refusal(decision="approve", item_ids=["i-2"]) or "")
    assert "own access" in (refusal(decision="approve", item_ids=["i-1", "i-3"]) or "")
    assert "justification" in (refusal(decision="deny") or "")
    assert "justification" in (refusal(accept_recommendations=True) or "")  # i-1 is a deny
    assert refusal(accept_recommendations=True, justification="inactive") is None
    assert "no items" in (refusal(decision="approve", resource="group:Other") or "")
    assert "either a decision" in (refusal() or "")
    assert "not in this batch" in (refusal(decision="approve", item_ids=["i-9"]) or "")


def test_a_self_review_lets_the_holder_decide() -> None:
    items = batch(reviewer_item("i-1", "E1", ["E1"]))
    bulk = BulkDecision(actor_id="E1", decision=ItemDecision.APPROVE)
    assert decision_refusal(items, bulk, stage(reviewers=["self"]), Justification.DENY) is None
    assert "own access" in (decision_refusal(items, bulk, stage(), Justification.DENY) or "")


def test_bulk_decisions_and_accepted_recommendations_record_the_decider() -> None:
    items = batch(
        reviewer_item("i-1", "E1", ["E9"], "deny"),
        reviewer_item("i-2", "E2", ["E9"], "approve"),
        reviewer_item("i-3", "E3", ["E8"], "approve"),
    )
    changed = apply_bulk(
        items, BulkDecision(actor_id="E9", accept_recommendations=True, justification="ok"), NOW
    )
    assert {i.item_id: i.outcome for i in changed} == {
        "i-1": Outcome.DENIED,
        "i-2": Outcome.APPROVED,
    }
    assert items["i-1"].decided_by == "E9" and items["i-3"].outcome is None


@pytest.mark.parametrize(
    ("rule", "recommended", "expected", "words"),
    [
        (NoResponse.KEEP, "deny", Outcome.NOT_REVIEWED, "keep"),
        (NoResponse.REMOVE, "approve", Outcome.DENIED, "remove"),
        (NoResponse.APPROVE, "deny", Outcome.APPROVED, "approve"),
        (NoResponse.RECOMMENDATION, "deny", Outcome.DENIED, "recommendation (deny)"),
        (NoResponse.RECOMMENDATION, "approve", Outcome.APPROVED, "recommendation (approve)"),
    ],
)
def test_silence_comes_to_the_rule_and_the_rule_is_named(
    rule: NoResponse, recommended: str, expected: Outcome, words: str
) -> None:
    items = batch(reviewer_item("i-1", "E1", ["E9"], recommended))
    (closed,) = close_items(items, rule, "managers", NOW)
    assert closed.outcome is expected
    assert (
        closed.decided_by.startswith("rule (managers): nobody decided")
        and words in closed.decided_by
    )


def test_dont_know_is_kept_as_such_under_keep_and_decided_by_other_rules() -> None:
    items = batch(reviewer_item("i-1", "E1", ["E9"], "deny"))
    apply_bulk(items, BulkDecision(actor_id="E9", decision=ItemDecision.DONT_KNOW), NOW)
    kept = close_items(dict(items), NoResponse.KEEP, "s1", NOW)[0]
    assert kept.outcome is Outcome.DONT_KNOW and "E9 did not know" in kept.decided_by
    removed = close_items(dict(items), NoResponse.REMOVE, "s1", NOW)[0]
    assert removed.outcome is Outcome.DENIED


def test_the_cap_is_a_share_of_the_campaign() -> None:
    settings = ApplySettings(max_removal_share="10%")
    assert settings.max_removal_share == pytest.approx(0.10)
    assert not over_cap(10, 100, settings)
    assert over_cap(11, 100, settings)
    assert not over_cap(0, 0, settings)
