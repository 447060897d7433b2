"""The orphan sweep's pure decision: what is an orphan, an active leaver, and what a run changes."""

from __future__ import annotations

from domain.detective.sweep import GRAPH, FindingKind, FoundAccount, SweepSettings, plan_sweep

MANAGED = {"E1": "active", "E2": "disabled", "E3": "deleted", "E4": "pre_hire"}


def account(employee_id: str, system: str = GRAPH, active: bool = True, **kw: str) -> FoundAccount:
    return FoundAccount(
        system=system,
        id=kw.get("id", f"{system}-{employee_id}"),
        employee_id=employee_id,
        user_name=kw.get("user_name", f"{employee_id.lower()}@example.com"),
        active=active,
    )


def ids(findings: list) -> list[str]:
    return [f"{f.account.system}:{f.account.employee_id}" for f in findings]


def test_managed_active_accounts_are_left_alone() -> None:
    report = plan_sweep(
        [account("E1"), account("E1", "collab"), account("E4")], MANAGED, SweepSettings()
    )
    assert report.orphans == report.active_leavers == report.to_disable == []
    assert report.accounts_seen == 3 and report.managed_identities == 4


def test_orphans_and_active_leavers_are_found() -> None:
    accounts = [
        account("X9"),
        account("E2"),
        account("E3", "collab"),
        account("E2", "ledger", active=False),  # a leaver's account already off: fine
        account("X8", "collab", active=False),  # an orphan, but nothing to change
    ]
    report = plan_sweep(accounts, MANAGED, SweepSettings())
    assert ids(report.orphans) == ["collab:X8", "graph:X9"]
    assert ids(report.active_leavers) == ["collab:E3", "graph:E2"]
    assert {f.stage for f in report.active_leavers} == {"disabled", "deleted"}
    assert all(f.kind is FindingKind.ORPHAN for f in report.orphans)
    # Leavers come first, then active orphans; the inactive orphan needs no change.
    assert ids(report.to_disable) == ["collab:E3", "graph:E2", "graph:X9"]
    assert report.dry_run and "would disable 3" in report.summary()


def test_protected_accounts_are_never_planned_and_do_not_use_the_cap() -> None:
    accounts = [
        account("BG1", user_name="BreakGlass@example.com"),
        account("E2"),
        account("X1"),
    ]
    settings = SweepSettings(max_changes=1, protected=["breakglass@example.com", "x1"])
    report = plan_sweep(accounts, MANAGED, settings)
    assert ids(report.skipped_protected) == ["graph:BG1", "graph:X1"]
    assert ids(report.to_disable) == ["graph:E2"]
    assert report.skipped_cap == []


def test_the_cap_limits_changes_in_a_stable_order() -> None:
    accounts = [account(f"X{i}") for i in range(5)] + [account("E2", "collab")]
    report = plan_sweep(accounts, MANAGED, SweepSettings(dry_run=False, max_changes=2))
    assert ids(report.to_disable) == ["collab:E2", "graph:X0"]
    assert ids(report.skipped_cap) == ["graph:X1", "graph:X2", "graph:X3", "graph:X4"]
    zero = plan_sweep(accounts, MANAGED, SweepSettings(max_changes=0))
    assert zero.to_disable == [] and len(zero.skipped_cap) == 6


def test_no_managed_identities_halts_rather_than_disabling_everyone() -> None:
    # An empty identity list is far likelier a broken query than a tenant nobody is managed in.
    report = plan_sweep([account("E1"), account("E2", "collab")], {}, SweepSettings(dry_run=False))
    assert report.halted and "no managed identities" in report.halted
    assert report.to_disable == [] and report.skipped_cap == []
    assert report.summary().startswith("halted, nothing changed")
