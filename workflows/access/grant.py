"""A granted request's life: applying the access, expiry reminders, extensions, and removal
at the end, on revocation, or when the person leaves."""

from __future__ import annotations

from datetime import datetime
from html import escape

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.access.request_core import RequestCore
from workflows.access.request_story import error_cause
from workflows.approval import ApprovalResult

with workflow.unsafe.imports_passed_through():
    from domain.access.request import (
        ReleaseInput,
        RequestStatus,
        RequestView,
    )
    from domain.access.rules import (
        expiry_reminders,
        grant_end,
    )
    from domain.approval.contract import SYSTEM
    from domain.holdings import Holding, Release, ResourceKind, ResourceRef
    from domain.lifecycle.identity import ReleaseAccessInput
    from domain.stubs import access as access_activity
    from workflows.steps import provisioning as steps
    from workflows.steps.retry import PROVISIONING


# Runs that ask the identity's holdings ledger what may go before removing anything.
LEDGER_RELEASE_PATCH = "ledger-release"


class GrantSteps(RequestCore):
    async def _grant(self) -> bool:
        plan, person = self._plan, self._person
        assert plan is not None and person is not None
        self._set_status(RequestStatus.GRANTING)
        try:
            await self._apply_resources([r.ref for r in plan.resources], present=True)
        except ActivityError as err:
            await self._finish(RequestStatus.FAILED, "failed", f"grant failed: {error_cause(err)}")
            return False
        now = workflow.now()
        self._granted_at = now
        self._expires_at = grant_end(
            plan.policy.expiry, now, self._in.requested_end, self._in.submitted_at
        )
        self._set_status(RequestStatus.GRANTED)
        until = self._expires_at.isoformat() if self._expires_at else None
        self.tell(
            "granted",
            SYSTEM,
            f"granted {', '.join(self._resource_keys())}"
            + (f" until {self._expires_at:%Y-%m-%d %H:%M} UTC" if self._expires_at else ", no end"),
            resources=self._resource_keys(),
            until=until,
        )
        await self._tell_identity("granted")
        await self.notify(
            [self._in.requester_id, self._in.beneficiary_id],
            f"Access granted: {plan.display_name}",
            f"<p>{escape(plan.display_name)} is granted to {self._in.beneficiary_id}"
            + (f" until {self._expires_at:%Y-%m-%d %H:%M} UTC" if self._expires_at else "")
            + ".</p>",
        )
        await self.record()
        return True

    async def _hold(self) -> RequestView:
        """Keep the grant until it ends: expiry reminders, extensions, revocation, a leaver."""
        plan = self._plan
        assert plan is not None and self._granted_at is not None
        reminded: set[datetime] = set()
        while True:
            if self._left is not None:
                return await self._remove(RequestStatus.REVOKED, "the person left")
            if self._revoke is not None:
                return await self._remove(
                    RequestStatus.REVOKED, f"revoked by {self._revoke.actor.employee_id}"
                )
            if self._extension is not None:
                await self._decide_extension()
                continue
            end = self._expires_at
            now = workflow.now()
            if end is not None and now >= end:
                return await self._remove(RequestStatus.EXPIRED, "expired")
            due = (
                [
                    at
                    for at in expiry_reminders(end, self._granted_at, plan.policy.expiry.reminders)
                    if at not in reminded
                ]
                if end is not None
                else []
            )
            if due and due[0] <= now:
                reminded.add(due[0])
                await self._remind_expiry(end)
                continue
            wake_at = due[0] if due else end
            await self.sleep_until(wake_at, "access ends" if wake_at == end else "expiry reminder")
            await self.record()

    async def _decide_extension(self) -> None:
        plan, ask = self._plan, self._extension
        assert plan is not None and ask is not None
        self._extensions += 1
        approved = True
        if plan.policy.expiry.extension.requires_approval:
            result = await self._approve(
                f"extension-{self._extensions}", hard_stop=self._expires_at
            )
            approved = result is ApprovalResult.APPROVED
            outcome = {
                ApprovalResult.APPROVED: "approved",
                ApprovalResult.DENIED: "denied",
            }.get(result, "not decided before the access ended or was withdrawn")
            self.tell("extension_decided", SYSTEM, f"extension {outcome}", outcome=outcome)
        self._extension = None
        if approved and self._left is None and self._revoke is None:
            self._expires_at = ask.new_end
            self.tell(
                "extended",
                ask.actor.employee_id,
                f"extended to {ask.new_end:%Y-%m-%d %H:%M} UTC",
                until=ask.new_end.isoformat(),
                resources=self._resource_keys(),
            )
            await self._tell_identity("granted")
        await self.notify(
            [self._in.requester_id, self._in.beneficiary_id],
            f"Extension {'approved' if approved else 'refused'}: {plan.display_name}",
            f"<p>Access to {escape(plan.display_name)} ends "
            f"{self._expires_at:%Y-%m-%d %H:%M} UTC.</p>"
            if self._expires_at
            else "<p>The extension was not granted.</p>",
        )
        await self.record()

    async def _remind_expiry(self, end: datetime) -> None:
        plan = self._plan
        assert plan is not None
        self.tell("expiry_reminder", SYSTEM, f"told that access ends {end:%Y-%m-%d %H:%M} UTC")
        extend = (
            " Ask for an extension if you still need it."
            if (plan.policy.expiry.extension.allowed)
            else ""
        )
        await self.notify(
            [self._in.beneficiary_id, self._in.requester_id],
            f"Access ending: {plan.display_name}",
            f"<p>Your access to {escape(plan.display_name)} ends "
            f"{end:%Y-%m-%d %H:%M} UTC.{extend}</p>",
        )
        await self.record()

    async def _remove(self, status: RequestStatus, why: str) -> RequestView:
        resources = [r.ref for r in self.plan.resources]
        kept: list[Holding] = []
        if workflow.patched(LEDGER_RELEASE_PATCH):
            # Only what no other grant holds goes (runs before this marker removed it all).
            release: Release = await workflow.execute_activity(
                access_activity.release,
                ReleaseInput(
                    beneficiary_id=self._in.beneficiary_id,
                    release=ReleaseAccessInput(
                        request_id=workflow.info().workflow_id, resources=resources
                    ),
                ),
                **PROVISIONING,
            )
            resources, kept = release.remove, release.kept
        try:
            await self._apply_resources(resources, present=False)
        except ActivityError as err:
            return await self._finish(
                RequestStatus.FAILED, "failed", f"removal failed: {error_cause(err)}"
            )
        keys = [r.key for r in resources]
        held_by = {h.resource.key: [g.describe() for g in h.grants] for h in kept}
        text = f"removed {', '.join(keys) or 'nothing'}: {why}"
        if held_by:
            still = [f"{key} ({', '.join(grants)})" for key, grants in held_by.items()]
            text += f"; kept, still granted by something else: {', '.join(still)}"
        extra = (
            {"kept": [{"resource": k, "held_by": g} for k, g in held_by.items()]} if kept else {}
        )
        self.tell("removed", SYSTEM, text, resources=keys, reason=why, **extra)
        return await self._finish(status, None, why)

    async def _apply_resources(self, resources: list[ResourceRef], present: bool) -> None:
        person = self._person
        assert person is not None and person.graph_user_id and person.worker
        groups = [r.target for r in resources if r.kind is ResourceKind.GRAPH_GROUP]
        await steps.set_memberships(person.graph_user_id, groups, present)
        roles: dict[str, list[str]] = {}
        for r in resources:
            if r.kind is ResourceKind.SCIM_ROLE and r.role is not None:
                roles.setdefault(r.target, []).append(r.role)
        for app, app_roles in roles.items():
            await steps.ensure_app_account(
                app,
                person.worker,
                person.user_principal_name or person.employee_id,
                # Removing a role never reactivates an account a leaver deactivated.
                active=present or self._left is None,
                roles=app_roles if present else [],
                remove_roles=[] if present else app_roles,
            )
