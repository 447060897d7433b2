"""The provisioning steps every transition shares: group membership, app accounts, the manager.

Written once, used by the joiner, mover, leaver, grace removal, retention and access grants. Each
step is one activity call (the same commands in the same order as before these helpers, so
recorded histories replay), and reports what it did to an optional `Steps` sink, e.g. a
workflow's ProgressReporter; a step that may fail without failing the transition returns False
and reports a warning instead.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle.events import WorkerRecord
    from domain.provisioning import (
        EnsureScimUserInput,
        GroupMembershipInput,
        GroupMembershipResult,
        ScimUserKey,
        ScimUserRef,
        SetManagerInput,
        SetScimActiveInput,
    )
    from domain.stubs import graph as graph_activity
    from domain.stubs import scim as scim_activity
    from workflows.steps.retry import PROVISIONING, WAIT_FOR_MANAGER


class Steps(Protocol):
    """Where a step says what it did (a ProgressReporter has both)."""

    def done(self, step: str) -> None: ...
    def warn(self, warning: str) -> None: ...


class Quiet:
    """For callers that keep no progress: steps still run, nothing is reported."""

    def done(self, step: str) -> None:
        pass

    def warn(self, warning: str) -> None:
        pass


QUIET = Quiet()


class Warnings:
    """Collects warnings into a result's list (for workflows without a progress model)."""

    def __init__(self, into: list[str]) -> None:
        self._into = into

    def done(self, step: str) -> None:
        pass

    def warn(self, warning: str) -> None:
        self._into.append(warning)


async def set_memberships(
    user_id: str, groups: list[str], present: bool
) -> GroupMembershipResult | None:
    """Make the user a member (or not) of each group; nothing to do (None) for no groups."""
    if not groups:
        return None
    return await workflow.execute_activity(
        graph_activity.ensure_group_memberships,
        GroupMembershipInput(user_id=user_id, groups=groups, present=present),
        **PROVISIONING,
    )


async def set_manager(user_id: str, manager_id: str | None, steps: Steps = QUIET) -> bool:
    """Point the user's manager at `manager_id`'s account. A manager whose own hire is still
    running is waited for a while; one who never appears must not block the transition."""
    if not manager_id:
        return False
    try:
        await workflow.execute_activity(
            graph_activity.set_manager,
            SetManagerInput(user_id=user_id, manager_employee_id=manager_id),
            **WAIT_FOR_MANAGER,
        )
    except ActivityError as err:
        steps.warn(f"manager {manager_id} not set: {err.cause or err}")
        return False
    steps.done(f"manager set to {manager_id}")
    return True


async def ensure_app_account(
    app: str,
    worker: WorkerRecord,
    user_name: str,
    *,
    active: bool,
    roles: list[str],
    remove_roles: list[str] | None = None,
) -> ScimUserRef:
    """Create or update the person's account in one SCIM app, with roles granted and taken."""
    return await workflow.execute_activity(
        scim_activity.ensure_user,
        EnsureScimUserInput(
            app=app,
            worker=worker,
            user_name=user_name,
            active=active,
            roles=roles,
            remove_roles=remove_roles or [],
        ),
        **PROVISIONING,
    )


async def set_app_active(app: str, employee_id: str, active: bool) -> None:
    await workflow.execute_activity(
        scim_activity.set_active,
        SetScimActiveInput(app=app, external_id=employee_id, active=active),
        **PROVISIONING,
    )


async def deactivate_app_account(app: str, employee_id: str, steps: Steps = QUIET) -> bool:
    """Deactivate one app account; only non-retryable errors (e.g. the account is already gone)
    end up as a warning, and the transition goes on with the others."""
    try:
        await set_app_active(app, employee_id, active=False)
    except ActivityError as err:
        steps.warn(f"{app} account not deactivated: {err.cause or err}")
        return False
    steps.done(f"{app} account deactivated")
    return True


async def delete_app_account(app: str, employee_id: str) -> None:
    await workflow.execute_activity(
        scim_activity.delete_user, ScimUserKey(app=app, external_id=employee_id), **PROVISIONING
    )
