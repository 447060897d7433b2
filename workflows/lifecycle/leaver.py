"""Leaver and retention: cut a leaver's access on the leave date, delete the accounts after retention.

The identity entity starts `LeaverWorkflow` when the terminate's effective time comes (so a corrected
leave date or a rehire is decided there, not here) and `RetentionWorkflow` when the retention period
after the leave date has passed. Each is its own readable run in Temporal UI.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from html import escape

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle.leaver import (
        LeaverContract,
        LeaverInput,
        LeaverProgress,
        LeaverResult,
        RetentionContract,
        RetentionInput,
        RetentionResult,
    )
    from domain.provisioning import (
        EmployeeIdInput,
        LeaverPlan,
        LeaverPlanInput,
        Mailbox,
        SendMailInput,
        SetAccountEnabledInput,
        UserIdInput,
    )
    from domain.stubs import graph as graph_activity
    from domain.stubs import lifecycle as lifecycle_activity
    from workflows.steps import provisioning as steps
    from workflows.steps.progress import ProgressReporter
    from workflows.steps.retry import NOTICE, POLICY_LOOKUP, PROVISIONING


@workflow.defn(name=LeaverContract.WORKFLOW)
class LeaverWorkflow:
    def __init__(self) -> None:
        self._report = ProgressReporter(LeaverProgress())

    @workflow.query(name=LeaverContract.QUERY_PROGRESS)
    def progress(self) -> LeaverProgress:
        return self._report.model

    @workflow.run
    async def run(self, input: LeaverInput) -> LeaverResult:
        plan: LeaverPlan = await workflow.execute_local_activity(
            lifecycle_activity.resolve_leaver_plan,
            LeaverPlanInput(employee_id=input.employee_id),
            **POLICY_LOOKUP,
        )
        # Sign-in first: whatever else is slow, the person cannot sign in any more.
        self._report.phase("disabling", "disabling the account")
        await workflow.execute_activity(
            graph_activity.set_account_enabled,
            SetAccountEnabledInput(user_id=input.user_id, enabled=False),
            **PROVISIONING,
        )
        disabled_at = workflow.now()
        self._report.done("graph account disabled")

        self._report.phase(
            "removing", "revoking sessions, removing access, deactivating app accounts"
        )
        deactivated = await asyncio.gather(
            self._revoke_sessions(input.user_id),
            self._remove_groups(input.user_id, input.groups),
            *(self._deactivate(app, input.employee_id) for app in input.apps),
        )
        apps = [app for app, ok in zip(input.apps, deactivated[2:], strict=True) if ok]
        mailed = await self._tell_manager(input, plan)

        deletion = input.leave_at + timedelta(days=plan.retention_days)
        self._report.phase("done", f"access removed; accounts deleted after {deletion:%Y-%m-%d}")
        return LeaverResult(
            disabled_at=disabled_at,
            sessions_revoked=True,
            groups_removed=list(input.groups),
            apps_deactivated=apps,
            manager_mailed=mailed,
            retention_days=plan.retention_days,
            warnings=self._report.model.warnings,
        )

    async def _revoke_sessions(self, user_id: str) -> bool:
        await workflow.execute_activity(
            graph_activity.revoke_sign_in_sessions,
            UserIdInput(user_id=user_id),
            **PROVISIONING,
        )
        self._report.done("sign-in sessions revoked")
        return True

    async def _remove_groups(self, user_id: str, groups: list[str]) -> bool:
        if await steps.set_memberships(user_id, groups, present=False) is not None:
            self._report.done(f"removed from {len(groups)} groups")
        return True

    async def _deactivate(self, app: str, employee_id: str) -> bool:
        return await steps.deactivate_app_account(app, employee_id, self._report)

    async def _tell_manager(self, input: LeaverInput, plan: LeaverPlan) -> str | None:
        if not input.manager_id:
            self._report.warn("no manager: nobody was told")
            return None
        try:
            manager: Mailbox = await workflow.execute_activity(
                graph_activity.find_mailbox,
                EmployeeIdInput(employee_id=input.manager_id),
                **NOTICE,
            )
            deletion = input.leave_at + timedelta(days=plan.retention_days)
            await workflow.execute_activity(
                graph_activity.send_mail,
                SendMailInput(
                    sender=plan.mail_sender,
                    to_user_id=manager.user_id,
                    to_address=manager.address or None,
                    subject=f"{input.display_name or input.employee_id} has left: access removed",
                    html_body=(
                        f"<p>{escape(input.display_name or input.employee_id)} "
                        f"({input.employee_id}) left on {input.leave_at:%Y-%m-%d}. Their account "
                        "is disabled, their sessions are revoked and their access is removed.</p>"
                        "<p>The accounts will be deleted "
                        f"after {deletion:%Y-%m-%d} unless they are rehired before then.</p>"
                    ),
                ),
                **NOTICE,
            )
        except ActivityError as err:
            self._report.warn(f"manager {input.manager_id} not told: {err.cause or err}")
            return None
        self._report.done(f"manager {input.manager_id} told")
        return input.manager_id


@workflow.defn(name=RetentionContract.WORKFLOW)
class RetentionWorkflow:
    """Delete a leaver's Graph user and app accounts; each delete treats "already gone" as done."""

    @workflow.run
    async def run(self, input: RetentionInput) -> RetentionResult:
        workflow.set_current_details("deleting the accounts: retention period over")
        deletes = [steps.delete_app_account(app, input.employee_id) for app in input.apps]
        if input.user_id:
            deletes.append(
                workflow.execute_activity(
                    graph_activity.delete_user,
                    UserIdInput(user_id=input.user_id),
                    **PROVISIONING,
                )
            )
        await asyncio.gather(*deletes)
        workflow.set_current_details("accounts deleted")
        return RetentionResult(
            deleted_at=workflow.now(),
            graph_user_deleted=input.user_id is not None,
            apps_deleted=list(input.apps),
        )
