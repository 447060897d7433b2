"""The orphan sweep's pure decision: what is an orphan, an active leaver, and what a run changes;
and that deciding page by page, directory by directory, over bounded tallies decides the same."""

from __future__ import annotations

import random

from domain.detective.sweep import (
    GRAPH,
    FindingKind,
    FoundAccount,
    SweepReport,
    SweepScan,
    SweepSettings,
    SweepTally,
    plan_from_tallies,
    plan_sweep,
)

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
    assert report.orphan_count == report.active_leaver_count == 0


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
    assert (report.orphan_count, report.active_leaver_count) == (2, 2)
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
    assert report.skipped_cap_count == 4
    zero = plan_sweep(accounts, MANAGED, SweepSettings(max_changes=0))
    assert zero.to_disable == [] and len(zero.skipped_cap) == 6


def test_no_managed_identities_halts_rather_than_disabling_everyone() -> None:
    # An empty identity list is far likelier a broken query than a tenant nobody is managed in.
    report = plan_sweep([account("E1"), account("E2", "collab")], {}, SweepSettings(dry_run=False))
    assert report.halted and "no managed identities" in report.halted
    assert report.to_disable == [] and report.skipped_cap == []
    assert report.summary().startswith("halted, nothing changed")


def _mixed(n: int, seed: int = 7) -> list[FoundAccount]:
    """n accounts over three systems: orphans, leavers, managed, inactive and protected ones."""
    rng = random.Random(seed)
    kinds = ["X", "E1", "E2", "E3", "E4", "BG"]
    found = []
    for i in range(n):
        kind = rng.choice(kinds)
        employee_id = f"{kind}{i}" if kind in ("X", "BG") else kind
        found.append(
            account(
                employee_id,
                rng.choice([GRAPH, "collab", "ledger"]),
                active=rng.random() < 0.8,
                id=f"id-{i}",
                user_name=f"{employee_id.lower()}-{i}@example.com",
            )
        )
    return found


def _scan(accounts: list[FoundAccount], settings: SweepSettings) -> SweepTally:
    scan = SweepScan(MANAGED, settings)
    for found in accounts:
        scan.add(found)
    return scan.tally()


def _same(a: SweepReport, b: SweepReport) -> None:
    assert a.model_dump() == b.model_dump()


def test_the_report_lists_the_first_findings_of_each_kind_and_counts_all() -> None:
    accounts = [account(f"X{i:03d}") for i in range(300)] + [
        account("E2", f"app{i}") for i in range(40)
    ]
    settings = SweepSettings(max_changes=5, report_limit=7, protected=["x000", "x299"])
    report = plan_sweep(accounts, MANAGED, settings)
    assert report.orphan_count == 300 and ids(report.orphans) == [
        f"graph:X{i:03d}" for i in range(7)
    ]
    assert report.active_leaver_count == 40 and len(report.active_leavers) == 7
    assert ids(report.to_disable) == [f"app{i}:E2" for i in (0, 1, 10, 11, 12)]  # text order
    assert report.skipped_protected_count == 2 and ids(report.skipped_protected) == [
        "graph:X000",
        "graph:X299",
    ]
    assert report.skipped_cap_count == 340 - 2 - 5 and len(report.skipped_cap) == 7
    assert "300 orphan(s), 40 active leaver account(s)" in report.summary()
    assert "skipped 2 protected and 333 over the cap" in report.summary()


def test_scanning_in_pages_and_directories_decides_as_one_list_does() -> None:
    accounts = _mixed(2_000)
    for settings in (
        SweepSettings(max_changes=10, report_limit=25, protected=["bg5", "e2-17@example.com"]),
        SweepSettings(max_changes=0, report_limit=0),
        SweepSettings(max_changes=500, report_limit=3),
    ):
        whole = plan_sweep(accounts, MANAGED, settings)
        # One scan per system, each resumed from its own tally every 37 accounts (a heartbeat).
        tallies = []
        for system in (GRAPH, "collab", "ledger"):
            mine = [a for a in accounts if a.system == system]
            tally = SweepTally()
            for page in range(0, len(mine), 37):
                scan = SweepScan(MANAGED, settings, start=tally)
                for found in mine[page : page + 37]:
                    scan.add(found)
                tally = scan.tally()
            tallies.append(tally)
        _same(plan_from_tallies(tallies, settings), whole)
        # The tallies stay bounded by the settings, not by the accounts.
        for tally in tallies:
            assert len(tally.first_orphans) <= settings.report_limit
            assert len(tally.first_candidates) <= settings.max_changes + settings.report_limit


def test_a_tally_is_a_snapshot() -> None:
    scan = SweepScan(MANAGED, SweepSettings())
    scan.add(account("X1"))
    before = scan.tally()
    scan.add(account("X2"))
    assert before.orphans == 1 and ids(before.first_orphans) == ["graph:X1"]


def test_a_directory_scanned_without_identities_halts_the_merged_sweep() -> None:
    settings = SweepSettings(dry_run=False)
    ours = _scan([account("E1"), account("X1")], settings)
    blind = SweepScan({}, settings)
    blind.add(account("E1", "collab"))
    report = plan_from_tallies([ours, blind.tally()], settings)
    assert report.halted and report.to_disable == []
    assert report.accounts_seen == 3 and report.orphan_count == 2


def test_reports_without_counts_count_their_lists() -> None:
    # A report of a release before the counts: everything listed, nothing counted.
    old = SweepReport.model_validate(
        {
            "dry_run": True,
            "accounts_seen": 2,
            "managed_identities": 1,
            "orphans": [{"kind": "orphan", "account": account("X1").model_dump()}],
        }
    )
    assert old.orphan_count == 1 and "1 orphan(s)" in old.summary()
