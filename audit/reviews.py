"""The record of access-review campaigns: their progress, items, per-stage decisions and
reviewers, the removals planned and applied, refused attempts, and the report's rows.

Each function runs on a connection the store opens for it (`AccessRecordStore`); a write runs in
one transaction. A campaign may hold 100,000 items, so:
- bulk writes go `ROWS` rows per executemany, in item order (so concurrent transactions take
  their row locks in the same order);
- reads of many items are pages keyed on item_id (`*_page`), which the store reads each on its own
  short connection;
- what touches every item (finalizing, planning removals) is one SQL statement per step
  (UPDATE ... FROM, a window function: SQLite 3.33 or newer), never a loop over items here;
- on PostgreSQL, the bulk writes refresh the planner's statistics (`refresh_statistics`).

Activities run at least once, so every write is idempotent: items, stage assignments, reviewers
and refusals are inserted once each (`ON CONFLICT DO NOTHING`, the first copy kept); decisions and
applied states are overwritten with the same values; finalizing and planning only fill in what is
still missing. Nothing here deletes: a campaign's record and report are kept with no retention cap.

Stages are numbered from 0 as `StageProgress.index`; the report shows them from 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    bindparam,
    except_,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.schema import Table

from audit.schema import (
    UtcTimestamp,
    review_campaigns,
    review_items,
    review_refusals,
    review_reviewers,
    review_stage_items,
)
from audit.writes import CHUNK, _insert
from domain.reviews.campaign import CampaignProgress, RefusedReviewAttempt
from domain.reviews.items import (
    ApplyState,
    Outcome,
    Recommended,
    ReportRow,
    ReviewerItem,
    ReviewItem,
    StageDecision,
)

ROWS = 1000  # rows per statement of a bulk write
# PostgreSQL: a bulk write analyzes a table once this share of its rows (and at least
# ANALYZE_AFTER) changed since it was last analyzed (`refresh_statistics`).
ANALYZE_SHARE = 0.2
ANALYZE_AFTER = 1000
RULE_NOBODY = "rule: nobody decided"
RULE_LEFT = "rule: the holder left"
LEFT_DETAIL = "the holder left during the campaign: nothing to apply"
PROTECTED_DETAIL = "protected account: never removed"

_T = TypeVar("_T")
items_t = review_items
stages_t = review_stage_items
reviewers_t = review_reviewers


def _chunks(values: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _not_left(outcome: Any) -> ColumnElement[bool]:
    return or_(outcome.is_(None), outcome != Outcome.LEFT.value)


def refresh_statistics(conn: Connection, *tables: Table) -> None:
    """PostgreSQL: analyze the tables whose rows changed by a fifth since they were last analyzed.

    The planner goes by statistics, which autovacuum refreshes only a minute or more after a bulk
    load; until then a new campaign's rows look like none, and a join planned for one row runs in
    quadratic time (reviewers_with_undecided took over 15 minutes at 100k items). The counters
    lag the last second of writes, which the next write (or autovacuum) catches up on.
    """
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        counts = conn.execute(
            text(
                "SELECT s.n_mod_since_analyze, greatest(c.reltuples, 0) FROM pg_stat_user_tables s"
                " JOIN pg_class c ON c.oid = s.relid WHERE s.relid = to_regclass(:name)"
            ),
            {"name": table.name},
        ).first()
        if counts is None:
            continue
        changed, rows = counts
        if changed >= ANALYZE_AFTER and changed > ANALYZE_SHARE * rows:
            # Not the owner: PostgreSQL warns and skips, the write goes on.
            conn.execute(text(f"ANALYZE {conn.dialect.identifier_preparer.format_table(table)}"))


# ---- campaigns ------------------------------------------------------------------------------------


def record_campaign(conn: Connection, progress: CampaignProgress, now: datetime) -> None:
    insert = _insert(conn, review_campaigns).values(
        campaign_id=progress.campaign_id,
        review_id=progress.review_id,
        name=progress.name,
        phase=progress.phase.value,
        started_at=progress.started_at,
        finished_at=progress.finished_at,
        progress=progress.model_dump_json(),
        updated_at=now,
    )
    excluded = insert.excluded
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[review_campaigns.c.campaign_id],
            set_={c.name: excluded[c.name] for c in review_campaigns.c if c.name != "campaign_id"},
            # A retried write from before the end never reopens a finished campaign.
            where=or_(review_campaigns.c.finished_at.is_(None), excluded.finished_at.is_not(None)),
        )
    )


def get_campaign(conn: Connection, campaign_id: str) -> CampaignProgress | None:
    progress = conn.execute(
        select(review_campaigns.c.progress).where(review_campaigns.c.campaign_id == campaign_id)
    ).scalar_one_or_none()
    return None if progress is None else CampaignProgress.model_validate_json(progress)


def list_campaigns(
    conn: Connection, *, review_id: str | None, limit: int
) -> list[CampaignProgress]:
    c = review_campaigns.c
    query = select(c.progress)
    if review_id is not None:
        query = query.where(c.review_id == review_id)
    query = query.order_by(c.started_at.desc(), c.campaign_id.desc()).limit(limit)
    return [CampaignProgress.model_validate_json(p) for p in conn.execute(query).scalars()]


# ---- items ----------------------------------------------------------------------------------------


def add_review_items(conn: Connection, campaign_id: str, items: Sequence[ReviewItem]) -> int:
    first: dict[str, ReviewItem] = {}
    for item in items:
        first.setdefault(item.item_id, item)
    ordered = [first[k] for k in sorted(first)]
    insert = _insert(conn, items_t).on_conflict_do_nothing()
    i = items_t.c
    added = 0
    for chunk in _chunks(ordered, ROWS):
        # By the chunk's own ids: item ids are hashes, so a chunk's range spans nearly every id
        # already written, and reading the range made a 100k snapshot quadratic.
        ids = [item.item_id for item in chunk]
        query = select(i.item_id).where(i.campaign_id == campaign_id, i.item_id.in_(ids))
        there = set(conn.execute(query).scalars())
        fresh = [item for item in chunk if item.item_id not in there]
        if fresh:
            conn.execute(insert, [_item_row(campaign_id, item) for item in fresh])
        added += len(fresh)
    refresh_statistics(conn, items_t)
    return added


def _ids_in_range(conn: Connection, query: Any, column: Any, first: str, last: str) -> set[str]:
    """The ids already there from `first` to `last` (a chunk's ends, in id order).

    Looked up first, then only the others inserted with a plain executemany: psycopg prepares
    that one short statement and pipelines the rows, where RETURNING would make SQLAlchemy send
    1000-row VALUES lists that psycopg parses anew each time (ten times slower), and psycopg's
    executemany gives no rowcount. The insert still says DO NOTHING, for a concurrent writer.
    """
    # >= and <=, not BETWEEN: SQLAlchemy renders BETWEEN of COLLATE "C" binds as bad SQL.
    return set(conn.execute(query.where(column >= first, column <= last)).scalars())


def _item_row(campaign_id: str, item: ReviewItem) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "item_id": item.item_id,
        "holder_kind": item.holder_kind.value,
        "holder_id": item.holder_id,
        "employee_id": item.employee_id,
        "holder_name": item.holder_name,
        "resource": item.resource,
        "recommendation": item.recommendation.value,
        "protected": item.protected,
        "item": item.model_dump_json(),
        "final_stage": None,
        "final_outcome": None,
        "final_decided_by": None,
        "final_justification": None,
        "final_decided_at": None,
        "applied": ApplyState.NOTHING.value,
        "applied_at": None,
        "apply_detail": "",
        "apply_batch": None,
    }


def count_review_items(conn: Connection, campaign_id: str) -> int:
    return conn.execute(
        select(func.count()).select_from(items_t).where(items_t.c.campaign_id == campaign_id)
    ).scalar_one()


def review_items_by_id(
    conn: Connection, campaign_id: str, item_ids: Sequence[str]
) -> dict[str, ReviewItem]:
    i = items_t.c
    found: dict[str, ReviewItem] = {}
    for chunk in _chunks(sorted(set(item_ids)), CHUNK):
        query = select(i.item).where(i.campaign_id == campaign_id, i.item_id.in_(chunk))
        for raw in conn.execute(query).scalars():
            item = ReviewItem.model_validate_json(raw)
            found[item.item_id] = item
    return found


def stage_candidates_page(
    conn: Connection,
    campaign_id: str,
    stage: int,
    only: Sequence[Outcome],
    *,
    after: str | None,
    limit: int,
) -> list[ReviewItem]:
    """Up to `limit` items (after `after`, by item_id) that enter `stage`: every item for stage 0;
    for a later one, the items of the stage before whose outcome is in `only` (all if empty).
    Items whose holder left never enter a stage."""
    i = items_t.c
    query = select(i.item).where(i.campaign_id == campaign_id, _not_left(i.final_outcome))
    if stage > 0:
        s = stages_t.c
        query = query.join(
            stages_t,
            and_(s.campaign_id == campaign_id, s.stage == stage - 1, s.item_id == i.item_id),
        )
        if only:
            query = query.where(s.outcome.in_([Outcome(o).value for o in only]))
    if after is not None:
        query = query.where(i.item_id > after)
    query = query.order_by(i.item_id).limit(limit)
    return [ReviewItem.model_validate_json(item) for item in conn.execute(query).scalars()]


# ---- stages ---------------------------------------------------------------------------------------


def assign_stage(
    conn: Connection, campaign_id: str, stage: int, rows: Sequence[tuple[str, int, list[str]]]
) -> None:
    first: dict[str, tuple[int, list[str]]] = {}
    for item_id, batch, reviewers in rows:
        first.setdefault(item_id, (batch, list(dict.fromkeys(reviewers))))
    ordered = sorted(first)
    s = stages_t.c
    insert = _insert(conn, stages_t).on_conflict_do_nothing()
    new: list[str] = []
    for chunk in _chunks(ordered, ROWS):
        # The rows already there (a rerun) keep their first assignment, reviewers included.
        query = select(s.item_id).where(s.campaign_id == campaign_id, s.stage == stage)
        there = _ids_in_range(conn, query, s.item_id, chunk[0], chunk[-1])
        fresh = [item_id for item_id in chunk if item_id not in there]
        if not fresh:
            continue
        conn.execute(
            insert,
            [
                {
                    "campaign_id": campaign_id,
                    "stage": stage,
                    "item_id": item_id,
                    "batch": first[item_id][0],
                    "reviewers": json.dumps(first[item_id][1]),
                    "outcome": None,
                    "decided_by": None,
                    "justification": "",
                    "decided_at": None,
                }
                for item_id in fresh
            ],
        )
        new.extend(fresh)
    pairs = sorted((r, item_id) for item_id in new for r in first[item_id][1])
    _add_reviewer_rows(conn, campaign_id, stage, [(r, i, first[i][0]) for r, i in pairs])
    refresh_statistics(conn, stages_t, reviewers_t)


def _add_reviewer_rows(
    conn: Connection, campaign_id: str, stage: int, rows: Sequence[tuple[str, str, int]]
) -> None:
    """(reviewer_id, item_id, batch) rows, in key order; those already there are kept."""
    insert = _insert(conn, reviewers_t).on_conflict_do_nothing()
    for chunk in _chunks(rows, ROWS):
        conn.execute(
            insert,
            [
                {
                    "campaign_id": campaign_id,
                    "stage": stage,
                    "reviewer_id": reviewer_id,
                    "item_id": item_id,
                    "batch": batch,
                }
                for reviewer_id, item_id, batch in chunk
            ],
        )


def load_stage_batch(
    conn: Connection, campaign_id: str, stage: int, batch: int
) -> list[ReviewerItem]:
    s, i = stages_t.c, items_t.c
    query = (
        select(
            s.item_id,
            s.reviewers,
            s.outcome,
            s.decided_by,
            s.justification,
            s.decided_at,
            i.employee_id,
            i.holder_name,
            i.resource,
            i.recommendation,
        )
        .join(items_t, and_(i.campaign_id == s.campaign_id, i.item_id == s.item_id))
        .where(s.campaign_id == campaign_id, s.stage == stage, s.batch == batch)
        .order_by(s.item_id)
    )
    found = [
        ReviewerItem(
            item_id=row.item_id,
            holder_employee_id=row.employee_id,
            holder_name=row.holder_name,
            resource=row.resource,
            reviewers=json.loads(row.reviewers),
            recommendation=Recommended(row.recommendation),
            outcome=None if row.outcome is None else Outcome(row.outcome),
            decided_by=row.decided_by,
            justification=row.justification,
            decided_at=row.decided_at,
        )
        for row in conn.execute(query)
    ]
    if stage > 0 and found:
        earlier = _earlier_decisions(conn, campaign_id, stage, [i.item_id for i in found])
        for item in found:
            item.earlier = earlier.get(item.item_id, [])
    return found


def _earlier_decisions(
    conn: Connection, campaign_id: str, stage: int, item_ids: Sequence[str]
) -> dict[str, list[StageDecision]]:
    """Each item's decisions in the stages before `stage`, in stage order (decided ones only)."""
    s = stages_t.c
    found: dict[str, list[StageDecision]] = {}
    for chunk in _chunks(list(item_ids), ROWS):
        query = (
            select(s.item_id, s.stage, s.outcome, s.decided_by, s.justification, s.decided_at)
            .where(
                s.campaign_id == campaign_id,
                s.stage < stage,
                s.item_id.in_(chunk),
                s.outcome.is_not(None),
            )
            .order_by(s.item_id, s.stage)
        )
        for row in conn.execute(query):
            found.setdefault(row.item_id, []).append(
                StageDecision(
                    item_id=row.item_id,
                    stage=row.stage,
                    outcome=Outcome(row.outcome),
                    decided_by=row.decided_by or "",
                    justification=row.justification or "",
                    decided_at=row.decided_at,
                )
            )
    return found


def record_stage_decisions(
    conn: Connection, campaign_id: str, stage: int, decisions: Sequence[StageDecision]
) -> None:
    last = {d.item_id: d for d in decisions}  # the later of two decisions on an item stands
    s = stages_t.c
    statement = (
        update(stages_t)
        .where(
            s.campaign_id == campaign_id,
            s.stage == stage,
            s.item_id == bindparam("b_item"),
            # The holder left: that closed the item, a late decision does not reopen it.
            _not_left(s.outcome),
        )
        .values(
            outcome=bindparam("b_outcome"),
            decided_by=bindparam("b_by"),
            justification=bindparam("b_justification"),
            decided_at=bindparam("b_at", type_=UtcTimestamp()),
        )
    )
    for chunk in _chunks(sorted(last), ROWS):
        conn.execute(
            statement,
            [
                {
                    "b_item": item_id,
                    "b_outcome": Outcome(last[item_id].outcome).value,
                    "b_by": last[item_id].decided_by,
                    "b_justification": last[item_id].justification,
                    "b_at": last[item_id].decided_at,
                }
                for item_id in chunk
            ],
        )
    # Outcomes filled in move `outcome IS NULL` far from what the statistics say.
    refresh_statistics(conn, stages_t)


def add_stage_reviewers(
    conn: Connection, campaign_id: str, stage: int, reviewers_by_item: dict[str, list[str]]
) -> None:
    s = stages_t.c
    changed: list[dict[str, Any]] = []
    added: list[tuple[str, str, int]] = []
    for chunk in _chunks(sorted(reviewers_by_item), CHUNK):
        rows = conn.execute(
            select(s.item_id, s.batch, s.reviewers).where(
                s.campaign_id == campaign_id, s.stage == stage, s.item_id.in_(chunk)
            )
        )
        for item_id, batch, reviewers_json in rows:
            reviewers: list[str] = json.loads(reviewers_json)
            joining = [r for r in dict.fromkeys(reviewers_by_item[item_id]) if r not in reviewers]
            if joining:
                changed.append({"b_item": item_id, "b_reviewers": json.dumps(reviewers + joining)})
            # Every reviewer named, not only the new ones: a row lost to nothing is put back.
            added.extend((r, item_id, batch) for r in reviewers_by_item[item_id])
    statement = (
        update(stages_t)
        .where(s.campaign_id == campaign_id, s.stage == stage, s.item_id == bindparam("b_item"))
        .values(reviewers=bindparam("b_reviewers"))
    )
    for part in _chunks(sorted(changed, key=lambda p: p["b_item"]), ROWS):
        conn.execute(statement, list(part))
    _add_reviewer_rows(conn, campaign_id, stage, sorted(set(added)))
    refresh_statistics(conn, reviewers_t)


def _undecided_join(campaign_id: str, stage: int) -> Any:
    r, s = reviewers_t.c, stages_t.c
    return reviewers_t.join(
        stages_t,
        and_(s.campaign_id == r.campaign_id, s.stage == r.stage, s.item_id == r.item_id),
    ), and_(r.campaign_id == campaign_id, r.stage == stage, s.outcome.is_(None))


def reviewers_with_undecided(conn: Connection, campaign_id: str, stage: int) -> list[str]:
    joined, where = _undecided_join(campaign_id, stage)
    r = reviewers_t.c
    query = select(r.reviewer_id).select_from(joined).where(where).distinct()
    return list(conn.execute(query.order_by(r.reviewer_id)).scalars())


def reviewers_not_started(conn: Connection, campaign_id: str, stage: int) -> list[str]:
    r, s = reviewers_t.c, stages_t.c
    # Two scans of the stage and a set difference: no per-reviewer probe, no index on deciders.
    difference = except_(
        select(r.reviewer_id).where(r.campaign_id == campaign_id, r.stage == stage),
        select(s.decided_by).where(
            s.campaign_id == campaign_id, s.stage == stage, s.decided_by.is_not(None)
        ),
    ).subquery()
    return list(
        conn.execute(select(difference.c.reviewer_id).order_by(difference.c.reviewer_id)).scalars()
    )


def undecided_items_of(
    conn: Connection, campaign_id: str, stage: int, reviewers: Sequence[str]
) -> dict[str, list[str]]:
    joined, where = _undecided_join(campaign_id, stage)
    r = reviewers_t.c
    result: dict[str, list[str]] = {}
    for chunk in _chunks(sorted(set(reviewers)), CHUNK):
        query = (
            select(r.reviewer_id, r.item_id)
            .select_from(joined)
            .where(where, r.reviewer_id.in_(chunk))
            .order_by(r.reviewer_id, r.item_id)
        )
        for reviewer_id, item_id in conn.execute(query):
            result.setdefault(reviewer_id, []).append(item_id)
    return result


def batches_of_reviewer(
    conn: Connection, campaign_id: str, stage: int, reviewer_id: str
) -> list[int]:
    r = reviewers_t.c
    query = (
        select(r.batch)
        .where(r.campaign_id == campaign_id, r.stage == stage, r.reviewer_id == reviewer_id)
        .distinct()
        .order_by(r.batch)
    )
    return list(conn.execute(query).scalars())


# ---- leavers, final outcomes, removals ------------------------------------------------------------


def close_left(
    conn: Connection, campaign_id: str, employee_ids: Sequence[str], at: datetime
) -> int:
    i, s = items_t.c, stages_t.c
    latest_stage = (
        select(func.max(s.stage))
        .where(s.campaign_id == i.campaign_id, s.item_id == i.item_id)
        .correlate(items_t)
        .scalar_subquery()
    )
    changed = 0
    for chunk in _chunks(sorted(set(employee_ids)), CHUNK):
        result = conn.execute(
            update(items_t)
            .where(
                i.campaign_id == campaign_id,
                i.employee_id.in_(chunk),
                _not_left(i.final_outcome),
                # Applied (or refused for another reason) stays as it was.
                i.applied.in_([ApplyState.NOTHING.value, ApplyState.PENDING.value]),
            )
            .values(
                final_stage=latest_stage,
                final_outcome=Outcome.LEFT.value,
                final_decided_by=RULE_LEFT,
                final_justification="",
                final_decided_at=at,
                applied=ApplyState.NOT_APPLIED.value,
                applied_at=at,
                apply_detail=LEFT_DETAIL,
            )
        )
        changed += result.rowcount
        left_items = select(i.item_id).where(
            i.campaign_id == campaign_id,
            i.employee_id.in_(chunk),
            i.final_outcome == Outcome.LEFT.value,
        )
        conn.execute(
            update(stages_t)
            .where(s.campaign_id == campaign_id, s.outcome.is_(None), s.item_id.in_(left_items))
            .values(outcome=Outcome.LEFT.value, decided_by=RULE_LEFT, decided_at=at)
        )
    return changed


def employee_ids_in_campaign(conn: Connection, campaign_id: str) -> list[str]:
    i = items_t.c
    query = (
        select(i.employee_id)
        .where(
            i.campaign_id == campaign_id,
            i.employee_id.is_not(None),
            _not_left(i.final_outcome),
        )
        .distinct()
        .order_by(i.employee_id)
    )
    return list(conn.execute(query).scalars())


def silence_time(progress: CampaignProgress | None, stage: int) -> datetime | None:
    """When the rule decided a stage's silent items: the stage's close, else its planned end."""
    if progress is None:
        return None
    for recorded in progress.stages:
        if recorded.index == stage:
            return recorded.closed_at or recorded.ends_at
    return None


def finalize_outcomes(conn: Connection, campaign_id: str, now: datetime) -> dict[str, int]:
    i, s = items_t.c, stages_t.c
    progress = get_campaign(conn, campaign_id)
    # Rows still undecided are closed by the rule first, so the report shows who decided them.
    open_stages = conn.execute(
        select(s.stage).where(s.campaign_id == campaign_id, s.outcome.is_(None)).group_by(s.stage)
    ).scalars()
    for stage in list(open_stages):
        conn.execute(
            update(stages_t)
            .where(s.campaign_id == campaign_id, s.stage == stage, s.outcome.is_(None))
            .values(
                outcome=Outcome.NOT_REVIEWED.value,
                decided_by=RULE_NOBODY,
                decided_at=silence_time(progress, stage) or now,
            )
        )
    latest = (
        select(s.item_id, func.max(s.stage).label("stage"))
        .where(s.campaign_id == campaign_id)
        .group_by(s.item_id)
        .subquery("latest")
    )
    final = (
        select(s.item_id, s.stage, s.outcome, s.decided_by, s.justification, s.decided_at)
        .join(latest, and_(s.item_id == latest.c.item_id, s.stage == latest.c.stage))
        .where(s.campaign_id == campaign_id)
        .subquery("final")
    )
    conn.execute(
        update(items_t)
        .where(
            i.campaign_id == campaign_id,
            i.item_id == final.c.item_id,
            _not_left(i.final_outcome),
        )
        .values(
            final_stage=final.c.stage,
            final_outcome=final.c.outcome,
            final_decided_by=final.c.decided_by,
            final_justification=final.c.justification,
            final_decided_at=final.c.decided_at,
        )
    )
    # Items no stage took (none had reviewers to route to): nobody decided them either.
    conn.execute(
        update(items_t)
        .where(i.campaign_id == campaign_id, i.final_outcome.is_(None))
        .values(
            final_outcome=Outcome.NOT_REVIEWED.value,
            final_decided_by=RULE_NOBODY,
            final_justification="",
            final_decided_at=now,
        )
    )
    return _count_by(conn, campaign_id, i.final_outcome)


def _count_by(conn: Connection, campaign_id: str, column: Any) -> dict[str, int]:
    query = (
        select(column, func.count())
        .where(items_t.c.campaign_id == campaign_id, column.is_not(None))
        .group_by(column)
        .order_by(column)
    )
    return {key: count for key, count in conn.execute(query)}


def plan_removals(
    conn: Connection, campaign_id: str, batch_size: int
) -> tuple[int, int, list[int]]:
    i = items_t.c
    denied = and_(i.campaign_id == campaign_id, i.final_outcome == Outcome.DENIED.value)
    protected = i.protected.is_(True)
    not_protected = i.protected.is_(False)
    conn.execute(
        update(items_t)
        .where(denied, protected, i.applied == ApplyState.NOTHING.value)
        .values(applied=ApplyState.NOT_APPLIED.value, apply_detail=PROTECTED_DETAIL)
    )
    # Numbering goes on after batches already planned: a rerun finds nothing left to number.
    base = conn.execute(
        select(func.coalesce(func.max(i.apply_batch) + 1, 0)).where(i.campaign_id == campaign_id)
    ).scalar_one()
    position = func.row_number(type_=Integer).over(order_by=i.item_id) - 1
    numbered = (
        select(i.item_id, (position // batch_size).label("n"))
        .where(
            denied, not_protected, i.applied == ApplyState.NOTHING.value, i.apply_batch.is_(None)
        )
        .subquery("numbered")
    )
    conn.execute(
        update(items_t)
        .where(i.campaign_id == campaign_id, i.item_id == numbered.c.item_id)
        .values(applied=ApplyState.PENDING.value, apply_batch=numbered.c.n + base)
    )
    removals, protected_count = conn.execute(
        select(
            func.count().filter(not_protected),
            func.count().filter(protected),
        ).where(denied)
    ).one()
    batches = conn.execute(
        select(i.apply_batch)
        .where(i.campaign_id == campaign_id, i.apply_batch.is_not(None))
        .distinct()
        .order_by(i.apply_batch)
    ).scalars()
    return removals, protected_count, list(batches)


def plan_item_removals(
    conn: Connection, campaign_id: str, item_ids: Sequence[str]
) -> tuple[int | None, int, int]:
    """Denials removed as decided: the protected ones are never removed, the others become
    PENDING in one new apply batch. Items already planned or applied are left as they are.
    Returns (the batch or None when nothing is new, planned, protected)."""
    i = items_t.c
    ids = sorted(set(item_ids))
    fresh = and_(
        i.campaign_id == campaign_id,
        i.item_id.in_(ids),
        i.applied == ApplyState.NOTHING.value,
        i.apply_batch.is_(None),
    )
    protected = conn.execute(
        update(items_t)
        .where(fresh, i.protected.is_(True))
        .values(applied=ApplyState.NOT_APPLIED.value, apply_detail=PROTECTED_DETAIL)
    ).rowcount
    base = conn.execute(
        select(func.coalesce(func.max(i.apply_batch) + 1, 0)).where(i.campaign_id == campaign_id)
    ).scalar_one()
    planned = conn.execute(
        update(items_t)
        .where(fresh, i.protected.is_(False))
        .values(applied=ApplyState.PENDING.value, apply_batch=base)
    ).rowcount
    return (base if planned else None), planned, protected


def removal_batch(
    conn: Connection, campaign_id: str, batch: int
) -> list[tuple[ReviewItem, ApplyState]]:
    i = items_t.c
    query = (
        select(i.item, i.applied)
        .where(i.campaign_id == campaign_id, i.apply_batch == batch)
        .order_by(i.item_id)
    )
    return [
        (ReviewItem.model_validate_json(item), ApplyState(applied))
        for item, applied in conn.execute(query)
    ]


def record_applied(
    conn: Connection,
    campaign_id: str,
    results: Sequence[tuple[str, ApplyState, str, datetime | None]],
) -> None:
    last = {item_id: (state, detail, at) for item_id, state, detail, at in results}
    i = items_t.c
    statement = (
        update(items_t)
        .where(i.campaign_id == campaign_id, i.item_id == bindparam("b_item"))
        .values(
            applied=bindparam("b_state"),
            apply_detail=bindparam("b_detail"),
            applied_at=bindparam("b_at", type_=UtcTimestamp()),
        )
    )
    for chunk in _chunks(sorted(last), ROWS):
        conn.execute(
            statement,
            [
                {
                    "b_item": item_id,
                    "b_state": ApplyState(last[item_id][0]).value,
                    "b_detail": last[item_id][1],
                    "b_at": last[item_id][2],
                }
                for item_id in chunk
            ],
        )


def campaign_counts(conn: Connection, campaign_id: str) -> dict[str, Any]:
    s = stages_t.c
    stages: dict[int, dict[str, Any]] = {}
    query = (
        select(s.stage, s.outcome, func.count())
        .where(s.campaign_id == campaign_id)
        .group_by(s.stage, s.outcome)
        .order_by(s.stage)
    )
    for stage, outcome, count in conn.execute(query):
        entry = stages.setdefault(stage, {"items": 0, "decided": 0, "undecided": 0, "outcomes": {}})
        entry["items"] += count
        if outcome is None:
            entry["undecided"] += count
        else:
            entry["decided"] += count
            entry["outcomes"][outcome] = count
    return {
        "items": count_review_items(conn, campaign_id),
        "stages": stages,
        "final": _count_by(conn, campaign_id, items_t.c.final_outcome),
        "applied": _count_by(conn, campaign_id, items_t.c.applied),
    }


# ---- the report ----------------------------------------------------------------------------------


def report_page(
    conn: Connection,
    campaign_id: str,
    progress: CampaignProgress | None,
    *,
    after: str | None,
    limit: int,
    now: datetime,
) -> list[ReportRow]:
    """Up to `limit` report rows after item `after`, with every stage's decision of each item.

    Before the campaign is finalized, an item's outcome is what its highest stage says so far,
    and a stage row nobody decided yet shows the rule, at the stage's close (or planned end; else
    `now`)."""
    i = items_t.c
    query = select(
        i.item_id,
        i.item,
        i.final_stage,
        i.final_outcome,
        i.final_decided_by,
        i.final_justification,
        i.applied,
        i.applied_at,
        i.apply_detail,
    ).where(i.campaign_id == campaign_id)
    if after is not None:
        query = query.where(i.item_id > after)
    items = conn.execute(query.order_by(i.item_id).limit(limit)).all()
    if not items:
        return []
    # One range read of the page's stage rows (the page is contiguous in item order).
    decisions = _stage_decisions(
        conn, campaign_id, progress, items[0].item_id, items[-1].item_id, now
    )
    return [_report_row(campaign_id, row, decisions.get(row.item_id, [])) for row in items]


def _stage_decisions(
    conn: Connection,
    campaign_id: str,
    progress: CampaignProgress | None,
    first: str,
    last: str,
    now: datetime,
) -> dict[str, list[tuple[int, StageDecision]]]:
    s = stages_t.c
    query = (
        select(s.item_id, s.stage, s.outcome, s.decided_by, s.justification, s.decided_at)
        .where(s.campaign_id == campaign_id, s.item_id >= first, s.item_id <= last)
        .order_by(s.item_id, s.stage)
    )
    result: dict[str, list[tuple[int, StageDecision]]] = {}
    for item_id, stage, outcome, decided_by, justification, decided_at in conn.execute(query):
        if outcome is None:  # not decided (yet): the rule does, when the stage ends
            outcome, decided_by = Outcome.NOT_REVIEWED.value, RULE_NOBODY
            decided_at = silence_time(progress, stage) or now
        decision = StageDecision(
            item_id=item_id,
            stage=stage,
            outcome=Outcome(outcome),
            decided_by=decided_by,
            justification=justification,
            decided_at=decided_at,
        )
        result.setdefault(item_id, []).append((stage, decision))
    return result


def _report_row(campaign_id: str, row: Any, stages: list[tuple[int, StageDecision]]) -> ReportRow:
    item = ReviewItem.model_validate_json(row.item)
    stage: int | None
    if row.final_outcome is not None:
        stage, outcome = row.final_stage, row.final_outcome
        decided_by, justification = row.final_decided_by or "", row.final_justification or ""
    elif stages:  # not finalized yet: the highest stage so far
        stage, last = stages[-1]
        outcome, decided_by, justification = last.outcome.value, last.decided_by, last.justification
    else:
        stage, outcome, decided_by, justification = (
            None,
            Outcome.NOT_REVIEWED.value,
            RULE_NOBODY,
            "",
        )
    return ReportRow(
        campaign_id=campaign_id,
        item_id=item.item_id,
        holder_kind=item.holder_kind.value,
        holder=item.holder_name,
        employee_id=item.employee_id or "",
        resource=item.resource,
        grants="; ".join(item.grants),
        recommendation=item.recommendation.value,
        recommendation_reason=item.recommendation_reason,
        stage="" if stage is None else str(stage + 1),
        outcome=outcome,
        decided_by=decided_by,
        justification=justification,
        applied=row.applied,
        applied_at=row.applied_at,
        apply_detail=row.apply_detail,
        stages=[decision for _, decision in stages],
    )


# ---- refused attempts -----------------------------------------------------------------------------


def record_review_refusal(
    conn: Connection, campaign_id: str, attempt: RefusedReviewAttempt
) -> None:
    conn.execute(
        _insert(conn, review_refusals)
        .values(
            campaign_id=campaign_id,
            at=attempt.at,
            actor_id=attempt.actor_id,
            reason=attempt.reason,
            item_ids=json.dumps(attempt.item_ids),
        )
        .on_conflict_do_nothing()
    )


def review_refusals_of(conn: Connection, campaign_id: str) -> list[RefusedReviewAttempt]:
    r = review_refusals.c
    query = (
        select(r.at, r.actor_id, r.reason, r.item_ids)
        .where(r.campaign_id == campaign_id)
        .order_by(r.at, r.actor_id)
    )
    return [
        RefusedReviewAttempt(
            actor_id=row.actor_id, reason=row.reason, item_ids=json.loads(row.item_ids), at=row.at
        )
        for row in conn.execute(query)
    ]
