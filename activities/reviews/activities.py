"""Access-review activities: snapshot, stage assignments, decisions, reminders, escalation,
leavers, and the removals. The record (AccessRecordStore) holds every item; Graph, the SCIM apps,
Temporal (the holdings ledger, request revokes) and the mailer are injected.

Every write is idempotent: items and assignments are keyed, decisions overwrite with the same
values, and a removal already applied is skipped on a retry (docs/architecture.md, rule 3).
"""

from __future__ import annotations

import asyncio
import html
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.reviews.inventory import ReviewGraph
from activities.reviews.population import Population, TemporalPopulation
from activities.reviews.scope import Ledger, Snapshot
from activities.scim.activities import ScimActivities
from activities.scim.client import ScimAppClient
from audit.store import AccessRecordStore
from domain.access.request import (
    AccessRequestContract,
    Actor,
    NotifyInput,
    NotifyResult,
    RevokeInput,
)
from domain.approval.stages import ApproverKind, ApproverSource
from domain.holdings import GrantKind
from domain.lifecycle.identity import LifecycleStage
from domain.policy.model import Policy
from domain.reviews.campaign import (
    ApplyBatchInput,
    ApplyBatchResult,
    ApplyPlan,
    BatchItems,
    CloseLeaversInput,
    CloseLeaversResult,
    LoadBatchInput,
    NotStarted,
    NotStartedInput,
    OpenStageInput,
    PlanApplyInput,
    PlanItemsInput,
    PlannedItems,
    RecordCampaignInput,
    RecordDecisionsInput,
    RemindInput,
    RemindResult,
    ReviewActivityNames,
    SnapshotInput,
    SnapshotResult,
    StageOpened,
)
from domain.reviews.items import ApplyState, HolderKind, Outcome, ReviewItem
from domain.reviews.rules import item_reviewers, recorded_decisions

T = TypeVar("T")
MAIL_CONCURRENCY = 8
LEFT_STAGES = (LifecycleStage.DISABLED.value, LifecycleStage.DELETED.value)


class Notifier(Protocol):
    """Mails people by employee id (AccessActivities.notify)."""

    async def notify(self, input: NotifyInput) -> NotifyResult: ...


class ReviewActivities:
    def __init__(
        self,
        store: AccessRecordStore,
        policy: Policy,
        graph: ReviewGraph,
        scim_clients: Mapping[str, ScimAppClient],
        scim: ScimActivities,
        temporal: Client,
        notifier: Notifier,
        population: Population | None = None,
    ) -> None:
        self._store = store
        self._policy = policy
        self._graph = graph
        self._scim_clients = dict(scim_clients)
        self._scim = scim
        self._temporal = temporal
        self._notifier = notifier
        self._population = population or TemporalPopulation(temporal)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        # The store is synchronous (SQLAlchemy Core): off the event loop, so heartbeats and
        # other activities carry on while it writes.
        return await asyncio.to_thread(fn, *args)

    # ---- snapshot ---------------------------------------------------------------------------------

    @activity.defn(name=ReviewActivityNames.SNAPSHOT)
    async def snapshot(self, input: SnapshotInput) -> SnapshotResult:
        written = 0

        async def write(items: list[ReviewItem]) -> None:
            nonlocal written
            await self._db(self._store.add_review_items, input.campaign_id, items)
            written += len(items)
            activity.heartbeat(f"{written} item(s) written")

        snapshot = Snapshot(
            input.definition,
            self._policy,
            self._graph,
            self._scim_clients,
            self._population,
            Ledger(self._temporal),
            input.started_at,
            write,
        )
        await snapshot.run()
        total = await self._db(self._store.count_review_items, input.campaign_id)
        return SnapshotResult(
            items=total,
            by_scope=snapshot.by_scope,
            filtered_out=snapshot.filtered_out,
            birthright_only=snapshot.birthright_only,
            missing=snapshot.missing,
        )

    # ---- stages ---------------------------------------------------------------------------------

    @activity.defn(name=ReviewActivityNames.OPEN_STAGE)
    async def open_stage(self, input: OpenStageInput) -> StageOpened:
        stage = input.definition.stages[input.stage]
        resolver = _Resolver(self._graph, await self._stages())
        count = without = 0
        per_reviewer: Counter[str] = Counter()
        pages = self._store.iter_stage_candidates(input.campaign_id, input.stage, stage.only)
        while True:
            page = await self._db(next, pages, None)
            if page is None:
                break
            rows: list[tuple[str, int, list[str]]] = []
            for item in page:
                resolved = await resolver.resolve(stage.reviewers, item)
                fallback = await resolver.resolve(stage.fallback, item)
                reviewers, used_fallback = item_reviewers(
                    resolved, fallback, item.employee_id, stage
                )
                without += used_fallback
                rows.append((item.item_id, count // input.batch_size, reviewers))
                per_reviewer.update(reviewers)
                count += 1
            await self._db(self._store.assign_stage, input.campaign_id, input.stage, rows)
            activity.heartbeat(f"{count} item(s) assigned")
        label = stage.label(input.stage)
        await self._mail_each(
            per_reviewer,
            lambda n: (
                f"Access review: {n} item(s) to review in {input.definition.name}",
                f"<p>You have {n} item(s) to review in <b>{html.escape(input.definition.name)}"
                f"</b> ({html.escape(label)}), by {input.ends_at:%Y-%m-%d %H:%M} UTC.</p>"
                "<p>Decide with <code>tenure reviews decide</code> or the API.</p>",
            ),
        )
        return StageOpened(
            items=count,
            batches=-(-count // input.batch_size),
            without_reviewers=without,
        )

    @activity.defn(name=ReviewActivityNames.LOAD_BATCH)
    async def load_batch(self, input: LoadBatchInput) -> BatchItems:
        items = await self._db(
            self._store.load_stage_batch, input.campaign_id, input.stage, input.batch
        )
        return BatchItems(items=items)

    @activity.defn(name=ReviewActivityNames.RECORD_DECISIONS)
    async def record_decisions(self, input: RecordDecisionsInput) -> None:
        decisions = recorded_decisions(input.items, datetime.now(UTC))
        await self._db(
            self._store.record_stage_decisions, input.campaign_id, input.stage, decisions
        )

    @activity.defn(name=ReviewActivityNames.REMIND)
    async def remind(self, input: RemindInput) -> RemindResult:
        """Only reviewers with undecided items: one who has finished hears nothing more."""
        reviewers = await self._db(
            self._store.reviewers_with_undecided, input.campaign_id, input.stage
        )
        waiting = await self._db(
            self._store.undecided_items_of, input.campaign_id, input.stage, reviewers
        )
        counts = Counter({r: len(ids) for r, ids in waiting.items() if ids})
        await self._mail_each(
            counts,
            lambda n: (
                f"Reminder: {n} item(s) still to review in {input.review_name}",
                f"<p>{n} item(s) still wait for your decision in "
                f"<b>{html.escape(input.review_name)}</b> ({html.escape(input.stage_name)}). "
                f"The stage ends in {input.lead}, at {input.ends_at:%Y-%m-%d %H:%M} UTC.</p>",
            ),
        )
        return RemindResult(reviewers=len(counts))

    @activity.defn(name=ReviewActivityNames.FIND_NOT_STARTED)
    async def find_not_started(self, input: NotStartedInput) -> NotStarted:
        stage = input.definition.stages[input.stage]
        idle = await self._db(self._store.reviewers_not_started, input.campaign_id, input.stage)
        if not idle:
            return NotStarted(reviewers=[], fallback=[])
        resolver = _Resolver(self._graph, await self._stages())
        # Item-free sources only (named people, group members): the fallback for everyone idle.
        fallback = await resolver.resolve(
            [s for s in stage.fallback if s.kind in (ApproverKind.PEOPLE, ApproverKind.GROUP)],
            None,
        )
        if not fallback:
            return NotStarted(reviewers=idle, fallback=[])
        waiting = await self._db(
            self._store.undecided_items_of, input.campaign_id, input.stage, idle
        )
        items = sorted({i for ids in waiting.values() for i in ids})
        holders = await self._db(self._store.review_items, input.campaign_id, items)
        # As the batches do: a fallback reviewer never joins their own item.
        added = {
            i: [f for f in fallback if f != holders[i].employee_id] for i in items if i in holders
        }
        await self._db(
            self._store.add_stage_reviewers,
            input.campaign_id,
            input.stage,
            {i: people for i, people in added.items() if people},
        )
        name = input.definition.name
        await self._mail_each(
            Counter({f: len(items) for f in fallback}),
            lambda n: (
                f"Access review escalated to you: {n} item(s) in {name}",
                f"<p>Reviewers of {n} item(s) in <b>{html.escape(name)}</b> have not started; "
                "you have been added as a fallback reviewer.</p>",
            ),
        )
        return NotStarted(reviewers=idle, fallback=fallback)

    @activity.defn(name=ReviewActivityNames.CLOSE_LEAVERS)
    async def close_leavers(self, input: CloseLeaversInput) -> CloseLeaversResult:
        stages = await self._stages()
        left = [e for e, stage in stages.items() if stage in LEFT_STAGES]
        if not left:
            return CloseLeaversResult(items=0)
        changed = await self._db(self._store.close_left, input.campaign_id, left, datetime.now(UTC))
        return CloseLeaversResult(items=changed)

    # ---- apply ------------------------------------------------------------------------------------

    @activity.defn(name=ReviewActivityNames.PLAN_APPLY)
    async def plan_apply(self, input: PlanApplyInput) -> ApplyPlan:
        outcomes = await self._db(self._store.finalize_outcomes, input.campaign_id)
        removals, protected, batches = await self._db(self._store.plan_removals, input.campaign_id)
        items = await self._db(self._store.count_review_items, input.campaign_id)
        return ApplyPlan(
            items=items,
            removals=removals,
            protected=protected,
            left=outcomes.get(Outcome.LEFT.value, 0),
            batches=batches,
            outcomes={Outcome(k): v for k, v in outcomes.items()},
        )

    @activity.defn(name=ReviewActivityNames.PLAN_ITEMS)
    async def plan_items(self, input: PlanItemsInput) -> PlannedItems:
        batch, planned, protected = await self._db(
            self._store.plan_item_removals, input.campaign_id, input.item_ids
        )
        return PlannedItems(batch=batch, planned=planned, protected=protected)

    @activity.defn(name=ReviewActivityNames.APPLY_BATCH)
    async def apply_batch(self, input: ApplyBatchInput) -> ApplyBatchResult:
        rows = await self._db(self._store.removal_batch, input.campaign_id, input.batch)
        pending = [item for item, state in rows if state is ApplyState.PENDING]
        now = datetime.now(UTC)
        if input.not_applied_reason is not None or input.dry_run:
            reason = input.not_applied_reason or "dry run: would be removed"
            results = [(i.item_id, ApplyState.NOT_APPLIED, reason, now) for i in pending]
        else:
            managed = set(await self._stages()) if pending else set()
            results = await _Removal(self, input, managed).run(pending)
        await self._db(self._store.record_applied, input.campaign_id, results)
        counts = Counter(state.value for _, state, _, _ in results)
        done = Counter(
            state.value for _, state in rows if state is not ApplyState.PENDING
        )  # applied by an earlier attempt
        return ApplyBatchResult(applied=dict(counts + done))

    @activity.defn(name=ReviewActivityNames.RECORD_CAMPAIGN)
    async def record_campaign(self, input: RecordCampaignInput) -> None:
        await self._db(self._store.record_campaign, input.progress)

    # ---- helpers ----------------------------------------------------------------------------------

    async def _stages(self) -> dict[str, str]:
        return await self._population.identity_stages()

    async def _mail_each(
        self, counts: Mapping[str, int], words: Callable[[int], tuple[str, str]]
    ) -> None:
        limit = asyncio.Semaphore(MAIL_CONCURRENCY)

        async def one(employee_id: str, n: int) -> None:
            subject, body = words(n)
            async with limit:
                await self._notifier.notify(
                    NotifyInput(
                        sender=self._policy.tenant.mail_sender,
                        to_employee_ids=[employee_id],
                        subject=subject,
                        html_body=body,
                    )
                )

        await asyncio.gather(*(one(r, n) for r, n in counts.items()))


class _Resolver:
    """Reviewer sources to employee ids for one item, with lookups kept for the activity."""

    def __init__(self, graph: ReviewGraph, stages: dict[str, str]) -> None:
        self._graph = graph
        self._stages = stages
        self._managers: dict[str, str | None] = {}
        self._groups: dict[str, list[str]] = {}

    async def resolve(
        self, sources: Sequence[ApproverSource], item: ReviewItem | None
    ) -> list[str]:
        found: list[str] = []
        for source in sources:
            for person in await self._source(source, item):
                # A person Tenure knows who is not active (left, or not started) reviews nothing.
                stage = self._stages.get(person)
                if stage not in (None, LifecycleStage.ACTIVE.value):
                    continue
                if person not in found:
                    found.append(person)
        return found

    async def _source(self, source: ApproverSource, item: ReviewItem | None) -> list[str]:
        kind = source.kind
        if kind is ApproverKind.PEOPLE:
            return list(source.people)
        if kind is ApproverKind.GROUP:
            assert source.group is not None
            if source.group not in self._groups:
                self._groups[source.group] = await self._graph.group_member_employee_ids(
                    source.group
                )
            return self._groups[source.group]
        if item is None:
            return []
        if kind is ApproverKind.OWNER:
            return list(item.owners)
        if item.holder_kind is not HolderKind.USER or item.holder_id.startswith(
            ("scim:", "employee:")
        ):
            return []  # a workload identity, or an account with no Graph user: no manager
        manager = await self._manager(item.holder_id)
        if kind is ApproverKind.MANAGER:
            return [manager] if manager else []
        if manager is None:
            return []
        user_id = await self._graph.user_id_of(manager)
        second = await self._manager(user_id) if user_id else None
        return [second] if second else []

    async def _manager(self, user_id: str) -> str | None:
        if user_id not in self._managers:
            self._managers[user_id] = await self._graph.manager_employee_id(user_id)
        return self._managers[user_id]


class _Removal:
    """One batch's removals: through the holdings ledger for Tenure's identities (a package ends
    through its request's own revoke), directly in Graph or SCIM for access held outside Tenure."""

    def __init__(self, owner: ReviewActivities, input: ApplyBatchInput, managed: set[str]) -> None:
        self._a = owner
        self._input = input
        self._ledger = Ledger(owner._temporal)
        self._managed = managed  # employee ids of Tenure's identities: only they have a ledger
        self._revoked: set[str] = set()  # requests this batch has revoked already

    async def run(
        self, items: list[ReviewItem]
    ) -> list[tuple[str, ApplyState, str, datetime | None]]:
        results: list[tuple[str, ApplyState, str, datetime | None]] = []
        direct_groups: list[ReviewItem] = []
        for n, item in enumerate(items):
            outcome = await self._one(item, direct_groups)
            if outcome is not None:
                results.append((item.item_id, *outcome, datetime.now(UTC)))
            if n % 50 == 0:
                activity.heartbeat(f"{n} of {len(items)}")
        if direct_groups:
            pairs = [(i.resource_id, i.holder_id) for i in direct_groups]
            answers = await self._a._graph.remove_memberships(pairs)
            for item, pair in zip(direct_groups, pairs, strict=True):
                answer = answers[pair]
                if answer == "failed":
                    results.append(
                        (item.item_id, ApplyState.FAILED, "Graph refused the removal", None)
                    )
                else:
                    detail = (
                        "removed from the group"
                        if answer == "changed"
                        else "was no longer a member"
                    )
                    results.append((item.item_id, ApplyState.REMOVED, detail, datetime.now(UTC)))
        return results

    async def _one(
        self, item: ReviewItem, direct_groups: list[ReviewItem]
    ) -> tuple[ApplyState, str] | None:
        if item.resource.startswith("package:"):
            return await self._revoke(item, item.request_ids, kept_by=[])
        if item.holder_kind is HolderKind.USER and item.employee_id in self._managed:
            grants = await self._ledger.grants(item.employee_id, item.resource)
            if grants:
                packages = [g.id for g in grants if g.kind is GrantKind.PACKAGE]
                others = [g.describe() for g in grants if g.kind is not GrantKind.PACKAGE]
                if not packages:
                    return ApplyState.NOT_APPLIED, (
                        f"granted by {', '.join(others)}: policy gives it, change the rule to "
                        "remove it"
                    )
                return await self._revoke(item, packages, kept_by=others)
        return await self._direct(item, direct_groups)

    async def _revoke(
        self, item: ReviewItem, request_ids: list[str], kept_by: list[str]
    ) -> tuple[ApplyState, str]:
        # A package's group, account and role are items of their own: revoke it once per batch.
        for request_id in [r for r in request_ids if r not in self._revoked]:
            self._revoked.add(request_id)
            handle = self._a._temporal.get_workflow_handle(request_id)
            try:
                await handle.execute_update(
                    AccessRequestContract.UPDATE_REVOKE,
                    RevokeInput(
                        actor=Actor(employee_id=f"review:{self._input.campaign_id}", is_admin=True),
                        reason=f"access review {self._input.review_name}: denied",
                    ),
                )
            except WorkflowUpdateFailedError:
                pass  # refused: the grant has already ended (revoked, expired): done
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise  # gone (closed and past retention): nothing left to revoke
        ended = ", ".join(request_ids)
        if kept_by:
            return ApplyState.KEPT_BY_OTHER_GRANT, (
                f"request {ended} revoked; still held through {', '.join(kept_by)}"
            )
        return ApplyState.REMOVED, f"request {ended} revoked (its package's access is removed)"

    async def _direct(
        self, item: ReviewItem, direct_groups: list[ReviewItem]
    ) -> tuple[ApplyState, str] | None:
        resource = item.resource
        if resource.startswith("group:"):
            direct_groups.append(item)
            return None  # removed together, by $batch
        if resource.startswith("sp:"):
            assert item.assignment_id is not None
            removed = await self._a._graph.delete_assignment(item.resource_id, item.assignment_id)
            return ApplyState.REMOVED, (
                "app-role assignment deleted" if removed else "assignment was already gone"
            )
        if resource.startswith("app:"):
            _, app, *role = resource.split(":", 2)
            assert item.assignment_id is not None
            if role:
                await self._a._scim.remove_role(app, role[0], item.assignment_id)
                return ApplyState.REMOVED, f"role {role[0]} removed in {app}"
            client = self._a._scim_clients[app]
            changed = await client.deactivate(
                item.assignment_id, call="deactivate reviewed account"
            )
            return ApplyState.REMOVED, (
                f"account deactivated in {app}" if changed else f"account already gone from {app}"
            )
        return ApplyState.FAILED, f"no way to remove {resource}"
