"""The orphan sweep: its settings, the accounts it finds, and the pure decision of what to change.

Workflows import this module (it is pure). An account is an orphan when no identity Tenure manages
has its employee id, and an active leaver when its identity is disabled or deleted but the account
is not; the sweep disables such accounts, at most `max_changes` a run and never a protected one.

Directories hold tens of thousands of accounts, more than one activity result (2 MB) or a workflow
history can carry, so no inventory ever travels whole. Each directory is read by one activity that
pages through it and folds every account into a `SweepScan` as it goes; the activity returns only
the scan's `SweepTally`: counts per kind, and the first few findings of each kind in the sweep's
stable order (`report_limit` of them, and the first `max_changes + report_limit` change
candidates, which are all the decision can pick from). A tally's size depends on those two
settings, never on the number of accounts. `plan_from_tallies` merges the directories' tallies and
decides; `plan_sweep` is the same decision over a list of accounts (the pre-paging path, and tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from domain.lifecycle.identity import LifecycleStage
from domain.policy.model import Policy

GRAPH = "graph"  # FoundAccount.system of Entra ID accounts; SCIM accounts carry their app's name
REPORT_LIMIT = 200  # findings of each kind a report lists by default


class OrphanSweepContract:
    WORKFLOW = "OrphanSweepWorkflow"
    ID_PREFIX = "orphan-sweep-"
    SCHEDULE_ID = "tenure-orphan-sweep"


class SweepSettings(BaseModel):
    """What one sweep run may do; the policy's orphan_sweep section, carried in the input."""

    dry_run: bool = True
    max_changes: int = Field(10, ge=0)
    protected: list[str] = Field(default_factory=list)
    # The report lists at most this many findings of each kind and counts the rest: it bounds the
    # report and every scan's result, whatever the size of the directories.
    report_limit: int = Field(REPORT_LIMIT, ge=0)


class OrphanSweepInput(BaseModel):
    settings: SweepSettings = SweepSettings()
    apps: list[str] = Field(default_factory=list)  # SCIM apps whose accounts are swept


def sweep_input(policy: Policy) -> OrphanSweepInput:
    section = policy.orphan_sweep
    settings = (
        SweepSettings(
            dry_run=section.dry_run, max_changes=section.max_changes, protected=section.protected
        )
        if section
        else SweepSettings()
    )
    return OrphanSweepInput(settings=settings, apps=list(policy.apps))


# ---- activity inputs and results ---------------------------------------------------------------


class FoundAccount(BaseModel):
    """An account in Graph or a SCIM app that carries an employee id (the only ones in scope)."""

    system: str  # GRAPH or the SCIM app's name
    id: str  # Graph object id or SCIM id
    employee_id: str
    user_name: str = ""  # UPN or SCIM userName
    active: bool


class ScanGraphInput(BaseModel):
    settings: SweepSettings


class ScanScimInput(BaseModel):
    app: str
    settings: SweepSettings


class DisableAccountInput(BaseModel):
    system: str
    id: str


class SweepActivityNames:
    """The paged scans' names (the other sweep activities are named in domain.provisioning)."""

    SCAN_GRAPH_ACCOUNTS = "sweep.scan_graph_accounts"
    SCAN_SCIM_ACCOUNTS = "sweep.scan_scim_accounts"


# Whole inventories: what runs started before the `sweep-paged-scan` patch asked for, and may still
# ask for when a worker picks them up after an upgrade. Nothing else uses them.


class AccountInventory(BaseModel):
    accounts: list[FoundAccount] = Field(default_factory=list)


class ListScimAccountsInput(BaseModel):
    app: str


class ManagedIdentities(BaseModel):
    """Employee id -> lifecycle stage of every identity workflow Tenure runs."""

    stages: dict[str, str] = Field(default_factory=dict)


# ---- the decision --------------------------------------------------------------------------------


class FindingKind(StrEnum):
    ORPHAN = "orphan"  # no identity in Tenure has this employee id
    ACTIVE_LEAVER = "active_leaver"  # the identity is disabled or deleted, the account is not


class SweepFinding(BaseModel):
    kind: FindingKind
    account: FoundAccount
    stage: str | None = None  # the identity's lifecycle stage, for leavers


class SweepTally(BaseModel):
    """What a scan keeps of the accounts it has seen: counts, and the first findings in order.

    Each `first_*` list holds the first findings of its kind in the sweep's order (`report_limit`
    of them; `max_changes + report_limit` change candidates), so tallies of disjoint sets of
    accounts merge into the tally of their union.
    """

    accounts_seen: int = 0
    # The identities the scan compared against; none at all, with accounts seen, halts the sweep.
    managed_identities: int = 0
    orphans: int = 0
    active_leavers: int = 0
    protected: int = 0  # active findings a protected entry names: never changed
    candidates: int = 0  # active, unprotected findings: what the cap picks from
    first_orphans: list[SweepFinding] = Field(default_factory=list)
    first_active_leavers: list[SweepFinding] = Field(default_factory=list)
    first_protected: list[SweepFinding] = Field(default_factory=list)
    first_candidates: list[SweepFinding] = Field(default_factory=list)


class SweepReport(BaseModel):
    dry_run: bool
    accounts_seen: int
    managed_identities: int
    # Each list is the first `report_limit` findings of its kind; its count says how many in all.
    orphans: list[SweepFinding] = Field(default_factory=list)
    orphan_count: int = 0
    active_leavers: list[SweepFinding] = Field(default_factory=list)
    active_leaver_count: int = 0
    # Active accounts to disable, within the cap: disabled by the run unless it is a dry run.
    to_disable: list[SweepFinding] = Field(default_factory=list)
    skipped_protected: list[SweepFinding] = Field(default_factory=list)
    skipped_protected_count: int = 0
    skipped_cap: list[SweepFinding] = Field(default_factory=list)
    skipped_cap_count: int = 0
    # Filled in by the workflow once it has applied the changes.
    disabled: list[SweepFinding] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    # Set when the sweep refuses to change anything at all, with the reason.
    halted: str | None = None

    @model_validator(mode="after")
    def _counts_cover_the_lists(self) -> SweepReport:
        # Reports of releases before the counts listed everything and counted nothing.
        self.orphan_count = max(self.orphan_count, len(self.orphans))
        self.active_leaver_count = max(self.active_leaver_count, len(self.active_leavers))
        self.skipped_protected_count = max(
            self.skipped_protected_count, len(self.skipped_protected)
        )
        self.skipped_cap_count = max(self.skipped_cap_count, len(self.skipped_cap))
        return self

    def summary(self) -> str:
        if self.halted:
            return f"halted, nothing changed: {self.halted}"
        verb = "would disable" if self.dry_run else "disabled"
        done = len(self.to_disable) if self.dry_run else len(self.disabled)
        text = (
            f"{self.orphan_count} orphan(s), {self.active_leaver_count} active leaver account(s)"
            f" in {self.accounts_seen} account(s); {verb} {done}, skipped "
            f"{self.skipped_protected_count} protected and {self.skipped_cap_count} over the cap"
        )
        return text + (f", {len(self.failed)} failed" if self.failed else "")


_LEFT = {LifecycleStage.DISABLED.value, LifecycleStage.DELETED.value}


def classify(account: FoundAccount, managed: Mapping[str, str]) -> SweepFinding | None:
    """The account's finding, or None when it is as it should be."""
    stage = managed.get(account.employee_id)
    if stage is None:
        return SweepFinding(kind=FindingKind.ORPHAN, account=account)
    if stage in _LEFT and account.active:
        return SweepFinding(kind=FindingKind.ACTIVE_LEAVER, account=account, stage=stage)
    return None


def _is_protected(account: FoundAccount, protected: set[str]) -> bool:
    return bool({account.employee_id.lower(), account.user_name.lower()} & protected)


def _order(finding: SweepFinding) -> tuple[int, str, str, str]:
    # Leavers first (Tenure knows they must go), then orphans; stable within each, so a capped run
    # and the next one work through the same list in the same order.
    account = finding.account
    first = 0 if finding.kind is FindingKind.ACTIVE_LEAVER else 1
    return first, account.system, account.employee_id, account.id


def _first(findings: list[SweepFinding], limit: int) -> list[SweepFinding]:
    return sorted(findings, key=_order)[:limit]


def _compact(tally: SweepTally, settings: SweepSettings) -> None:
    limit = settings.report_limit
    tally.first_orphans = _first(tally.first_orphans, limit)
    tally.first_active_leavers = _first(tally.first_active_leavers, limit)
    tally.first_protected = _first(tally.first_protected, limit)
    tally.first_candidates = _first(tally.first_candidates, settings.max_changes + limit)


class SweepScan:
    """Folds accounts into a bounded `SweepTally`, one at a time; pure (the caller pages).

    `start` resumes a scan from the tally of the pages before (an activity's last heartbeat).
    """

    def __init__(
        self,
        managed: Mapping[str, str],
        settings: SweepSettings,
        start: SweepTally | None = None,
    ) -> None:
        self._managed = managed
        self._settings = settings
        self._protected = {p.lower() for p in settings.protected}
        self._tally = start.model_copy(deep=True) if start else SweepTally()
        self._tally.managed_identities = len(managed)
        # Lists grow to twice their bound between sorts: amortised O(log n) an account.
        self._slack = 2 * (settings.max_changes + settings.report_limit) + 64

    def add(self, account: FoundAccount) -> None:
        tally = self._tally
        tally.accounts_seen += 1
        finding = classify(account, self._managed)
        if finding is None:
            return
        if finding.kind is FindingKind.ORPHAN:
            tally.orphans += 1
            tally.first_orphans.append(finding)
        else:
            tally.active_leavers += 1
            tally.first_active_leavers.append(finding)
        if account.active:
            if _is_protected(account, self._protected):
                tally.protected += 1
                tally.first_protected.append(finding)
            else:
                tally.candidates += 1
                tally.first_candidates.append(finding)
        if (
            max(
                len(tally.first_orphans),
                len(tally.first_active_leavers),
                len(tally.first_protected),
                len(tally.first_candidates),
            )
            > self._slack
        ):
            _compact(tally, self._settings)

    def tally(self) -> SweepTally:
        """A snapshot of the tally so far (later adds do not change it)."""
        _compact(self._tally, self._settings)
        return self._tally.model_copy(deep=True)


def merge_tallies(tallies: Iterable[SweepTally], settings: SweepSettings) -> SweepTally:
    """The tally of the union of disjoint scans (each directory's, or each page's)."""
    tallies = list(tallies)
    # The fewest identities any scan saw: a scan whose identity query came back empty must halt
    # the sweep even if another scan's did not.
    merged = SweepTally(managed_identities=min((t.managed_identities for t in tallies), default=0))
    for tally in tallies:
        merged.accounts_seen += tally.accounts_seen
        merged.orphans += tally.orphans
        merged.active_leavers += tally.active_leavers
        merged.protected += tally.protected
        merged.candidates += tally.candidates
        merged.first_orphans += tally.first_orphans
        merged.first_active_leavers += tally.first_active_leavers
        merged.first_protected += tally.first_protected
        merged.first_candidates += tally.first_candidates
    _compact(merged, settings)
    return merged


def plan_from_tallies(tallies: Iterable[SweepTally], settings: SweepSettings) -> SweepReport:
    """What the sweep found in the scanned directories and what it would change; pure."""
    tally = merge_tallies(tallies, settings)
    report = SweepReport(
        dry_run=settings.dry_run,
        accounts_seen=tally.accounts_seen,
        managed_identities=tally.managed_identities,
        orphans=tally.first_orphans,
        orphan_count=tally.orphans,
        active_leavers=tally.first_active_leavers,
        active_leaver_count=tally.active_leavers,
    )
    if tally.accounts_seen and not tally.managed_identities:
        # Every account would look orphaned: far likelier a broken identity query (wrong
        # namespace, visibility down) than a tenant Tenure manages nobody in. Change nothing.
        report.halted = (
            f"no managed identities were found, so all {tally.accounts_seen} accounts look orphaned"
        )
        return report

    # Protected accounts never count against the cap; the cap takes candidates in order.
    report.skipped_protected = tally.first_protected
    report.skipped_protected_count = tally.protected
    report.to_disable = tally.first_candidates[: settings.max_changes]
    report.skipped_cap = tally.first_candidates[settings.max_changes :][: settings.report_limit]
    report.skipped_cap_count = tally.candidates - len(report.to_disable)
    return report


def plan_sweep(
    accounts: Iterable[FoundAccount], managed: Mapping[str, str], settings: SweepSettings
) -> SweepReport:
    """`plan_from_tallies` over one list of accounts; pure, so workflows can call it."""
    scan = SweepScan(managed, settings)
    for account in accounts:
        scan.add(account)
    return plan_from_tallies([scan.tally()], settings)
