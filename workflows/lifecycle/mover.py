"""Mover: follow a change of HR attributes in the directory, the apps and the access they imply.

The identity entity starts `MoverWorkflow` when an update changes the worker's record, and
`GraceRemovalWorkflow` when the grace period of access a move took away is over. Each is its own
readable run in Temporal UI.
"""

from __future__ import annotations

import asyncio
from html import escape

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.holdings import ResourceKind
    from domain.lifecycle.mover import (
        FieldChange,
        GraceRemovalContract,
        GraceRemovalInput,
        GraceRemovalResult,
        MoverContract,
        MoverInput,
        MoverProgress,
        MoverResult,
        access_delta,
        changed_fields,
        is_move,
    )
    from domain.provisioning import (
        EmployeeIdInput,
        EnsureGraphUserInput,
        Mailbox,
        MoverPlan,
        MoverPlanInput,
        SendMailInput,
    )
    from domain.stubs import graph as graph_activity
    from domain.stubs import lifecycle as lifecycle_activity
    from workflows.steps import provisioning as steps
    from workflows.steps.progress import ProgressReporter
    from workflows.steps.retry import NOTICE, POLICY_LOOKUP, PROVISIONING


@workflow.defn(name=MoverContract.WORKFLOW)
class MoverWorkflow:
    def __init__(self) -> None:
        self._report = ProgressReporter(MoverProgress())

    @workflow.query(name=MoverContract.QUERY_PROGRESS)
    def progress(self) -> MoverProgress:
        return self._report.model

    @workflow.run
    async def run(self, input: MoverInput) -> MoverResult:
        worker = input.worker
        changes = changed_fields(input.old_worker, worker)
        plan: MoverPlan = await workflow.execute_local_activity(
            lifecycle_activity.resolve_mover_plan,
            MoverPlanInput(worker=worker),
            **POLICY_LOOKUP,
        )
        delta = access_delta(
            input.access,
            input.pending_removals,
            plan.groups,
            plan.apps,
            plan.remove_after,
            input.event_id,
            workflow.now(),
        )

        # The directory first: attributes. Only active identities move, so the account stays
        # enabled, unless an incident holds the person: then sign-in stays off.
        self._report.phase("updating", "updating the account's attributes")
        await workflow.execute_activity(
            graph_activity.ensure_user,
            EnsureGraphUserInput(
                worker=worker,
                upn_domain=plan.upn_domain,
                account_enabled=input.sign_in_held_by is None,
                hire_date=input.hire_date,
            ),
            **PROVISIONING,
        )
        held = input.sign_in_held_by
        self._report.done(
            f"graph attributes updated; sign-in stays off (incident {held})"
            if held
            else "graph attributes updated"
        )

        # New access before old access goes, so access both roles share never lapses. App accounts
        # kept for a grace period are updated too (their roles stay as they are).
        self._report.phase("granting", "granting the access the new attributes imply")
        old_manager = input.old_worker.manager_id if input.old_worker else None
        granted = {a.app for a in delta.apps}
        kept = [
            a.target
            for a in delta.access
            if a.kind == ResourceKind.SCIM_ACCOUNT and a.target not in granted
        ]
        await asyncio.gather(
            self._set_manager(input.user_id, worker.manager_id, old_manager),
            self._groups(input.user_id, delta.add_groups, present=True),
            *(self._ensure_app(app.app, input, app.roles) for app in delta.apps),
            *(self._ensure_app(app, input, [], granted=False) for app in kept),
        )

        self._report.phase("removing", "removing the access only the old attributes implied")
        # What a package also grants stays: only its own request removes it.
        groups_off = [g for g in delta.remove_groups_now if g not in input.package_groups]
        apps_to_deactivate = [a for a in delta.deactivate_apps_now if a not in input.package_apps]
        deactivated = await asyncio.gather(
            self._groups(input.user_id, groups_off, present=False),
            *(self._deactivate(app, input.employee_id) for app in apps_to_deactivate),
        )
        apps_off = [a for a, ok in zip(apps_to_deactivate, deactivated[1:], strict=True) if ok]

        mailed = await self._tell_managers(input, plan, changes) if is_move(changes) else []
        self._report.phase("done", f"{len(changes)} attribute(s) changed")
        return MoverResult(
            changes=changes,
            access=delta.access,
            added=delta.add_groups
            + [a.app for a in delta.apps if not _held(input, ResourceKind.SCIM_ACCOUNT, a.app)],
            removed=groups_off + apps_off,
            deferred=delta.deferred,
            cancelled=delta.cancelled,
            managers_mailed=mailed,
            warnings=self._report.model.warnings,
        )

    async def _set_manager(self, user_id: str, manager_id: str | None, old: str | None) -> None:
        if manager_id != old:
            await steps.set_manager(user_id, manager_id, self._report)

    async def _groups(self, user_id: str, groups: list[str], present: bool) -> bool:
        if await steps.set_memberships(user_id, groups, present) is not None:
            self._report.done(f"{'added to' if present else 'removed from'} {', '.join(groups)}")
        return True

    async def _ensure_app(
        self, app: str, input: MoverInput, roles: list[str], granted: bool = True
    ) -> None:
        # The account is found by externalId; its userName (the UPN) does not change with a move.
        # Roles the old attributes implied and the new ones do not are taken away (an app kept
        # for a grace period passes no roles and so keeps its old ones until it goes), unless a
        # package grants them too.
        held = {
            r
            for a in input.access
            if a.kind == ResourceKind.SCIM_ACCOUNT and a.target == app
            for r in a.roles
        }
        kept = set(input.package_roles.get(app, []))
        remove = sorted(held - set(roles) - kept) if granted else []
        await steps.ensure_app_account(
            app,
            input.worker,
            input.user_principal_name,
            active=True,
            roles=roles,
            remove_roles=remove,
        )
        self._report.done(f"{app} account updated")

    async def _deactivate(self, app: str, employee_id: str) -> bool:
        return await steps.deactivate_app_account(app, employee_id, self._report)

    async def _tell_managers(
        self, input: MoverInput, plan: MoverPlan, changes: list[FieldChange]
    ) -> list[str]:
        old = input.old_worker.manager_id if input.old_worker else None
        managers = list(dict.fromkeys(m for m in (old, input.worker.manager_id) if m))
        if not managers:
            self._report.warn("no manager: nobody was told of the move")
            return []
        name = input.worker.display_name or input.employee_id
        rows = "".join(
            f"<li>{escape(c.field.replace('_', ' '))}: {escape(c.old)} &rarr; {escape(c.new)}</li>"
            for c in changes
        )
        body = (
            f"<p>{escape(name)} ({input.employee_id}) has moved. What changed:</p><ul>{rows}</ul>"
            "<p>Their access now follows the new role; access only the old role needed is removed"
            " (after a grace period where the policy sets one).</p>"
        )
        told = await asyncio.gather(
            *(self._mail(m, plan, f"{name} has moved: what changed", body) for m in managers)
        )
        return [m for m, ok in zip(managers, told, strict=True) if ok]

    async def _mail(self, manager_id: str, plan: MoverPlan, subject: str, body: str) -> bool:
        try:
            manager: Mailbox = await workflow.execute_activity(
                graph_activity.find_mailbox,
                EmployeeIdInput(employee_id=manager_id),
                **NOTICE,
            )
            await workflow.execute_activity(
                graph_activity.send_mail,
                SendMailInput(
                    sender=plan.mail_sender,
                    to_user_id=manager.user_id,
                    to_address=manager.address or None,
                    subject=subject,
                    html_body=body,
                ),
                **NOTICE,
            )
        except ActivityError as err:
            self._report.warn(f"manager {manager_id} not told: {err.cause or err}")
            return False
        self._report.done(f"manager {manager_id} told")
        return True


def _held(input: MoverInput, kind: ResourceKind, target: str) -> bool:
    return any(a.kind == kind and a.target == target for a in input.access)


@workflow.defn(name=GraceRemovalContract.WORKFLOW)
class GraceRemovalWorkflow:
    """Remove access a move took away once its grace period is over."""

    @workflow.run
    async def run(self, input: GraceRemovalInput) -> GraceRemovalResult:
        workflow.set_current_details("grace period over: removing the old role's access")
        result = GraceRemovalResult()
        if await steps.set_memberships(input.user_id, input.groups, present=False) is not None:
            result.groups_removed = list(input.groups)
        warnings = steps.Warnings(result.warnings)
        for app in input.apps:
            if await steps.deactivate_app_account(app, input.employee_id, warnings):
                result.apps_deactivated.append(app)
        workflow.set_current_details("old access removed")
        return result
