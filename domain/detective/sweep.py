"""The orphan sweep: its settings, the accounts it finds, and the pure decision of what to change.

Workflows import this module (it is pure): `plan_sweep` compares what the directories hold with the
identities Tenure manages, and says what a run would disable, within the cap and never a protected
account. Activities gather the inventories and apply the changes.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from domain.lifecycle.identity import LifecycleStage
from domain.policy.model import Policy

GRAPH = "graph"  # FoundAccount.system of Entra ID accounts; SCIM accounts carry their app's name


class OrphanSweepContract:
    WORKFLOW = "OrphanSweepWorkflow"
    ID_PREFIX = "orphan-sweep-"
    SCHEDULE_ID = "tenure-orphan-sweep"


class SweepSettings(BaseModel):
    """What one sweep run may do; the policy's orphan_sweep section, carried in the input."""

    dry_run: bool = True
    max_changes: int = Field(10, ge=0)
    protected: list[str] = Field(default_factory=list)


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


# ---- inventories (activity inputs and results) ---------------------------------------------------


class FoundAccount(BaseModel):
    """An account in Graph or a SCIM app that carries an employee id (the only ones in scope)."""

    system: str  # GRAPH or the SCIM app's name
    id: str  # Graph object id or SCIM id
    employee_id: str
    user_name: str = ""  # UPN or SCIM userName
    active: bool


class AccountInventory(BaseModel):
    accounts: list[FoundAccount] = Field(default_factory=list)


class ListScimAccountsInput(BaseModel):
    app: str


class ManagedIdentities(BaseModel):
    """Employee id -> lifecycle stage of every identity workflow Tenure runs."""

    stages: dict[str, str] = Field(default_factory=dict)


class DisableAccountInput(BaseModel):
    system: str
    id: str


# ---- the decision --------------------------------------------------------------------------------


class FindingKind(StrEnum):
    ORPHAN = "orphan"  # no identity in Tenure has this employee id
    ACTIVE_LEAVER = "active_leaver"  # the identity is disabled or deleted, the account is not


class SweepFinding(BaseModel):
    kind: FindingKind
    account: FoundAccount
    stage: str | None = None  # the identity's lifecycle stage, for leavers


class SweepReport(BaseModel):
    dry_run: bool
    accounts_seen: int
    managed_identities: int
    orphans: list[SweepFinding] = Field(default_factory=list)
    active_leavers: list[SweepFinding] = Field(default_factory=list)
    # Active accounts to disable, within the cap: disabled by the run unless it is a dry run.
    to_disable: list[SweepFinding] = Field(default_factory=list)
    skipped_protected: list[SweepFinding] = Field(default_factory=list)
    skipped_cap: list[SweepFinding] = Field(default_factory=list)
    # Filled in by the workflow once it has applied the changes.
    disabled: list[SweepFinding] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    # Set when the sweep refuses to change anything at all, with the reason.
    halted: str | None = None

    def summary(self) -> str:
        if self.halted:
            return f"halted, nothing changed: {self.halted}"
        verb = "would disable" if self.dry_run else "disabled"
        done = len(self.to_disable) if self.dry_run else len(self.disabled)
        text = (
            f"{len(self.orphans)} orphan(s), {len(self.active_leavers)} active leaver account(s); "
            f"{verb} {done}, skipped {len(self.skipped_protected)} protected and "
            f"{len(self.skipped_cap)} over the cap"
        )
        return text + (f", {len(self.failed)} failed" if self.failed else "")


_LEFT = {LifecycleStage.DISABLED.value, LifecycleStage.DELETED.value}


def _is_protected(account: FoundAccount, protected: set[str]) -> bool:
    return bool({account.employee_id.lower(), account.user_name.lower()} & protected)


def _order(finding: SweepFinding) -> tuple[int, str, str, str]:
    # Leavers first (Tenure knows they must go), then orphans; stable within each, so a capped run
    # and the next one work through the same list in the same order.
    account = finding.account
    first = 0 if finding.kind is FindingKind.ACTIVE_LEAVER else 1
    return first, account.system, account.employee_id, account.id


def plan_sweep(
    accounts: list[FoundAccount], managed: dict[str, str], settings: SweepSettings
) -> SweepReport:
    """What the sweep found and what it would change; pure, so workflows can call it."""
    report = SweepReport(
        dry_run=settings.dry_run, accounts_seen=len(accounts), managed_identities=len(managed)
    )
    for account in accounts:
        stage = managed.get(account.employee_id)
        if stage is None:
            report.orphans.append(SweepFinding(kind=FindingKind.ORPHAN, account=account))
        elif stage in _LEFT and account.active:
            report.active_leavers.append(
                SweepFinding(kind=FindingKind.ACTIVE_LEAVER, account=account, stage=stage)
            )
    report.orphans.sort(key=_order)
    report.active_leavers.sort(key=_order)

    if accounts and not managed:
        # Every account would look orphaned: far likelier a broken identity query (wrong
        # namespace, visibility down) than a tenant Tenure manages nobody in. Change nothing.
        report.halted = (
            f"no managed identities were found, so all {len(accounts)} accounts look orphaned"
        )
        return report

    protected = {p.lower() for p in settings.protected}
    candidates = sorted(
        (f for f in report.orphans + report.active_leavers if f.account.active), key=_order
    )
    for finding in candidates:
        if _is_protected(finding.account, protected):
            report.skipped_protected.append(finding)  # never counts against the cap
        elif len(report.to_disable) < settings.max_changes:
            report.to_disable.append(finding)
        else:
            report.skipped_cap.append(finding)
    return report
