"""The access record: requests, their stories, who must decide, every access change, the HR
events the intake has taken (by event id and content digest), and access-review campaigns (their
items, decisions per stage, removals and report; `audit/reviews.py`), and privileged access:
security incidents, PIM alerts and SoD violations (`audit/privileged.py`).

It lives on SQLite (the embedded default: one file, `TENURE_ACCESS_RECORD_DB`) or on PostgreSQL
(`TENURE_ACCESS_RECORD_URL`); `audit/location.py` says how either is named and reached. The store
is SQLAlchemy Core: the tables are in `audit/schema.py`, the writes in `audit/writes.py`, the reads
in `audit/reads.py`, and opening a store migrates the record to the newest schema
(`audit/migrate.py`, Alembic revisions under `audit/migrations/versions/`), adopting files made by
releases before Alembic.

Two writers share the record: the worker (requests and access changes, through the activities in
`activities/record.py`) and the API (the HR events it takes); any number of readers (the API, the
CLI) read it. On SQLite the file runs in WAL mode, so readers never block the writer nor each
other, and the writes of one process queue on a lock here. Every call takes a pooled connection
and gives it back, so a store object may be used from any thread (`asyncio.to_thread`). The
methods are synchronous.

Every write is idempotent and monotonic (see `audit/writes.py`): story lines and access changes
are inserted once each and never changed, and a request's view is replaced only by a view at least
as far along. Nothing here ever deletes a story line or an access change. Campaign writes are
idempotent too (`audit/reviews.py`), and a campaign's record, report included, is never pruned.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from audit import privileged, reads, reviews, writes
from audit.location import (
    BUSY_TIMEOUT_MS,
    ENV_VAR,
    PASSWORD_FILE_VAR,
    URL_VAR,
    WRITE,
    create_record_engine,
    ensure_wal,
    record_url,
    record_url_from_env,
    redacted,
    store_path_from_env,
)
from audit.migrate import migrate
from audit.model import AccessRecordError, HrEventConflict, ReceivedHrEvent
from domain.access.request import RequestView
from domain.audit import AccessChange
from domain.detective.sod_violations import SodViolation, ViolationStatus
from domain.pim.alerts import AlertFinding, AlertKind, AlertScanResult, PimAlert
from domain.reviews.campaign import CampaignProgress, RefusedReviewAttempt
from domain.reviews.items import (
    ApplyState,
    Outcome,
    ReportRow,
    ReviewerItem,
    ReviewItem,
    StageDecision,
)
from domain.security.incident import IncidentStatus, IncidentView

__all__ = [
    "BUSY_TIMEOUT_MS",
    "ENV_VAR",
    "PASSWORD_FILE_VAR",
    "URL_VAR",
    "AccessRecordError",
    "AccessRecordStore",
    "HrEventConflict",
    "ReceivedHrEvent",
    "record_url_from_env",
    "store_path_from_env",
]

_PAGE = 500  # access changes read per connection while exporting


class AccessRecordStore:
    """Requests and access changes on SQLite or PostgreSQL; safe for several writers and readers.

    `location`: a SQLite file (a Path, or text without a scheme), or a database URL (text or a
    `sqlalchemy.URL`; a password in it is never shown). `AccessRecordStore.from_env()` reads the
    environment (`record_url_from_env`).
    """

    def __init__(self, location: str | Path | URL) -> None:
        self.url = record_url(location)
        self.backend = self.url.get_backend_name()
        # The SQLite file, or None on PostgreSQL.
        self.path = Path(self.url.database) if self.backend == "sqlite" else None  # type: ignore[arg-type]
        self.where = str(self.path) if self.path is not None else redacted(self.url)
        # SQLite: one writer at a time within this process; threads queue here instead of in
        # SQLite's busy handler, which sleeps in steps of up to 100 ms between retries of a held
        # lock. PostgreSQL locks rows, not the database: its writers need no queue.
        self._write_lock: contextlib.AbstractContextManager[object] = (
            threading.Lock() if self.backend == "sqlite" else contextlib.nullcontext()
        )
        self._engine = create_record_engine(self.url)
        try:
            if self.backend == "sqlite":
                ensure_wal(self._engine, self.where)
            self.revision = migrate(self._engine, self.where)
        except DBAPIError as err:
            self._engine.dispose()
            raise AccessRecordError(
                f"cannot open the access record at {self.where}: {_reason(err)}"
            ) from err
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def from_env(cls) -> AccessRecordStore:
        """The store the environment names (TENURE_ACCESS_RECORD_URL or _DB), or AccessRecordError."""
        url = record_url_from_env()
        assert url is not None
        return cls(url)

    def __repr__(self) -> str:
        return f"AccessRecordStore({self.where!r})"

    def close(self) -> None:
        """Close the pooled connections (the store opens new ones if used again)."""
        self._engine.dispose()

    # ---- writes (the worker; the API for HR events) --------------------------------------------

    def record_request(self, view: RequestView) -> None:
        """Keep the request's view, its story lines and who must decide; idempotent and monotonic."""
        with self._writing() as conn:
            writes.record_request(conn, view)

    def record_access_changes(self, changes: Iterable[AccessChange]) -> None:
        """Keep each change once: a change id already recorded keeps its first copy."""
        with self._writing() as conn:
            writes.record_access_changes(conn, list(changes))

    def claim_hr_events(self, events: Sequence[ReceivedHrEvent]) -> list[HrEventConflict]:
        """Bind each event id to its content, all or nothing.

        Returns the events whose id is already bound to other content; then nothing is written.
        Otherwise every new id is bound (a repeat with the same digest changes nothing). One
        transaction: of two concurrent requests reusing an id, exactly one binds it and the other
        gets the conflict, on either backend.
        """
        with self._write_lock, self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin() as transaction:
                conflicts = writes.claim_hr_events(conn, events)
                if conflicts:
                    transaction.rollback()
        return conflicts

    # ---- reads (the API, the CLI) --------------------------------------------------------------

    def get_request(self, request_id: str) -> RequestView | None:
        with self._engine.connect() as conn:
            return reads.get_request(conn, request_id)

    def list_requests(
        self,
        *,
        employee_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        package_prefix: str | None = None,
    ) -> list[RequestView]:
        """Requests newest first (by submission); `employee_id` matches requester or beneficiary,
        `package_prefix` the start of the package id (`pim:` for role activations)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._engine.connect() as conn:
            return reads.list_requests(
                conn,
                employee_id=employee_id,
                status=status,
                limit=limit,
                package_prefix=package_prefix,
            )

    def awaiting_decision(self, employee_id: str) -> list[RequestView]:
        """Requests whose waiting stage still needs this person's decision, longest waiting first."""
        with self._engine.connect() as conn:
            return reads.awaiting_decision(conn, employee_id)

    def iter_access_changes(
        self, *, since: datetime | None = None, employee_id: str | None = None
    ) -> Iterator[AccessChange]:
        """Every recorded change in time order (ties by change id), from `since` on if given.

        Reads a page at a time, each on its own short connection, so a slow consumer holds no
        connection open and may resume the iterator from another thread.
        """
        after: tuple[datetime, str] | None = None
        while True:
            with self._engine.connect() as conn:
                rows = reads.access_changes_page(
                    conn, since=since, employee_id=employee_id, after=after, limit=_PAGE
                )
            for row in rows:
                yield AccessChange.model_validate_json(row.change)
            if len(rows) < _PAGE:
                return
            after = (rows[-1].at, rows[-1].change_id)

    # ---- access-review campaigns (audit/reviews.py says how they are kept) ---------------------

    def record_campaign(self, progress: CampaignProgress) -> None:
        """Keep the campaign's latest progress; a finished campaign is never reopened by an older
        write (one without `finished_at`)."""
        with self._writing() as conn:
            reviews.record_campaign(conn, progress, datetime.now(UTC))

    def get_campaign(self, campaign_id: str) -> CampaignProgress | None:
        with self._engine.connect() as conn:
            return reviews.get_campaign(conn, campaign_id)

    def list_campaigns(
        self, *, review_id: str | None = None, limit: int = 50
    ) -> list[CampaignProgress]:
        """Campaigns newest first (by start), of one review if given."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._engine.connect() as conn:
            return reviews.list_campaigns(conn, review_id=review_id, limit=limit)

    def add_review_items(self, campaign_id: str, items: Sequence[ReviewItem]) -> int:
        """Keep each item once (an item id already there keeps its first copy); how many are new."""
        with self._writing() as conn:
            return reviews.add_review_items(conn, campaign_id, items)

    def count_review_items(self, campaign_id: str) -> int:
        with self._engine.connect() as conn:
            return reviews.count_review_items(conn, campaign_id)

    def review_items(self, campaign_id: str, item_ids: Sequence[str]) -> dict[str, ReviewItem]:
        """The campaign's items with these ids, by id (ids it does not hold are left out)."""
        with self._engine.connect() as conn:
            return reviews.review_items_by_id(conn, campaign_id, item_ids)

    def iter_stage_candidates(
        self, campaign_id: str, stage: int, only: Sequence[Outcome], page: int = 1000
    ) -> Iterator[list[ReviewItem]]:
        """Pages (by item id) of the items entering `stage`: every item for stage 0; for a later
        stage, those of the stage before whose outcome is in `only` (all of them if empty). Items
        whose holder left never enter. Each page is read on its own short connection."""
        if page < 1:
            raise ValueError("page must be at least 1")
        after: str | None = None
        while True:
            with self._engine.connect() as conn:
                items = reviews.stage_candidates_page(
                    conn, campaign_id, stage, only, after=after, limit=page
                )
            if items:
                yield items
            if len(items) < page:
                return
            after = items[-1].item_id

    def assign_stage(
        self, campaign_id: str, stage: int, rows: Sequence[tuple[str, int, list[str]]]
    ) -> None:
        """Put items (item_id, batch, reviewers) in a stage; an item already assigned to it keeps
        its first assignment (batch and reviewers)."""
        with self._writing() as conn:
            reviews.assign_stage(conn, campaign_id, stage, rows)

    def load_stage_batch(self, campaign_id: str, stage: int, batch: int) -> list[ReviewerItem]:
        """The batch's items by item id, with their outcome if already decided (a retry resumes)."""
        with self._engine.connect() as conn:
            return reviews.load_stage_batch(conn, campaign_id, stage, batch)

    def record_stage_decisions(
        self, campaign_id: str, stage: int, decisions: Sequence[StageDecision]
    ) -> None:
        """Overwrite the items' outcome in the stage (not an item closed because its holder left)."""
        with self._writing() as conn:
            reviews.record_stage_decisions(conn, campaign_id, stage, decisions)

    def add_stage_reviewers(
        self, campaign_id: str, stage: int, reviewers_by_item: dict[str, list[str]]
    ) -> None:
        """Escalation: these reviewers join the items (in the stage) too; items not in it are skipped."""
        with self._writing() as conn:
            reviews.add_stage_reviewers(conn, campaign_id, stage, reviewers_by_item)

    def reviewers_with_undecided(self, campaign_id: str, stage: int) -> list[str]:
        """Reviewers with at least one item of the stage still undecided, by id."""
        with self._engine.connect() as conn:
            return reviews.reviewers_with_undecided(conn, campaign_id, stage)

    def reviewers_not_started(self, campaign_id: str, stage: int) -> list[str]:
        """Reviewers with items in the stage who decided none of them, by id."""
        with self._engine.connect() as conn:
            return reviews.reviewers_not_started(conn, campaign_id, stage)

    def undecided_items_of(
        self, campaign_id: str, stage: int, reviewers: Sequence[str]
    ) -> dict[str, list[str]]:
        """Each reviewer's undecided item ids in the stage (reviewers with none are left out)."""
        with self._engine.connect() as conn:
            return reviews.undecided_items_of(conn, campaign_id, stage, reviewers)

    def batches_of_reviewer(self, campaign_id: str, stage: int, reviewer_id: str) -> list[int]:
        with self._engine.connect() as conn:
            return reviews.batches_of_reviewer(conn, campaign_id, stage, reviewer_id)

    def close_left(self, campaign_id: str, employee_ids: Sequence[str], at: datetime) -> int:
        """Items of these holders with nothing applied yet (nothing, or a pending removal) become
        LEFT with nothing to apply, and their undecided stage rows LEFT; how many items changed."""
        with self._writing() as conn:
            return reviews.close_left(conn, campaign_id, employee_ids, at)

    def employee_ids_in_campaign(self, campaign_id: str) -> list[str]:
        """The distinct employee ids of holders whose items are not closed as LEFT, by id."""
        with self._engine.connect() as conn:
            return reviews.employee_ids_in_campaign(conn, campaign_id)

    def finalize_outcomes(self, campaign_id: str, *, at: datetime | None = None) -> dict[str, int]:
        """Each item's final outcome: its highest stage's (LEFT items keep theirs); items by outcome.

        Stage rows nobody decided are closed first as NOT_REVIEWED by "rule: nobody decided", at
        the stage's close (or planned end) as the recorded progress says, else `at` (default now).
        """
        with self._writing() as conn:
            return reviews.finalize_outcomes(conn, campaign_id, at or datetime.now(UTC))

    def plan_removals(self, campaign_id: str, batch_size: int = 500) -> tuple[int, int, list[int]]:
        """(removals, protected, apply batches): denied protected items are never removed; the
        other denied ones become PENDING in batches of `batch_size` (in item order). A rerun
        numbers only what is new, so returns the same when nothing changed."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        with self._writing() as conn:
            return reviews.plan_removals(conn, campaign_id, batch_size)

    def plan_item_removals(
        self, campaign_id: str, item_ids: Sequence[str]
    ) -> tuple[int | None, int, int]:
        """Denials to remove as decided, as one new apply batch (see `plan_removals`); returns
        (batch or None, planned, protected). A rerun plans nothing again."""
        with self._writing() as conn:
            return reviews.plan_item_removals(conn, campaign_id, item_ids)

    def removal_batch(self, campaign_id: str, batch: int) -> list[tuple[ReviewItem, ApplyState]]:
        """The apply batch's items by item id, each with its state (a retried batch skips the done)."""
        with self._engine.connect() as conn:
            return reviews.removal_batch(conn, campaign_id, batch)

    def record_applied(
        self,
        campaign_id: str,
        results: Sequence[tuple[str, ApplyState, str, datetime | None]],
    ) -> None:
        """(item_id, state, detail, at) of removals applied (or not); overwrites."""
        with self._writing() as conn:
            reviews.record_applied(conn, campaign_id, results)

    def campaign_counts(self, campaign_id: str) -> dict[str, Any]:
        """{"items": n, "stages": {stage: {"items", "decided", "undecided", "outcomes"}},
        "final": {outcome: n}, "applied": {ApplyState: n}}, for progress displays."""
        with self._engine.connect() as conn:
            return reviews.campaign_counts(conn, campaign_id)

    def iter_report(self, campaign_id: str, page: int = 1000) -> Iterator[ReportRow]:
        """One row per item by item id, each page read on its own short connection."""
        if page < 1:
            raise ValueError("page must be at least 1")
        with self._engine.connect() as conn:
            progress = reviews.get_campaign(conn, campaign_id)
        now = datetime.now(UTC)
        after: str | None = None
        while True:
            with self._engine.connect() as conn:
                rows = reviews.report_page(
                    conn, campaign_id, progress, after=after, limit=page, now=now
                )
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].item_id

    def record_review_refusal(self, campaign_id: str, attempt: RefusedReviewAttempt) -> None:
        """Keep a refused attempt once (by campaign, time and actor)."""
        with self._writing() as conn:
            reviews.record_review_refusal(conn, campaign_id, attempt)

    def review_refusals(self, campaign_id: str) -> list[RefusedReviewAttempt]:
        """The campaign's refused attempts in time order."""
        with self._engine.connect() as conn:
            return reviews.review_refusals_of(conn, campaign_id)

    # ---- privileged access: incidents, PIM alerts, SoD violations (audit/privileged.py) ---------

    def record_incident(self, view: IncidentView) -> None:
        """Keep the incident's view and its steps; idempotent and monotonic."""
        with self._writing() as conn:
            privileged.record_incident(conn, view)

    def get_incident(self, incident_id: str) -> IncidentView | None:
        with self._engine.connect() as conn:
            return privileged.get_incident(conn, incident_id)

    def list_incidents(
        self,
        *,
        employee_id: str | None = None,
        status: IncidentStatus | str | None = None,
        limit: int = 100,
    ) -> list[IncidentView]:
        """Incidents newest first (by when they were received)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._engine.connect() as conn:
            return privileged.list_incidents(
                conn, employee_id=employee_id, status=status, limit=limit
            )

    def apply_alert_scan(
        self, kinds: Iterable[AlertKind], findings: Sequence[AlertFinding], at: datetime
    ) -> AlertScanResult:
        """Raise, keep open and resolve alerts by what a scan at `at` of these kinds saw; the
        same scan applied again changes nothing (and raises nothing)."""
        with self._writing() as conn:
            return privileged.apply_alert_scan(conn, kinds, findings, at)

    def list_alerts(
        self, *, open_only: bool = True, kind: AlertKind | str | None = None, limit: int = 200
    ) -> list[PimAlert]:
        """Alerts most recently first raised first: the open ones, or all."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._engine.connect() as conn:
            return privileged.list_alerts(conn, open_only=open_only, kind=kind, limit=limit)

    def record_sod_violation(self, violation: SodViolation) -> None:
        """Keep the violation's latest state; an older one (by `updated_at`) never replaces it."""
        with self._writing() as conn:
            privileged.record_sod_violation(conn, violation)

    def get_sod_violation(self, violation_id: str) -> SodViolation | None:
        with self._engine.connect() as conn:
            return privileged.get_sod_violation(conn, violation_id)

    def list_sod_violations(
        self,
        *,
        status: ViolationStatus | str | None = None,
        employee_id: str | None = None,
        limit: int = 500,
    ) -> list[SodViolation]:
        """Violations newest first (by detection)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._engine.connect() as conn:
            return privileged.list_sod_violations(
                conn, status=status, employee_id=employee_id, limit=limit
            )

    # ---- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """One write transaction, committed on leaving (rolled back on an exception)."""
        with self._write_lock, self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn


def _reason(err: DBAPIError) -> str:
    return str(err.orig).strip().splitlines()[0] if err.orig is not None else str(err)
