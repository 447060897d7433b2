"""Orphan sweep: find accounts nobody owns and leavers' accounts still active; disable within limits.

Started by the Schedule `tenure-orphan-sweep` (connection/schedules_sync.py). The decision is pure
(domain/detective/sweep.py); this workflow gathers its inputs, applies it unless it is a dry run,
and reports.

The history stays small however large the directories: one scan activity per directory (Graph and
each SCIM app) pages through it inside the activity, compares each page with the identities Tenure
manages (read by the activity, never passed through here), and returns a bounded tally (counts per
kind, and the first `report_limit` findings of each kind). So a run's history holds one scheduled,
started and completed event per directory, tallies whose size is set by `max_changes` and
`report_limit` alone, and then three to six events per disable (at most `max_changes`). Measured
on the emulator, a dry run over Graph alone is 13 events at 3,000 users and at 100,000; at the
default limits (1,000 findings a kind, ~170 bytes each) a tally and the report are ~350 KB each,
and never above ~700 KB (1,000 of every kind plus the cap's candidates), under the 2 MB limit.

Runs started before the `sweep-paged-scan` patch read whole inventories (`list_graph_accounts`,
`list_scim_accounts`, `list_managed_identities`) and decide here with `plan_sweep`; that path is
kept, with those activities registered, so such runs still replay and finish after an upgrade.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.detective.sweep import (
        GRAPH,
        DisableAccountInput,
        ListScimAccountsInput,
        OrphanSweepContract,
        OrphanSweepInput,
        ScanGraphInput,
        ScanScimInput,
        SweepFinding,
        SweepReport,
        plan_from_tallies,
        plan_sweep,
    )
    from domain.stubs import sweep as sweep_activity
    from workflows.steps.retry import INVENTORY, SWEEP_CHANGE, SWEEP_SCAN

# Paged scans returning tallies, instead of whole inventories decided on here.
PAGED_SCAN_PATCH = "sweep-paged-scan"


@workflow.defn(name=OrphanSweepContract.WORKFLOW)
class OrphanSweepWorkflow:
    @workflow.run
    async def run(self, input: OrphanSweepInput) -> SweepReport:
        settings = input.settings
        workflow.set_current_details(
            "reading accounts in Graph"
            + "".join(f", {app}" for app in input.apps)
            + " and the identities Tenure manages"
        )
        if workflow.patched(PAGED_SCAN_PATCH):
            report = await self._scan(input)
        else:
            report = await self._inventory(input)

        if not settings.dry_run and report.to_disable:
            workflow.set_current_details(f"disabling {len(report.to_disable)} account(s)")
            outcomes = await asyncio.gather(*(self._disable(f) for f in report.to_disable))
            for finding, error in zip(report.to_disable, outcomes, strict=True):
                if error is None:
                    report.disabled.append(finding)
                else:
                    report.failed.append(error)

        workflow.set_current_details(("dry run: " if settings.dry_run else "") + report.summary())
        return report

    async def _scan(self, input: OrphanSweepInput) -> SweepReport:
        settings = input.settings
        tallies = await asyncio.gather(
            workflow.execute_activity(
                sweep_activity.scan_graph_accounts,
                ScanGraphInput(settings=settings),
                **SWEEP_SCAN,
            ),
            *(
                workflow.execute_activity(
                    sweep_activity.scan_scim_accounts,
                    ScanScimInput(app=app, settings=settings),
                    **SWEEP_SCAN,
                )
                for app in input.apps
            ),
        )
        return plan_from_tallies(tallies, settings)

    async def _inventory(self, input: OrphanSweepInput) -> SweepReport:
        """Before `sweep-paged-scan`: every account and identity came back here (kept for replay)."""
        managed, graph, *apps = await asyncio.gather(
            workflow.execute_activity(
                sweep_activity.list_managed_identities,
                **INVENTORY,
            ),
            workflow.execute_activity(sweep_activity.list_graph_accounts, **INVENTORY),
            *(
                workflow.execute_activity(
                    sweep_activity.list_scim_accounts,
                    ListScimAccountsInput(app=app),
                    **INVENTORY,
                )
                for app in input.apps
            ),
        )
        accounts = [a for inventory in (graph, *apps) for a in inventory.accounts]
        return plan_sweep(accounts, managed.stages, input.settings)

    async def _disable(self, finding: SweepFinding) -> str | None:
        """Disable one account; a failure is reported, not fatal, so the others still happen."""
        account = finding.account
        disable = DisableAccountInput(system=account.system, id=account.id)
        try:
            if account.system == GRAPH:
                await workflow.execute_activity(
                    sweep_activity.disable_graph_account, disable, **SWEEP_CHANGE
                )
            else:
                await workflow.execute_activity(
                    sweep_activity.deactivate_scim_account, disable, **SWEEP_CHANGE
                )
        except ActivityError as err:
            return f"{account.system} {account.id} ({account.employee_id}): {err.cause or err}"
        return None
