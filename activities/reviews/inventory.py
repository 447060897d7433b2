"""What a review reads from Graph: users with their sign-in activity, group members and owners,
service principals with their app-role assignments and owners; and the Graph removals a review
applies (memberships by $batch, app-role assignments).

Every collection is read page by page (`@odata.nextLink`); nothing here holds more than the
tenant's users (a few hundred bytes each) at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kiota_abstractions.api_error import APIError

from activities.graph.directory import GraphDirectory
from activities.graph.errors import graph_call, status_of
from activities.graph.groups import GraphGroups
from activities.graph.odata import (
    BATCH_LIMIT,
    chunks,
    odata_quote,
    parse_graph_time,
    segment,
    sub_response_error,
)

PAGE = 999  # Graph's largest page for users and directory objects
_USER_SELECT = (
    "id,employeeId,userPrincipalName,displayName,department,employeeType,userType,"
    "accountEnabled,signInActivity"
)


@dataclass
class GraphUser:
    id: str
    employee_id: str | None
    upn: str
    display_name: str
    department: str
    employee_type: str
    user_type: str
    last_sign_in: datetime | None


@dataclass
class ServicePrincipal:
    id: str
    app_id: str
    display_name: str
    # appRoleId -> role value ("" for the default access role)
    roles: dict[str, str] = field(default_factory=dict)


@dataclass
class Assignment:
    id: str
    app_role_id: str
    principal_id: str
    principal_type: str  # User | Group | ServicePrincipal
    principal_name: str


def last_sign_in(activity: dict[str, Any] | None) -> datetime | None:
    """The latest sign-in of any kind Graph reports (interactive or not)."""
    if not activity:
        return None
    times = [
        parse_graph_time(activity.get(key))
        for key in ("lastSignInDateTime", "lastNonInteractiveSignInDateTime")
    ]
    found = [t for t in times if t is not None]
    return max(found) if found else None


class ReviewGraph(GraphGroups, GraphDirectory):
    """Graph reads and removals for reviews, on the shared directory helpers."""

    async def _pages(self, url: str, call: str) -> AsyncIterator[list[dict[str, Any]]]:
        next_url: str | None = url
        while next_url:
            with graph_call(call):
                page = await self._send_for_json(self._get(next_url))
            yield list(page.get("value") or [])
            next_url = page.get("@odata.nextLink")

    async def users(self) -> AsyncIterator[list[GraphUser]]:
        async for page in self._pages(
            f"{self._root}/users?$select={_USER_SELECT}&$top={PAGE}", "list users"
        ):
            yield [_user(u) for u in page]

    async def group_id(self, name: str) -> str:
        return (await self._resolve_groups([name]))[name]

    async def member_ids(self, group_id: str, name: str) -> AsyncIterator[list[str]]:
        async for page in self._pages(
            f"{self._root}/groups/{segment(group_id)}/members?$select=id&$top={PAGE}",
            f"list members of group {name!r}",
        ):
            yield [m["id"] for m in page if m.get("id")]

    async def owner_employee_ids(self, collection: str, object_id: str) -> list[str]:
        """Employee ids of a group's or service principal's owners (owners without one are
        people Tenure cannot route to, and are left out)."""
        found: list[str] = []
        async for page in self._pages(
            f"{self._root}/{collection}/{segment(object_id)}/owners?$select=id,employeeId",
            f"list owners of {collection} {object_id}",
        ):
            found += [o["employeeId"] for o in page if o.get("employeeId")]
        return found

    async def service_principal(self, name: str) -> ServicePrincipal | None:
        """A service principal by display name or appId."""
        for prop in ("displayName", "appId"):
            url = (
                f"{self._root}/servicePrincipals?$filter={prop} eq {odata_quote(name)}"
                "&$select=id,appId,displayName,appRoles"
            )
            async for page in self._pages(url, f"find service principal {name!r}"):
                if page:
                    return _service_principal(page[0])
        return None

    async def service_principal_by_id(self, object_id: str) -> ServicePrincipal | None:
        """None when it is gone (an assignment can outlive its principal's deletion briefly)."""
        request = self._get(
            f"{self._root}/servicePrincipals/{segment(object_id)}?$select=id,appId,displayName"
        )
        try:
            body = await self._send_for_json(request)
        except APIError as err:
            if status_of(err) == 404:
                return None
            with graph_call(f"read service principal {object_id}"):
                raise
        return _service_principal(body)

    async def assignments_to(self, resource_id: str) -> AsyncIterator[list[Assignment]]:
        async for page in self._pages(
            f"{self._root}/servicePrincipals/{segment(resource_id)}/appRoleAssignedTo?$top={PAGE}",
            f"list app-role assignments of {resource_id}",
        ):
            yield [
                Assignment(
                    id=a["id"],
                    app_role_id=a.get("appRoleId") or "",
                    principal_id=a.get("principalId") or "",
                    principal_type=a.get("principalType") or "",
                    principal_name=a.get("principalDisplayName") or "",
                )
                for a in page
            ]

    async def service_principal_sign_ins(self, app_id: str) -> datetime | None:
        """A workload's last sign-in: Graph reports it only on the beta endpoint
        `reports/servicePrincipalSignInActivities` (v1.0 has no such property)."""
        root = self._root
        beta = root[: -len("/v1.0")] + "/beta" if root.endswith("/v1.0") else root
        url = f"{beta}/reports/servicePrincipalSignInActivities?$filter=appId eq {odata_quote(app_id)}"
        with graph_call(f"read sign-in activity of app {app_id}"):
            page = await self._send_for_json(self._get(url))
        rows = page.get("value") or []
        return last_sign_in(rows[0].get("lastSignInActivity")) if rows else None

    async def user_id_of(self, employee_id: str) -> str | None:
        found = await self._user_by_employee_id(employee_id, [])
        return found["id"] if found else None

    async def manager_employee_id(self, object_id: str) -> str | None:
        """The employee id of a user's manager; None when there is none (or it has no id)."""
        request = self._get(
            f"{self._root}/users/{segment(object_id)}/manager?$select=id,employeeId"
        )
        try:
            body = await self._send_for_json(request)
        except APIError as err:
            if status_of(err) == 404:
                return None
            with graph_call(f"read the manager of {object_id}"):
                raise
        return body.get("employeeId") or None

    # ---- removals ----------------------------------------------------------------------------------

    async def remove_memberships(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Remove each (group id, user id) membership by $batch; "changed", "unchanged" (not a
        member: absent either way) or a failure's message, per pair."""
        outcomes: dict[tuple[str, str], str] = {}
        for chunk in chunks(pairs, BATCH_LIMIT):
            requests = [
                {
                    "id": str(i),
                    "method": "DELETE",
                    "url": f"/groups/{segment(g)}/members/{segment(u)}/$ref",
                }
                for i, (g, u) in enumerate(chunk)
            ]
            answers = await self._batch(requests, "remove reviewed group memberships")
            failed = []
            for i, pair in enumerate(chunk):
                answer = answers.get(str(i), {"status": 0})
                outcome = self._membership_outcome(answer, present=False)
                if outcome == "failed":
                    failed.append(answer)
                outcomes[pair] = outcome
            throttled = [a for a in failed if int(a.get("status", 0)) in (429, 503, 504)]
            if throttled:
                # Retried whole by Temporal; pairs already removed answer 404 ("unchanged").
                raise sub_response_error("remove reviewed group memberships", throttled)
        return outcomes

    async def delete_assignment(self, resource_id: str, assignment_id: str) -> bool:
        """Delete an app-role assignment; False when it was already gone."""
        requests = [
            {
                "id": "0",
                "method": "DELETE",
                "url": f"/servicePrincipals/{segment(resource_id)}/appRoleAssignedTo/"
                f"{segment(assignment_id)}",
            }
        ]
        answer = (await self._batch(requests, "remove an app-role assignment")).get("0", {})
        status = int(answer.get("status", 0))
        if status in (200, 204):
            return True
        if status == 404:
            return False
        raise sub_response_error("remove an app-role assignment", [answer])


def _user(u: dict[str, Any]) -> GraphUser:
    return GraphUser(
        id=u["id"],
        employee_id=u.get("employeeId") or None,
        upn=u.get("userPrincipalName") or "",
        display_name=u.get("displayName") or "",
        department=u.get("department") or "",
        employee_type=u.get("employeeType") or "",
        user_type=u.get("userType") or "Member",
        last_sign_in=last_sign_in(u.get("signInActivity")),
    )


def _service_principal(sp: dict[str, Any]) -> ServicePrincipal:
    roles = {r["id"]: r.get("value") or "" for r in sp.get("appRoles") or [] if r.get("id")}
    return ServicePrincipal(
        id=sp["id"],
        app_id=sp.get("appId") or "",
        display_name=sp.get("displayName") or "",
        roles=roles,
    )
