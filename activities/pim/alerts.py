"""The PIM alert scan's activity: read what privileged access exists, decide what is wrong
(domain/pim/alert_rules.py) and apply it to the record's alerts, at the scan's `at`.

What it reads, for every scanned role (the policy's directory roles and Entra's built-in
privileged roles), by `roleDefinitionId` (the template id), paged by `@odata.nextLink`:
- `roleManagement/directory/roleAssignmentScheduleInstances`: what is in force, with its window;
- `roleManagement/directory/roleAssignments`: what is in force, including assignments made
  outside PIM, which may have no instance (and then no end: permanent);
- `roleManagement/directory/roleEligibilityScheduleInstances`: who is eligible, since when;
and for every privileged group the policy names (resolved by display name), its members or
owners (`/groups/{id}/members` or `/owners`: direct ones too, which PIM does not list) with the
windows of `privilegedAccess/group/assignmentScheduleInstances`, and its
`eligibilityScheduleInstances`; a group that is not in Graph is skipped with a warning. Then the
holders' `employeeId`s in `$batch`es of `/users/{id}` (a principal that is no user, a service
principal or a role-assignable group, has none), and from the record the `pim:<role>`
activations and granted `pim-eligible:<role>` eligibilities.

Nothing here writes to Graph. The record's write (`apply_alert_scan`) is idempotent for one `at`,
so a retry, even one that reads a Graph changed since, applies the same scan or a later view of it
and never raises an alert twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from msgraph import GraphServiceClient
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.graph.directory import GraphDirectory
from activities.graph.odata import (
    BATCH_LIMIT,
    chunks,
    odata_quote,
    parse_graph_time,
    segment,
    sub_response_error,
)
from audit.store import AccessRecordStore
from domain.access.request import RequestStatus, RequestView
from domain.pim.activation import eligibility_key, package_key
from domain.pim.alert_rules import (
    ALL_KINDS,
    TENANT_SCOPE,
    ActivationFact,
    AlertInventory,
    EligibilityFact,
    RoleHolding,
    ScannedRole,
    find_alerts,
    scanned_roles,
)
from domain.pim.alert_scan import AlertScanInput, AlertScanReport, PimAlertActivityNames
from domain.policy.model import Policy

DIRECTORY_PIM = "roleManagement/directory"
GROUP_PIM = "identityGovernance/privilegedAccess/group"
# Roles read from Graph at once: a few dozen small reads, without a burst Graph would throttle.
CONCURRENT_READS = 4
# Record rows read per scan, newest first. Activations older than the newest this many matter to
# neither the activation window nor the idle check unless a tenant activates thousands a month.
RECORD_LIMIT = 5000
# The record's activations Tenure holds now (`granting`: its Graph assignment may already exist).
_HELD = frozenset({RequestStatus.GRANTED, RequestStatus.GRANTING})


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in_force(item: dict[str, Any], at: datetime) -> bool:
    start = parse_graph_time(item.get("startDateTime"))
    end = parse_graph_time(item.get("endDateTime"))
    return (start is None or start <= at) and (end is None or end > at)


def _key(item: dict[str, Any]) -> tuple[str, str]:
    """(principal, scope) of an assignment or instance; ids compare without case."""
    principal = str(item.get("principalId") or "").lower()
    return principal, str(item.get("directoryScopeId") or TENANT_SCOPE)


class AlertGraph(GraphDirectory):
    """The scan's Graph reads (all GETs)."""

    async def listed(self, collection: str, template_id: str) -> list[dict[str, Any]]:
        """Every item of a `roleManagement/directory` collection for one role, all pages."""
        expression = quote(f"roleDefinitionId eq {odata_quote(template_id)}", safe="")
        items = await self._all_pages(
            f"{self._root}/{DIRECTORY_PIM}/{collection}?$filter={expression}",
            f"list {collection} of role {template_id}",
        )
        # Kept to the role asked: the filter is not trusted to be complete.
        return [i for i in items if str(i.get("roleDefinitionId") or "").lower() == template_id]

    async def group_listed(
        self, collection: str, group_id: str, access: str
    ) -> list[dict[str, Any]]:
        """Every item of a `privilegedAccess/group` collection for one group and access, all
        pages (Graph lists these only when scoped to a group or a principal)."""
        expression = quote(f"groupId eq {odata_quote(group_id)}", safe="")
        items = await self._all_pages(
            f"{self._root}/{GROUP_PIM}/{collection}?$filter={expression}",
            f"list {collection} of group {group_id}",
        )
        return [
            i
            for i in items
            if str(i.get("groupId") or "").lower() == group_id.lower()
            and i.get("accessId") == access
        ]

    async def group_holders(self, group_id: str, access: str) -> list[str]:
        """The ids of a group's members (or owners), direct or given by PIM, all pages."""
        relation = "owners" if access == "owner" else "members"
        items = await self._all_pages(
            f"{self._root}/groups/{segment(group_id)}/{relation}?$select=id",
            f"list {relation} of group {group_id}",
        )
        return [str(i["id"]) for i in items if i.get("id")]

    async def group_id(self, name: str) -> str | None:
        """A privileged group's object id by display name; None when Graph has no such group."""
        try:
            return (await self._resolve_groups([name]))[name]
        except ApplicationError as err:
            if err.type == "GroupNotFound":
                return None
            raise

    async def employee_ids(self, principal_ids: list[str]) -> dict[str, str | None]:
        """Principal id (lower case) -> the user's employeeId; None for no user or none set."""
        found: dict[str, str | None] = {}
        for chunk in chunks(sorted(set(principal_ids)), BATCH_LIMIT):
            requests = [
                {
                    "id": str(i),
                    "method": "GET",
                    "url": f"/users/{segment(pid)}?$select=id,employeeId",
                }
                for i, pid in enumerate(chunk)
            ]
            answers = await self._batch(requests, "look up role holders by id")
            failed = []
            for i, pid in enumerate(chunk):
                answer = answers.get(str(i), {})
                status = int(answer.get("status", 0))
                if status == 200:
                    found[pid] = (answer.get("body") or {}).get("employeeId") or None
                elif status == 404:
                    found[pid] = None  # a service principal or a group: no employee id
                else:
                    failed.append(answer)
            if failed:
                raise sub_response_error("look up role holders by id", failed)
        return found


class PimAlertActivities:
    """The alert scan; the Graph client, the record store and the policy are injected."""

    def __init__(self, graph: GraphServiceClient, store: AccessRecordStore, policy: Policy) -> None:
        self._graph = AlertGraph(graph)
        self._store = store
        self._policy = policy

    @activity.defn(name=PimAlertActivityNames.SCAN)
    async def alert_scan(self, input: AlertScanInput) -> AlertScanReport:
        at = _utc(input.at or datetime.now(UTC))
        pim = self._policy.pim
        roles = scanned_roles(pim)
        reads = asyncio.Semaphore(CONCURRENT_READS)
        per_role = await asyncio.gather(*(self._read_role(role, at, reads) for role in roles))
        principals = [
            pid for assigned, eligible in per_role for pid in (*assigned, *eligible) if pid
        ]
        employees = await self._graph.employee_ids(principals)

        holdings: list[RoleHolding] = []
        graph_eligible: list[EligibilityFact] = []
        for role, (assigned, eligible) in zip(roles, per_role, strict=True):
            holdings += _holdings(role, assigned, employees)
            for pid, since in eligible.items():
                graph_eligible.append(
                    EligibilityFact(
                        employee_id=employees.get(pid) or pid,
                        role_id=role.alert_role,
                        since=since or at,
                    )
                )
        activations, record_eligible = await asyncio.to_thread(self._record_facts)
        inventory = AlertInventory(
            holdings=holdings,
            activations=activations,
            eligibilities=[*record_eligible, *graph_eligible],
        )
        findings = find_alerts(inventory, pim, at)
        result = await asyncio.to_thread(self._store.apply_alert_scan, ALL_KINDS, findings, at)
        activity.logger.info(
            "pim alerts at %s: %d findings, %d raised, %d resolved",
            at.isoformat(),
            len(findings),
            len(result.raised),
            len(result.resolved),
        )
        return AlertScanReport(
            at=at,
            result=result,
            roles_scanned=len(roles),
            holdings_seen=len(holdings),
            notify=list(pim.alerts.notify),
            mail_sender=self._policy.tenant.mail_sender,
        )

    async def _read_role(
        self, role: ScannedRole, at: datetime, reads: asyncio.Semaphore
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, datetime | None]]:
        """(principal -> what it holds of the role in force at `at`, principal -> eligible since)."""
        if role.group is not None:
            return await self._read_group(role, role.group, at, reads)
        async with reads:
            instances = await self._graph.listed(
                "roleAssignmentScheduleInstances", role.template_id
            )
            direct = await self._graph.listed("roleAssignments", role.template_id)
            eligible = await self._graph.listed(
                "roleEligibilityScheduleInstances", role.template_id
            )
        activity.heartbeat(role.template_id)
        # An assignment with no schedule instance was made outside PIM: in force, no end.
        return _assigned(instances, direct, at), _eligible_since(eligible, at)

    async def _read_group(
        self, role: ScannedRole, name: str, at: datetime, reads: asyncio.Semaphore
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, datetime | None]]:
        async with reads:
            group_id = await self._graph.group_id(name)
            if group_id is None:
                activity.logger.warning(
                    "pim alerts: privileged group %r (%s) is not in Graph", name, role.role_id
                )
                return {}, {}
            instances = await self._graph.group_listed(
                "assignmentScheduleInstances", group_id, role.access
            )
            holders = await self._graph.group_holders(group_id, role.access)
            eligible = await self._graph.group_listed(
                "eligibilityScheduleInstances", group_id, role.access
            )
        activity.heartbeat(role.template_id)
        # A member or owner PIM did not make has no instance: held outside PIM, with no end.
        direct = [{"principalId": pid} for pid in holders]
        return _assigned(instances, direct, at), _eligible_since(eligible, at)

    def _record_facts(self) -> tuple[list[ActivationFact], list[EligibilityFact]]:
        """The record's activations (every status: the window counts ended ones too) and its
        granted eligibilities."""
        activation_prefix, eligibility_prefix = package_key(""), eligibility_key("")
        runs = self._store.list_requests(package_prefix=activation_prefix, limit=RECORD_LIMIT)
        eligible = self._store.list_requests(
            package_prefix=eligibility_prefix, status=RequestStatus.GRANTED, limit=RECORD_LIMIT
        )
        if len(runs) == RECORD_LIMIT:
            activity.logger.warning(
                "pim alerts: the record's newest %d activations only are counted", RECORD_LIMIT
            )
        return (
            [_activation(v, activation_prefix) for v in runs],
            [
                EligibilityFact(
                    employee_id=v.beneficiary_id,
                    role_id=v.package_id.removeprefix(eligibility_prefix),
                    since=v.granted_at or v.submitted_at,
                )
                for v in eligible
            ],
        )


def _assigned(
    instances: list[dict[str, Any]], direct: list[dict[str, Any]], at: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Principal -> what it holds in force at `at`: each schedule instance's window, and each
    direct holding with no instance as permanent."""
    assigned: dict[str, list[dict[str, Any]]] = {}
    windows = {_key(i) for i in instances}
    for item in instances:
        if _in_force(item, at):
            assigned.setdefault(_key(item)[0], []).append(item)
    for item in direct:
        if _key(item) not in windows:
            assigned.setdefault(_key(item)[0], []).append(
                {**item, "startDateTime": None, "endDateTime": None}
            )
    return assigned


def _eligible_since(eligible: list[dict[str, Any]], at: datetime) -> dict[str, datetime | None]:
    """Principal -> the earliest start of its eligibility instances in force at `at`."""
    since: dict[str, datetime | None] = {}
    for item in eligible:
        if not _in_force(item, at):
            continue
        pid = _key(item)[0]
        start = parse_graph_time(item.get("startDateTime"))
        held = since.get(pid)
        since[pid] = start if held is None or (start is not None and start < held) else held
    return since


def _activation(view: RequestView, prefix: str) -> ActivationFact:
    return ActivationFact(
        employee_id=view.beneficiary_id,
        role_id=view.package_id.removeprefix(prefix),
        granted_at=view.granted_at,
        held=view.status in _HELD,
    )


def _holdings(
    role: ScannedRole,
    assigned: dict[str, list[dict[str, Any]]],
    employees: dict[str, str | None],
) -> list[RoleHolding]:
    """One holding per principal and scope: the window ending last (a permanent one first)."""
    found: list[RoleHolding] = []
    for pid, items in sorted(assigned.items()):
        by_scope: dict[str, RoleHolding] = {}
        for item in items:
            holding = RoleHolding(
                principal_id=str(item.get("principalId") or pid),
                employee_id=employees.get(pid),
                template_id=role.template_id,
                role_id=role.role_id,
                start=parse_graph_time(item.get("startDateTime")),
                end=parse_graph_time(item.get("endDateTime")),
                scope=_key(item)[1],
                assignment_type=str(item.get("assignmentType") or "Assigned"),
            )
            held = by_scope.get(holding.scope)
            if held is None or _lasts_longer(holding, held):
                by_scope[holding.scope] = holding
        found += [by_scope[s] for s in sorted(by_scope)]
    return found


def _lasts_longer(a: RoleHolding, b: RoleHolding) -> bool:
    if b.end is None:
        return False
    return a.end is None or a.end > b.end
