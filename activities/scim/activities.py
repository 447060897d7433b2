"""SCIM activities: keep a worker's account (and app roles, as SCIM groups) right in a target app.

Every activity looks up before it writes, by `externalId` = employee id, so a retry or a rerun
after a crash finds what an earlier attempt did instead of doing it twice (docs/architecture.md, rule 3). The
app clients are injected: nothing here reads the environment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from scim2_models import EnterpriseUser, Group, Name, PatchOp, PatchOperation
from scim2_models.resources.enterprise_user import Manager
from scim2_models.resources.user import Email
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.scim.client import (
    SCIM_CONFLICT,
    ScimAppClient,
    ScimUser,
    filter_literal,
    unknown_app,
)
from domain.provisioning import (
    ActivityNames,
    EnsureScimUserInput,
    ScimUserKey,
    ScimUserRef,
    SetScimActiveInput,
)

SCIM_USER_NOT_FOUND = "ScimUserNotFound"


def eq_filter(attribute: str, value: str) -> str:
    return f"{attribute} eq {filter_literal(value)}"


def desired_user(request: EnsureScimUserInput, manager_scim_id: str | None) -> ScimUser:
    """The account as Tenure wants it. Attributes set to None here are cleared at the target."""
    worker = request.worker
    user = ScimUser(
        external_id=worker.employee_id,
        user_name=request.user_name,
        name=Name(
            given_name=worker.given_name,
            family_name=worker.family_name,
            formatted=worker.display_name or None,
        ),
        display_name=worker.display_name or request.user_name,
        active=request.active,
        title=worker.job_title,
        user_type=worker.employment_type.value,
        emails=[Email(value=request.user_name, type=Email.Type.work, primary=True)],
    )
    enterprise = EnterpriseUser(employee_number=worker.employee_id, department=worker.department)
    if worker.manager_id is None:
        enterprise.manager = None  # named and empty: no manager any more, clear it
    elif manager_scim_id is not None:
        enterprise.manager = Manager(value=manager_scim_id)
    # else: the manager has no account in this app yet; leave whatever is there alone.
    user[EnterpriseUser] = enterprise
    return user


MANAGER_CACHE_SECONDS = 60.0


class ScimActivities:
    def __init__(self, clients: Mapping[str, ScimAppClient]) -> None:
        self._clients = dict(clients)
        # (app, manager employee id) -> (expiry, SCIM id). A burst of hires under one manager
        # would otherwise search for the same manager once per report.
        self._managers: dict[tuple[str, str], tuple[float, str]] = {}
        self._manager_lookups: dict[tuple[str, str], asyncio.Future[str | None]] = {}

    async def _manager_scim_id(self, client: ScimAppClient, manager_id: str) -> str | None:
        key = (client.app, manager_id)
        cached = self._managers.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        # Many reports of one manager start together: one lookup serves them all.
        lookup = self._manager_lookups.get(key)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up_manager(client, manager_id))
            self._manager_lookups[key] = lookup
            lookup.add_done_callback(lambda _: self._manager_lookups.pop(key, None))
        return await asyncio.shield(lookup)

    async def _look_up_manager(self, client: ScimAppClient, manager_id: str) -> str | None:
        key = (client.app, manager_id)
        manager = await client.find_user(eq_filter("externalId", manager_id))
        if manager is None or manager.id is None:
            return None  # not there yet: no reference now, a later update fills it in
        self._managers[key] = (time.monotonic() + MANAGER_CACHE_SECONDS, str(manager.id))
        return str(manager.id)

    def _client(self, app: str) -> ScimAppClient:
        client = self._clients.get(app)
        if client is None:
            raise unknown_app(app)
        return client

    @activity.defn(name=ActivityNames.SCIM_ENSURE_USER)
    async def ensure_user(self, request: EnsureScimUserInput) -> ScimUserRef:
        client = self._client(request.app)
        employee_id = request.worker.employee_id
        manager_scim_id = None
        if request.worker.manager_id:
            manager_scim_id = await self._manager_scim_id(client, request.worker.manager_id)
        desired = desired_user(request, manager_scim_id)

        existing = await client.find_user(eq_filter("externalId", employee_id))
        created = False
        if existing is None:
            try:
                existing = await client.create_user(desired)
                created = True
            except ApplicationError as err:
                if err.type != SCIM_CONFLICT:
                    raise
                existing = await self._resolve_conflict(client, request)
        if not created:
            await self._update(client, existing, desired)

        user_id = str(existing.id)
        for role in dict.fromkeys(request.roles):
            await self._ensure_member(client, role, user_id)
        for role in dict.fromkeys(request.remove_roles):
            if role not in request.roles:
                await self._ensure_not_member(client, role, user_id)
        activity.logger.info(
            "SCIM user %s in %s (%s)", employee_id, request.app, "created" if created else "ensured"
        )
        return ScimUserRef(app=request.app, scim_id=user_id, created=created)

    @activity.defn(name=ActivityNames.SCIM_SET_ACTIVE)
    async def set_active(self, request: SetScimActiveInput) -> None:
        client = self._client(request.app)
        user = await client.find_user(eq_filter("externalId", request.external_id))
        if user is None:
            raise ApplicationError(
                f"{request.app}: no SCIM user with externalId {request.external_id}",
                type=SCIM_USER_NOT_FOUND,
                non_retryable=True,
            )
        if user.active is request.active:
            return
        patch = PatchOp[ScimUser](
            operations=[
                PatchOperation[ScimUser](
                    op=PatchOperation.Op.replace_, path="active", value=request.active
                )
            ]
        )
        await client.patch_user(str(user.id), patch, call="set active")

    @activity.defn(name=ActivityNames.SCIM_DELETE_USER)
    async def delete_user(self, key: ScimUserKey) -> None:
        client = self._client(key.app)
        user = await client.find_user(eq_filter("externalId", key.external_id))
        if user is not None:  # none: already gone, which is what we wanted
            await client.delete_user(str(user.id))

    # ---- removals by SCIM id (access reviews: accounts Tenure may not have made) -----------------

    async def remove_role(self, app: str, role: str, user_id: str) -> None:
        """Take a role (a SCIM group of that name) from an account; absent already is done."""
        await self._ensure_not_member(self._client(app), role, user_id)

    # ---- helpers ---------------------------------------------------------------------------------

    async def _resolve_conflict(
        self, client: ScimAppClient, request: EnsureScimUserInput
    ) -> ScimUser:
        """After a 409 on create, find who holds the unique value; adopt that account if ours."""
        employee_id = request.worker.employee_id
        # Another attempt may have created the user between our lookup and our create.
        user = await client.find_user(eq_filter("externalId", employee_id))
        if user is not None:
            return user
        # The userName may belong to an account made outside Tenure, without an externalId.
        user = await client.find_user(eq_filter("userName", request.user_name))
        if user is not None and user.external_id in (None, employee_id):
            return user
        holder = f"the user with externalId {user.external_id}" if user else "another resource"
        raise ApplicationError(
            f"{client.app}: cannot create the user of {employee_id}: a unique value "
            f"(userName?) is held by {holder}",
            type=SCIM_CONFLICT,
            non_retryable=True,
        )

    async def _update(self, client: ScimAppClient, existing: ScimUser, desired: ScimUser) -> None:
        # A PATCH of only what differs: attributes other systems manage are left alone, and an
        # up-to-date account is not written at all.
        patch = PatchOp.build_from(existing, desired)
        if patch is not None:
            await client.patch_user(str(existing.id), patch, call="update user")

    async def _ensure_member(self, client: ScimAppClient, role: str, user_id: str) -> None:
        group = await self._group(client, role)
        if any(member.value == user_id for member in group.members or []):
            return
        await client.add_group_member(str(group.id), user_id)

    async def _ensure_not_member(self, client: ScimAppClient, role: str, user_id: str) -> None:
        # Every group of that name (displayName is not unique): not a member anywhere = done.
        for group in await client.find_groups(eq_filter("displayName", role)):
            if any(member.value == user_id for member in group.members or []):
                await client.remove_group_member(str(group.id), user_id)

    async def _group(self, client: ScimAppClient, display_name: str) -> Group:
        """The role's group, created if missing.

        displayName is not unique in SCIM, so two workers creating the same group at once can make
        two. Everyone then picks the earliest created one, so all memberships converge on it.
        """
        groups = await client.find_groups(eq_filter("displayName", display_name))
        if not groups:
            created = await client.create_group(Group(display_name=display_name))
            groups = await client.find_groups(eq_filter("displayName", display_name)) or [created]
        return min(groups, key=_creation_order)


def _creation_order(group: Group) -> tuple[datetime, str]:
    created = group.meta.created if group.meta and group.meta.created else None
    return created or datetime.max.replace(tzinfo=UTC), str(group.id)
