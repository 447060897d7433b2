"""Orphan sweep: find accounts nobody owns and leavers' accounts still active; disable within limits.

Started by the Schedule `tenure-orphan-sweep` (stack/schedules.py). The decision is the pure
`plan_sweep`; this workflow gathers its inputs, applies it unless it is a dry run, and reports.
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
        SweepFinding,
        SweepReport,
        plan_sweep,
    )
    from domain.stubs import sweep as sweep_activity
    from workflows.steps.retry import INVENTORY, SWEEP_CHANGE


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
        report = plan_sweep(accounts, managed.stages, settings)

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
