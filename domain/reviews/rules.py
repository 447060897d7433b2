"""The pure rules of a review: recommendations, filters, protected accounts, who reviews an item,
which decisions a reviewer may make, what silence means, and the removal cap.

Workflows and activities both call these; nothing here does I/O, so each rule is unit-tested on
its own (tests/reviews/test_rules.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

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
    ItemDecision,
    Outcome,
    Recommended,
    ReviewerItem,
    ReviewItem,
    StageDecision,
)

CONTRACTOR = "contractor"
GUEST = "guest"


# ---- recommendations and filters ----------------------------------------------------------------


def recommend(
    last_sign_in: datetime | None, now: datetime, rule: Recommendation | None
) -> tuple[Recommended, str]:
    """No sign-in for `inactive_days` (or never) → deny; otherwise approve; with its reason."""
    if rule is None:
        return Recommended.NONE, ""
    days = rule.inactive_days
    if last_sign_in is None:
        return Recommended.DENY, "no sign-in on record"
    idle = now - last_sign_in
    if idle >= timedelta(days=days):
        return Recommended.DENY, (
            f"no sign-in for {idle.days} days (last {last_sign_in.date().isoformat()}; "
            f"inactive after {days})"
        )
    return (
        Recommended.APPROVE,
        f"signed in {idle.days} day(s) ago ({last_sign_in.date().isoformat()})",
    )


def passes_filter(item: ReviewItem, rule: ScopeFilter, now: datetime) -> bool:
    """Whether the holder matches every condition the review's filter gives."""
    kind = item.employment_type.casefold()
    if rule.employment_types and kind not in {t.casefold() for t in rule.employment_types}:
        return False
    if rule.contractors_only and kind != CONTRACTOR:
        return False
    if rule.departments and item.department.casefold() not in {
        d.casefold() for d in rule.departments
    }:
        return False
    if rule.guests_only and item.user_type.casefold() != GUEST:
        return False
    if rule.inactive_days is not None and item.last_sign_in is not None:
        if now - item.last_sign_in < timedelta(days=rule.inactive_days):
            return False
    return True


def is_protected(item: ReviewItem, apply: ApplySettings) -> bool:
    """Named under `apply.protected` by UPN, employee id, object id, or (a service principal)
    appId or display name; case is ignored."""
    if not apply.protected:
        return False
    names = {p.casefold() for p in apply.protected}
    keys = [item.holder_name, item.holder_id, item.employee_id or ""]
    return any(k and k.casefold() in names for k in keys)


# ---- reviewers -------------------------------------------------------------------------------------


def item_reviewers(
    resolved: Sequence[str], fallback: Sequence[str], holder: str | None, stage: ReviewStage
) -> tuple[list[str], bool]:
    """Who reviews one item in a stage: the holder alone in a self-review; otherwise the resolved
    reviewers without the holder (nobody reviews their own access), or the fallback reviewers when
    none remain. The flag says the fallback was used."""
    if stage.self_review:
        return ([holder] if holder else list(fallback)), holder is None
    own = {holder} if holder else set()
    people = _distinct(r for r in resolved if r not in own)
    if people:
        return people, False
    return _distinct(r for r in fallback if r not in own), True


def _distinct(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


# ---- decisions ---------------------------------------------------------------------------------------


def targeted(items: Iterable[ReviewerItem], bulk: BulkDecision) -> list[ReviewerItem]:
    """The items a bulk decision names: its item ids, or every item of the actor's the filters
    select."""
    chosen = (
        [i for i in items if i.item_id in set(bulk.item_ids)]
        if bulk.item_ids
        # "All of mine" leaves out what is already being removed as decided.
        else [i for i in items if bulk.actor_id in i.reviewers and not i.locked]
    )
    if bulk.resource is not None:
        chosen = [i for i in chosen if i.resource == bulk.resource]
    if bulk.recommendation is not None:
        chosen = [i for i in chosen if i.recommendation is bulk.recommendation]
    return chosen


def decision_for(item: ReviewerItem, bulk: BulkDecision) -> ItemDecision:
    if bulk.accept_recommendations:
        return (
            ItemDecision.DENY if item.recommendation is Recommended.DENY else ItemDecision.APPROVE
        )
    assert bulk.decision is not None
    return bulk.decision


def decision_refusal(
    items: dict[str, ReviewerItem],
    bulk: BulkDecision,
    stage: ReviewStage,
    justification: Justification,
) -> str | None:
    """Why a bulk decision may not be taken, or None. Checked whole: one refused item refuses
    the lot, so a reviewer never gets half of what they asked for."""
    if (bulk.decision is None) == (not bulk.accept_recommendations):
        return "give either a decision (approve, deny, dont_know) or accept_recommendations"
    unknown = [i for i in bulk.item_ids if i not in items]
    if unknown:
        return f"not in this batch: {', '.join(unknown[:5])}"
    chosen = targeted(items.values(), bulk)
    if not chosen:
        return f"{bulk.actor_id} has no items to decide here"
    own = [i.item_id for i in chosen if i.holder_employee_id == bulk.actor_id]
    if own and not stage.self_review:
        return f"{bulk.actor_id} may not decide on their own access ({own[0]})"
    strangers = [i.item_id for i in chosen if bulk.actor_id not in i.reviewers]
    if strangers:
        return f"{bulk.actor_id} is not a reviewer of {strangers[0]}"
    locked = [i.item_id for i in chosen if i.locked]
    if locked:
        return f"{locked[0]} was denied and is being removed as decided: it can no longer change"
    needs = justification is Justification.ALWAYS or (
        justification is Justification.DENY
        and any(decision_for(i, bulk) is ItemDecision.DENY for i in chosen)
    )
    if needs and not bulk.justification.strip():
        what = "every decision" if justification is Justification.ALWAYS else "a denial"
        return f"justification: required for {what}"
    return None


_OUTCOME = {
    ItemDecision.APPROVE: Outcome.APPROVED,
    ItemDecision.DENY: Outcome.DENIED,
    ItemDecision.DONT_KNOW: Outcome.DONT_KNOW,
}


def apply_bulk(
    items: dict[str, ReviewerItem], bulk: BulkDecision, at: datetime
) -> list[ReviewerItem]:
    """Record a bulk decision `decision_refusal` let through; the items it changed. A later
    decision by a reviewer replaces an earlier one until the stage closes."""
    changed = []
    for item in targeted(items.values(), bulk):
        outcome = _OUTCOME[decision_for(item, bulk)]
        text = bulk.justification.strip()
        if bulk.accept_recommendations and not text:
            text = "accepted the recommendation"
        updated = item.model_copy(
            update={
                "outcome": outcome,
                "decided_by": bulk.actor_id,
                "justification": text,
                "decided_at": at,
            }
        )
        items[item.item_id] = updated
        changed.append(updated)
    return changed


def no_response(item: ReviewerItem, rule: NoResponse, stage_name: str) -> tuple[Outcome, str]:
    """What an undecided item (or one a reviewer did not know) comes to when its stage ends, and
    the rule that decided, always named."""
    said = "nobody decided" if item.outcome is None else f"{item.decided_by} did not know"
    where = f"rule ({stage_name}): {said}"
    if rule is NoResponse.REMOVE:
        return Outcome.DENIED, f"{where} → remove"
    if rule is NoResponse.APPROVE:
        return Outcome.APPROVED, f"{where} → approve"
    if rule is NoResponse.RECOMMENDATION:
        if item.recommendation is Recommended.DENY:
            return Outcome.DENIED, f"{where} → the recommendation (deny)"
        return Outcome.APPROVED, f"{where} → the recommendation (approve)"
    keep = Outcome.DONT_KNOW if item.outcome is Outcome.DONT_KNOW else Outcome.NOT_REVIEWED
    return keep, f"{where} → keep"


def close_items(
    items: dict[str, ReviewerItem], rule: NoResponse, stage_name: str, at: datetime
) -> list[ReviewerItem]:
    """Items the stage's end decides (undecided, or `don't know`); the others keep their decision."""
    closed = []
    for item in items.values():
        if item.outcome not in (None, Outcome.DONT_KNOW):
            continue
        outcome, rule_text = no_response(item, rule, stage_name)
        justification = item.justification if item.outcome is Outcome.DONT_KNOW else ""
        updated = item.model_copy(
            update={
                "outcome": outcome,
                "decided_by": rule_text,
                "justification": justification,
                "decided_at": at,
            }
        )
        items[item.item_id] = updated
        closed.append(updated)
    return closed


def recorded_decisions(items: Iterable[ReviewerItem], now: datetime) -> list[StageDecision]:
    """The decided items as the record keeps them (the undecided are left out)."""
    return [
        StageDecision(
            item_id=i.item_id,
            outcome=i.outcome,
            decided_by=i.decided_by or "",
            justification=i.justification,
            decided_at=i.decided_at or now,
        )
        for i in items
        if i.outcome is not None
    ]


def outcome_counts(items: Iterable[ReviewerItem]) -> dict[str, int]:
    return dict(Counter((i.outcome or Outcome.NOT_REVIEWED).value for i in items))


# ---- the cap -------------------------------------------------------------------------------------------


def removal_share(removals: int, items: int) -> float:
    return removals / items if items else 0.0


def over_cap(removals: int, items: int, apply: ApplySettings) -> bool:
    """More than the cap's share of the campaign's items would be removed."""
    return removal_share(removals, items) > apply.max_removal_share
