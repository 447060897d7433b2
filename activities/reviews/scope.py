"""A review's snapshot: every item its scopes hold when the campaign starts, read page by page
from Graph, the SCIM apps and Tenure's own state, annotated from the holdings ledger, filtered,
recommended, and written to the record in chunks.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.reviews.inventory import GraphUser, ReviewGraph, ServicePrincipal
from activities.reviews.population import Population
from activities.scim.client import ScimAppClient, unknown_app
from domain.holdings import GrantKind, GrantRef, ResourceKind
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import IdentityContract, IdentityState
from domain.policy.model import Policy
from domain.reviews.definition import ReviewDefinition, ScopeKind
from domain.reviews.items import HolderKind, ReviewItem
from domain.reviews.rules import is_protected, passes_filter, recommend

SCIM_PAGE = 200
LEDGER_LOOKUPS = 16  # identity queries in flight at once
WRITE_CHUNK = 1000  # items written to the record per transaction
LEDGER_QUERY_TIMEOUT = timedelta(seconds=30)


def item_id(holder_id: str, resource: str) -> str:
    """Short and stable: the same holder and resource is the same item in every run."""
    return "i-" + hashlib.sha256(f"{holder_id}\n{resource}".encode()).hexdigest()[:16]


@dataclass
class Tenant:
    """What the snapshot reads once: every user, and Tenure's identities."""

    users: dict[str, GraphUser] = field(default_factory=dict)  # by object id
    by_employee: dict[str, GraphUser] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # employee id -> lifecycle stage


class Ledger:
    """The holdings ledger of Tenure's identities, asked once per person and kept for the run."""

    def __init__(self, temporal: Client) -> None:
        self._temporal = temporal
        self._states: dict[str, asyncio.Future[IdentityState | None]] = {}
        self._limit = asyncio.Semaphore(LEDGER_LOOKUPS)

    async def state(self, employee_id: str) -> IdentityState | None:
        found = self._states.get(employee_id)
        if found is None:
            found = asyncio.ensure_future(self._query(employee_id))
            self._states[employee_id] = found
        return await found

    async def _query(self, employee_id: str) -> IdentityState | None:
        handle = self._temporal.get_workflow_handle(identity_workflow_id(employee_id))
        async with self._limit:
            try:
                # Bounded: an identity whose worker is down must fail this attempt (Temporal
                # retries it), not hold the activity for ever.
                return await handle.query(
                    IdentityContract.QUERY_DETAILS,
                    result_type=IdentityState,
                    rpc_timeout=LEDGER_QUERY_TIMEOUT,
                )
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND:
                    return None
                raise

    async def grants(self, employee_id: str | None, resource: str) -> list[GrantRef] | None:
        """The grants holding `resource` (a ledger key) for a person; None when Tenure does not
        manage them, [] when it does but did not grant this (held outside Tenure)."""
        if not employee_id:
            return None
        state = await self.state(employee_id)
        if state is None:
            return None
        for holding in state.holdings:
            if holding.resource.key == resource:
                return list(holding.grants)
        return []


class Snapshot:
    """One campaign's snapshot, scope by scope; `add` filters, recommends and chunks to the record."""

    def __init__(
        self,
        definition: ReviewDefinition,
        policy: Policy,
        graph: ReviewGraph,
        scim: Mapping[str, ScimAppClient],
        population: Population,
        ledger: Ledger,
        now: datetime,
        write: Callable[[list[ReviewItem]], Awaitable[None]],
    ) -> None:
        self.definition = definition
        self.policy = policy
        self.graph = graph
        self.scim = scim
        self.population = population
        self.ledger = ledger
        self.now = now
        self.tenant = Tenant()
        self._write = write
        self._pending: list[ReviewItem] = []
        self.by_scope: dict[str, int] = {}
        self.filtered_out = 0
        self.birthright_only = 0
        self.missing: list[str] = []
        self._seen: set[str] = set()
        self._birthright = any(s.kind is ScopeKind.BIRTHRIGHT for s in definition.scope)

    async def run(self) -> None:
        await self._read_tenant()
        for scope in self.definition.scope:
            kind = scope.kind
            if kind is ScopeKind.GROUP_MEMBERS:
                await self._groups(scope.names)
            elif kind is ScopeKind.SERVICE_PRINCIPALS:
                await self._service_principals(scope.names)
            elif kind is ScopeKind.APP_ACCOUNTS:
                await self._apps(scope.names)
            elif kind is ScopeKind.ACCESS_PACKAGES:
                await self._packages(scope.names)
            elif kind is ScopeKind.BIRTHRIGHT:
                await self._birthright_holdings()
        await self._flush()

    # ---- reading ---------------------------------------------------------------------------------

    async def _read_tenant(self) -> None:
        async for page in self.graph.users():
            for user in page:
                self.tenant.users[user.id] = user
                if user.employee_id:
                    self.tenant.by_employee[user.employee_id] = user
            activity.heartbeat(f"users: {len(self.tenant.users)}")
        self.tenant.stages = await self.population.identity_stages()
        # Every identity's ledger at once (a bounded number in flight), not one per item in turn.
        await asyncio.gather(*(self.ledger.state(e) for e in self.tenant.stages))
        activity.heartbeat(f"ledgers: {len(self.tenant.stages)}")

    async def _groups(self, names: list[str]) -> None:
        for name in names:
            gid = await self.graph.group_id(name)
            owners = await self.graph.owner_employee_ids("groups", gid)
            async for ids in self.graph.member_ids(gid, name):
                for uid in ids:
                    user = self.tenant.users.get(uid)
                    if user is None:
                        continue  # a device, group or contact: not a person's access
                    await self._user_item(
                        user, f"group:{name}", name, gid, ScopeKind.GROUP_MEMBERS, owners
                    )
                activity.heartbeat(f"group {name}: {self.by_scope.get('groups', 0)} item(s)")

    async def _service_principals(self, names: list[str]) -> None:
        principals: dict[str, ServicePrincipal | None] = {}
        for name in names:
            sp = await self.graph.service_principal(name)
            if sp is None:
                self.missing.append(f"service principal {name!r}")
                continue
            owners = await self.graph.owner_employee_ids("servicePrincipals", sp.id)
            async for assignments in self.graph.assignments_to(sp.id):
                for a in assignments:
                    role = sp.roles.get(a.app_role_id) or "default"
                    resource = f"sp:{sp.app_id}:{role}"
                    label = f"{sp.display_name} ({role})"
                    if a.principal_type == "User":
                        user = self.tenant.users.get(a.principal_id)
                        if user is not None:
                            await self._user_item(
                                user,
                                resource,
                                label,
                                sp.id,
                                ScopeKind.SERVICE_PRINCIPALS,
                                owners,
                                assignment_id=a.id,
                            )
                    elif a.principal_type == "ServicePrincipal":
                        if a.principal_id not in principals:
                            principals[a.principal_id] = await self.graph.service_principal_by_id(
                                a.principal_id
                            )
                        holder = principals[a.principal_id]
                        if holder is None:
                            continue  # deleted since it was assigned
                        last = await self.graph.service_principal_sign_ins(holder.app_id)
                        await self._add(
                            ReviewItem(
                                item_id=item_id(a.principal_id, resource),
                                holder_kind=HolderKind.SERVICE_PRINCIPAL,
                                holder_id=a.principal_id,
                                holder_name=holder.display_name or a.principal_name,
                                resource=resource,
                                resource_name=label,
                                resource_id=sp.id,
                                assignment_id=a.id,
                                scope=ScopeKind.SERVICE_PRINCIPALS.value,
                                owners=owners,
                                last_sign_in=last,
                                grants=[f"app-role assignment {a.id}"],
                            ),
                            app_id=holder.app_id,
                        )
                activity.heartbeat(
                    f"{sp.display_name}: {self.by_scope.get('service_principals', 0)}"
                )

    async def _apps(self, names: list[str]) -> None:
        for app in names:
            client = self.scim.get(app)
            if client is None:
                raise unknown_app(app)
            accounts: dict[str, object] = {}  # SCIM id -> user
            async for users in _scim_pages(client.list_users):
                for scim_user in users:
                    accounts[str(scim_user.id)] = scim_user
                    await self._app_item(app, scim_user, f"app:{app}", app, app)
                activity.heartbeat(f"app {app}: {len(accounts)} account(s)")
            # Roles are the app's groups; a member is an account by its SCIM id.
            async for groups in _scim_pages(client.list_groups):
                for group in groups:
                    role = str(group.display_name or "")
                    for member in group.members or []:
                        scim_user = accounts.get(str(member.value))
                        if scim_user is not None and role:
                            await self._app_item(
                                app, scim_user, f"app:{app}:{role}", f"{app} {role}", str(group.id)
                            )
                activity.heartbeat(f"app {app}: roles")

    async def _app_item(
        self, app: str, scim_user: object, resource: str, label: str, resource_id: str
    ) -> None:
        external = getattr(scim_user, "external_id", None)
        scim_id = str(getattr(scim_user, "id", ""))
        user = self.tenant.by_employee.get(external) if external else None
        if user is not None:
            await self._user_item(
                user,
                resource,
                label,
                resource_id,
                ScopeKind.APP_ACCOUNTS,
                [],
                assignment_id=scim_id,
            )
            return
        holder = f"scim:{app}:{scim_id}"
        await self._add(
            ReviewItem(
                item_id=item_id(holder, resource),
                holder_kind=HolderKind.USER,
                holder_id=holder,
                employee_id=external or None,
                holder_name=str(getattr(scim_user, "user_name", None) or external or scim_id),
                resource=resource,
                resource_name=label,
                resource_id=resource_id,
                assignment_id=scim_id,
                scope=ScopeKind.APP_ACCOUNTS.value,
            )
        )

    async def _packages(self, names: list[str]) -> None:
        for granted in await self.population.granted_requests(names):
            package = self.policy.access.packages.get(granted.package_id)
            if package is None:
                continue  # a package since removed from the policy
            owners = package.owners or self.policy.access.catalogs[package.catalog].owners
            user = self.tenant.by_employee.get(granted.employee_id)
            holder_id = user.id if user else f"employee:{granted.employee_id}"
            await self._add(
                self._person_item(
                    user,
                    granted.employee_id,
                    holder_id,
                    f"package:{granted.package_id}",
                    package.display_name,
                    granted.request_id,
                    ScopeKind.ACCESS_PACKAGES,
                    list(owners),
                    grants=[f"package {granted.package_id} ({granted.request_id})"],
                    request_ids=[granted.request_id],
                )
            )

    async def _birthright_holdings(self) -> None:
        for employee, stage in self.tenant.stages.items():
            if stage != "active":
                continue
            state = await self.ledger.state(employee)
            if state is None:
                continue
            user = self.tenant.by_employee.get(employee)
            for holding in state.holdings:
                rules = [g for g in holding.grants if g.kind is GrantKind.BIRTHRIGHT]
                if not rules:
                    continue
                ref = holding.resource
                if ref.kind is ResourceKind.GRAPH_GROUP:
                    resource_id = await self.graph.group_id(ref.target)
                else:
                    resource_id = ref.target
                await self._add(
                    self._person_item(
                        user,
                        employee,
                        user.id if user else f"employee:{employee}",
                        ref.key,
                        ref.key.split(":", 1)[1],
                        resource_id,
                        ScopeKind.BIRTHRIGHT,
                        [],
                        grants=[g.describe() for g in holding.grants],
                        request_ids=[g.id for g in holding.grants if g.kind is GrantKind.PACKAGE],
                    )
                )

    # ---- items -----------------------------------------------------------------------------------

    async def _user_item(
        self,
        user: GraphUser,
        resource: str,
        label: str,
        resource_id: str,
        scope: ScopeKind,
        owners: list[str],
        assignment_id: str | None = None,
    ) -> None:
        grants = await self.ledger.grants(
            user.employee_id if user.employee_id in self.tenant.stages else None, resource
        )
        described = [g.describe() for g in grants or []]
        if grants and all(g.kind is GrantKind.BIRTHRIGHT for g in grants) and not self._birthright:
            # Policy grants it: reviewed only when the review includes birthright holdings.
            self.birthright_only += 1
            return
        await self._add(
            self._person_item(
                user,
                user.employee_id or "",
                user.id,
                resource,
                label,
                resource_id,
                scope,
                owners,
                grants=described,
                request_ids=[g.id for g in grants or [] if g.kind is GrantKind.PACKAGE],
                assignment_id=assignment_id,
            )
        )

    def _person_item(
        self,
        user: GraphUser | None,
        employee: str,
        holder_id: str,
        resource: str,
        label: str,
        resource_id: str,
        scope: ScopeKind,
        owners: list[str],
        *,
        grants: list[str],
        request_ids: list[str],
        assignment_id: str | None = None,
    ) -> ReviewItem:
        return ReviewItem(
            item_id=item_id(holder_id, resource),
            holder_kind=HolderKind.USER,
            holder_id=holder_id,
            employee_id=employee or None,
            holder_name=user.upn if user else employee,
            employment_type=user.employee_type if user else "",
            department=user.department if user else "",
            user_type=user.user_type if user else "",
            resource=resource,
            resource_name=label,
            resource_id=resource_id,
            assignment_id=assignment_id,
            scope=scope.value,
            grants=grants,
            request_ids=request_ids,
            owners=owners,
            last_sign_in=user.last_sign_in if user else None,
        )

    async def _add(self, item: ReviewItem, app_id: str | None = None) -> None:
        if item.item_id in self._seen:
            return  # one holder, one resource: found by two scopes, reviewed once
        if not passes_filter(item, self.definition.filter, self.now):
            self.filtered_out += 1
            return
        self._seen.add(item.item_id)
        recommended, reason = recommend(item.last_sign_in, self.now, self.definition.recommend)
        item.recommendation, item.recommendation_reason = recommended, reason
        item.protected = is_protected(item, self.definition.apply) or bool(
            app_id and app_id.casefold() in {p.casefold() for p in self.definition.apply.protected}
        )
        self.by_scope[item.scope] = self.by_scope.get(item.scope, 0) + 1
        self._pending.append(item)
        if len(self._pending) >= WRITE_CHUNK:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending:
            chunk, self._pending = self._pending, []
            await self._write(chunk)


async def _scim_pages(
    read: Callable[[int, int], Awaitable[tuple[list[Any], int]]],
) -> AsyncIterator[list[Any]]:
    """Every page of a SCIM listing (1-based startIndex), until the total is reached."""
    start = 1
    while True:
        page, total = await read(start, SCIM_PAGE)
        if page:
            yield page
        start += len(page)
        if not page or start > total:
            return
