"""Joiner: create the account, grant birthright, hand the manager a TAP, enable on the start date."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from html import escape
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle.joiner import JoinerContract, JoinerInput, JoinerProgress, JoinerResult
    from domain.provisioning import (
        EnsureGraphUserInput,
        GraphUserRef,
        IssueTapToManagerInput,
        JoinerPlan,
        JoinerPlanInput,
        SendMailInput,
        SetAccountEnabledInput,
        TapIssued,
        UserIdInput,
    )
    from domain.stubs import graph as graph_activity
    from domain.stubs import lifecycle as lifecycle_activity
    from workflows.steps import provisioning as steps
    from workflows.steps.progress import ProgressReporter
    from workflows.steps.retry import POLICY_LOOKUP, PROVISIONING, WAIT_FOR_MANAGER

T = TypeVar("T")


@workflow.defn(name=JoinerContract.WORKFLOW)
class JoinerWorkflow:
    def __init__(self) -> None:
        self._report = ProgressReporter(JoinerProgress())
        self._inflight: list[asyncio.Future[Any]] = []

    @workflow.query(name=JoinerContract.QUERY_PROGRESS)
    def progress(self) -> JoinerProgress:
        return self._report.model

    @workflow.run
    async def run(self, input: JoinerInput) -> JoinerResult:
        worker = input.worker
        # Policy evaluation is quick and side-effect free: a local activity records its result in
        # history without a round trip through the server's task queue.
        plan: JoinerPlan = await workflow.execute_local_activity(
            lifecycle_activity.resolve_joiner_plan,
            JoinerPlanInput(worker=worker),
            **POLICY_LOOKUP,
        )
        start_at = input.start_at
        pre_hire_at = start_at - timedelta(days=plan.pre_hire_days)
        self._report.model.start_at, self._report.model.pre_hire_at = start_at, pre_hire_at

        # A terminate before the start date withdraws the hire by cancelling this run. Work that
        # has begun is shielded from the cancellation and finished first, so the clean-up knows
        # every account it has to undo (no activity is left running behind the clean-up's back).
        try:
            # Pre-hire work waits for its day; a date already past is caught up at once.
            await self._sleep_until(
                pre_hire_at, "pre_hire_wait", f"pre-hire work on {pre_hire_at:%Y-%m-%d %H:%M} UTC"
            )
            enabled_now = workflow.now() >= start_at
            enabled_at = workflow.now()
            user, tap_mailed_to = await self._shielded(self._provision(input, plan, enabled_now))
            if not enabled_now:
                await self._sleep_until(
                    start_at, "start_wait", f"enabling the account on {start_at:%Y-%m-%d %H:%M} UTC"
                )
                await self._shielded(self._enable(user, input, plan))
                enabled_at = workflow.now()
        except asyncio.CancelledError:
            await self._withdraw(input, plan)
            raise

        self._report.phase("done", f"provisioned {user.user_principal_name}")
        return JoinerResult(
            user_id=user.user_id,
            user_principal_name=user.user_principal_name,
            groups=plan.groups,
            apps=plan.apps,
            enabled_at=enabled_at,
            tap_mailed_to=tap_mailed_to,
            warnings=self._report.model.warnings,
        )

    async def _provision(
        self, input: JoinerInput, plan: JoinerPlan, enabled_now: bool
    ) -> tuple[GraphUserRef, str | None]:
        worker = input.worker
        start_at = input.start_at
        self._report.phase("provisioning", "creating the account and granting birthright access")
        # A rehire finds the existing account by employeeId; account_enabled re-enables it,
        # unless an incident holds the person.
        sign_in = enabled_now and not input.sign_in_held_by
        user: GraphUserRef = await workflow.execute_activity(
            graph_activity.ensure_user,
            EnsureGraphUserInput(
                worker=worker,
                upn_domain=plan.upn_domain,
                account_enabled=sign_in,
                hire_date=start_at,
            ),
            **PROVISIONING,
        )
        self._report.model.user_id, self._report.model.user_principal_name = (
            user.user_id,
            user.user_principal_name,
        )
        if sign_in or not enabled_now:
            self._report.done(f"graph account {'enabled' if sign_in else 'created disabled'}")
        else:
            self._report.done(self._held_note(input))

        # Manager, groups, each app account and the manager's TAP are independent of one another:
        # run them together (and the welcome mail too when the person has already started).
        tap_mailed_to, *_ = await asyncio.gather(
            self._issue_tap(user, input, plan, start_at),
            steps.set_manager(user.user_id, worker.manager_id, self._report),
            self._grant_groups(user.user_id, [g.group for g in plan.groups]),
            *(
                self._ensure_app_account(
                    app.app, input, user.user_principal_name, enabled_now, app.roles
                )
                for app in plan.apps
            ),
            *([self._send_welcome(user, input, plan)] if enabled_now else []),
        )
        return user, tap_mailed_to

    async def _enable(self, user: GraphUserRef, input: JoinerInput, plan: JoinerPlan) -> None:
        self._report.phase("enabling", "start date reached: enabling the account everywhere")
        held = input.sign_in_held_by is not None
        await asyncio.gather(
            *(
                []
                if held
                else [
                    workflow.execute_activity(
                        graph_activity.set_account_enabled,
                        SetAccountEnabledInput(user_id=user.user_id, enabled=True),
                        **PROVISIONING,
                    )
                ]
            ),
            *(steps.set_app_active(app.app, input.employee_id, active=True) for app in plan.apps),
        )
        self._report.done(self._held_note(input) if held else "account enabled on the start date")
        await self._send_welcome(user, input, plan)

    @staticmethod
    def _held_note(input: JoinerInput) -> str:
        return (
            f"graph sign-in stays off: incident {input.sign_in_held_by} holds the person "
            "(its restore turns it on)"
        )

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(work)
        self._inflight.append(task)
        return await asyncio.shield(task)

    async def _withdraw(self, input: JoinerInput, plan: JoinerPlan) -> None:
        """Undo the hire: the person never starts (docs/domain.md#joiner: pre-hire withdrawn)."""
        self._report.phase("withdrawing", "hire withdrawn: undoing the pre-hire work")
        for task in self._inflight:
            try:
                await task
            except Exception as err:  # a failed step still leaves the rest to undo
                self._report.warn(f"unfinished before withdrawal: {err}")
        user_id = self._report.model.user_id
        if user_id is None:
            self._report.phase("withdrawn", "hire withdrawn before any account was created")
            return
        # Sign-in off first, whatever follows.
        await workflow.execute_activity(
            graph_activity.set_account_enabled,
            SetAccountEnabledInput(user_id=user_id, enabled=False),
            **PROVISIONING,
        )
        apps = [a.app for a in plan.apps]
        if input.rehire:
            # The accounts are the person's earlier ones: leave them as the leaver did (disabled,
            # no birthright groups, app accounts inactive); the retention period still applies.
            # App accounts made only for this rehire are deleted.
            await asyncio.gather(
                steps.set_memberships(user_id, [g.group for g in plan.groups], present=False),
                *(
                    steps.deactivate_app_account(app, input.employee_id, self._report)
                    if app in input.existing_apps
                    else steps.delete_app_account(app, input.employee_id)
                    for app in apps
                ),
            )
            self._report.phase("withdrawn", "rehire withdrawn: earlier accounts disabled again")
            return
        # A person who never started has no history worth keeping: delete what this run created.
        await asyncio.gather(
            workflow.execute_activity(
                graph_activity.delete_user, UserIdInput(user_id=user_id), **PROVISIONING
            ),
            *(steps.delete_app_account(app, input.employee_id) for app in apps),
        )
        self._report.phase("withdrawn", "hire withdrawn: the accounts created for it are deleted")

    async def _send_welcome(self, user: GraphUserRef, input: JoinerInput, plan: JoinerPlan) -> None:
        await workflow.execute_activity(
            graph_activity.send_mail,
            SendMailInput(
                sender=plan.mail_sender,
                to_user_id=user.user_id,
                to_address=user.user_principal_name,
                subject="Welcome aboard",
                html_body=(
                    f"<p>Welcome, {escape(input.worker.given_name or '')}!</p><p>Your account is "
                    f"<b>{user.user_principal_name}</b>. Your manager has a Temporary Access Pass "
                    "for your first sign-in.</p>"
                ),
            ),
            **PROVISIONING,
        )
        self._report.done("welcome mail sent")

    async def _sleep_until(self, when: datetime, phase: str, details: str) -> None:
        delay = when - workflow.now()
        if delay > timedelta(0):
            self._report.phase(phase, f"waiting: {details}")
            await workflow.sleep(delay)

    async def _grant_groups(self, user_id: str, groups: list[str]) -> None:
        result = await steps.set_memberships(user_id, groups, present=True)
        if result is not None:
            self._report.done(f"member of {len(result.group_ids)} birthright groups")

    async def _ensure_app_account(
        self, app: str, input: JoinerInput, user_name: str, active: bool, roles: list[str]
    ) -> None:
        await steps.ensure_app_account(app, input.worker, user_name, active=active, roles=roles)
        self._report.done(f"{app} account {'active' if active else 'created inactive'}")

    async def _issue_tap(
        self, user: GraphUserRef, input: JoinerInput, plan: JoinerPlan, start_at: datetime
    ) -> str | None:
        manager_id = input.worker.manager_id
        if not manager_id:
            self._report.warn("no manager: no Temporary Access Pass was sent")
            return None
        try:
            issued: TapIssued = await workflow.execute_activity(
                graph_activity.issue_temporary_access_pass_to_manager,
                IssueTapToManagerInput(
                    user_id=user.user_id,
                    user_display_name=input.worker.display_name,
                    manager_employee_id=manager_id,
                    start_at=max(start_at, workflow.now()),
                    lifetime_minutes=plan.tap_lifetime_minutes,
                    mail_sender=plan.mail_sender,
                ),
                **WAIT_FOR_MANAGER,
            )
        except ActivityError as err:
            self._report.warn(f"Temporary Access Pass not sent: {err.cause or err}")
            return None
        self._report.done(f"Temporary Access Pass mailed to manager {manager_id}")
        return issued.mailed_to_user_id
