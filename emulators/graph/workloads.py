"""Workload identities for access reviews: service principals and their app roles, app-role
assignments (granted to a resource, and held by a principal), owners of groups and service
principals, sign-in activity, and the beta report Graph keeps for service principals' sign-ins.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from emulators.graph import query
from emulators.graph.errors import GraphError, bad_request, not_found, now_iso
from emulators.graph.store import Directory
from emulators.graph.wire import Call, Reply

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
SP_TYPE = "#microsoft.graph.servicePrincipal"
# Graph's "default access" role: assignable whatever roles the resource declares.
DEFAULT_APP_ROLE = "00000000-0000-0000-0000-000000000000"
MEMBER_TYPES = frozenset({"User", "Application"})
PRINCIPAL_TYPES = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}

# A servicePrincipal as answered (Graph returns every property unless $select narrows it).
SP_PROPERTIES = (
    "id",
    "deletedDateTime",
    "accountEnabled",
    "alternativeNames",
    "appDescription",
    "appDisplayName",
    "appId",
    "appOwnerOrganizationId",
    "appRoleAssignmentRequired",
    "appRoles",
    "description",
    "displayName",
    "homepage",
    "keyCredentials",
    "notes",
    "oauth2PermissionScopes",
    "passwordCredentials",
    "preferredSingleSignOnMode",
    "replyUrls",
    "servicePrincipalNames",
    "servicePrincipalType",
    "tags",
)
# Accepted on POST. appDisplayName too: there are no application objects here to take it from.
SP_WRITABLE = frozenset(
    {
        "accountEnabled",
        "alternativeNames",
        "appDescription",
        "appDisplayName",
        "appId",
        "appRoleAssignmentRequired",
        "appRoles",
        "description",
        "displayName",
        "homepage",
        "notes",
        "preferredSingleSignOnMode",
        "replyUrls",
        "servicePrincipalNames",
        "servicePrincipalType",
        "tags",
    }
)
SP_FILTERABLE = ("appId", "displayName", "accountEnabled", "servicePrincipalType")
ASSIGNMENT_FILTERABLE = ("principalId", "resourceId", "appRoleId", "principalType")
ASSIGNMENT_REQUIRED = ("principalId", "resourceId", "appRoleId")

SIGN_IN_FIELDS = (
    "lastSignInDateTime",
    "lastSignInRequestId",
    "lastNonInteractiveSignInDateTime",
    "lastNonInteractiveSignInRequestId",
    "lastSuccessfulSignInDateTime",
    "lastSuccessfulSignInRequestId",
)
# The four flows of beta's servicePrincipalSignInActivity, each a signInActivity.
SP_FLOWS = (
    "applicationAuthenticationClientSignInActivity",
    "applicationAuthenticationResourceSignInActivity",
    "delegatedClientSignInActivity",
    "delegatedResourceSignInActivity",
)
# A list of users that selects signInActivity comes in pages of at most 120 (documented).
SIGN_IN_PAGE_CAP = 120

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ALTERNATE_KEY = re.compile(r"^/servicePrincipals\(appId='((?:[^']|'')*)'\)(/.*)?$", re.IGNORECASE)

Handler = Callable[..., Reply]
RenderUser = Callable[[dict[str, Any], list[str] | None], dict[str, Any]]


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and _GUID.match(value) is not None


def _iso_time(value: Any, prop: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"Invalid value for '{prop}': expected an ISO 8601 date/time.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid date/time value '{value}' for '{prop}'.") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty_activity() -> dict[str, Any]:
    return dict.fromkeys(SIGN_IN_FIELDS)


def signin_activity(raw: Any, where: str = "signInActivity") -> dict[str, Any] | None:
    """A signInActivity from a control body; None when it carries no date (never signed in).

    A date without its request id gets a fresh one, as every real sign-in has one.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request(f"'{where}' must be an object or null.")
    unknown = sorted(set(raw) - set(SIGN_IN_FIELDS))
    if unknown:
        raise bad_request(f"Unknown sign-in activity properties in '{where}': {unknown}.")
    out = empty_activity()
    for date_prop in SIGN_IN_FIELDS[::2]:
        request_prop = date_prop.replace("DateTime", "RequestId")
        if raw.get(date_prop) is not None:
            out[date_prop] = _iso_time(raw[date_prop], date_prop)
            out[request_prop] = str(raw.get(request_prop) or uuid.uuid4())
        elif raw.get(request_prop) is not None:
            raise bad_request(f"'{request_prop}' is given without '{date_prop}'.")
    return out if any(out[p] for p in SIGN_IN_FIELDS[::2]) else None


def sp_signin_activity(raw: Any) -> dict[str, Any] | None:
    """A service principal's activity: the last sign-in overall plus the four flows.

    Flat signInActivity fields set the overall last sign-in; with no flow given it is taken to be
    an app-only sign-in as a client (client credentials, the usual workload). With flows only,
    the overall last sign-in is the latest of them, as the report computes it.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request("The sign-in activity must be an object or null.")
    unknown = sorted(set(raw) - set(SIGN_IN_FIELDS) - set(SP_FLOWS))
    if unknown:
        raise bad_request(f"Unknown service principal sign-in activity properties: {unknown}.")
    flows = {f: signin_activity(raw.get(f), f) for f in SP_FLOWS}
    overall = signin_activity({k: v for k, v in raw.items() if k in SIGN_IN_FIELDS})
    if overall is None:
        dated = [a for a in flows.values() if a and a["lastSignInDateTime"]]
        overall = max(dated, key=lambda a: a["lastSignInDateTime"], default=None)
    elif not any(flows.values()):
        flows["applicationAuthenticationClientSignInActivity"] = dict(overall)
    if overall is None:
        return None
    return {"lastSignInActivity": overall, **flows}


def _report_id(app_id: str) -> str:
    # Graph's report ids are the appId, base64-encoded.
    return base64.b64encode(app_id.encode()).decode()


def report_entry(sp: dict[str, Any], activity: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": _report_id(sp["appId"]), "appId": sp["appId"]}
    for flow in SP_FLOWS:
        entry[flow] = dict(activity.get(flow) or empty_activity())
    entry["lastSignInActivity"] = dict(activity["lastSignInActivity"])
    return entry


def _assignment_id(principal_id: str) -> str:
    # Graph's ids start with the principal's GUID bytes, base64url-encoded without padding.
    try:
        head = uuid.UUID(principal_id).bytes_le
    except ValueError:
        head = os.urandom(16)
    return base64.urlsafe_b64encode(head + os.urandom(16)).decode().rstrip("=")


def _body(call: Call) -> dict[str, Any]:
    return call.body if isinstance(call.body, dict) else {}


def ref_target(body: Any) -> str:
    """The object id at the end of an @odata.id, whatever host or collection it names."""
    ref = body.get("@odata.id") if isinstance(body, dict) else None
    if not isinstance(ref, str) or not ref.strip("/"):
        raise bad_request("Invalid request body: '@odata.id' is required.", "BadRequest")
    return ref.rstrip("/").rsplit("/", 1)[-1]


class Workloads:
    def __init__(self, directory: Directory, render_user: RenderUser) -> None:
        self.dir = directory
        self._render_user = render_user

    def routes(self) -> list[tuple[str, str, Handler]]:
        sp = r"/servicePrincipals/([^/]+)"
        assigned_to = sp + r"/appRoleAssignedTo"
        out: list[tuple[str, str, Handler]] = [
            ("GET", r"/servicePrincipals", self.list_sps),
            ("POST", r"/servicePrincipals", self.create_sp),
            ("GET", sp, self.get_sp),
            ("DELETE", sp, self.delete_sp),
            ("GET", assigned_to, self.list_assigned_to),
            ("POST", assigned_to, self.grant_assigned_to),
            ("GET", assigned_to + r"/([^/]+)", self.get_assigned_to),
            ("DELETE", assigned_to + r"/([^/]+)", self.delete_assigned_to),
        ]
        for kind, prefix in (
            ("user", r"/users/([^/]+)"),
            ("group", r"/groups/([^/]+)"),
            ("servicePrincipal", sp),
        ):
            held = prefix + r"/appRoleAssignments"
            out += [
                ("GET", held, partial(self.list_held, kind)),
                ("POST", held, partial(self.grant_held, kind)),
                ("GET", held + r"/([^/]+)", partial(self.get_held, kind)),
                ("DELETE", held + r"/([^/]+)", partial(self.delete_held, kind)),
            ]
        for kind, prefix in (("group", r"/groups/([^/]+)"), ("servicePrincipal", sp)):
            owners = prefix + r"/owners"
            out += [
                ("GET", owners, partial(self.list_owners, kind)),
                ("POST", owners + r"/\$ref", partial(self.add_owner, kind)),
                ("DELETE", owners + r"/([^/]+)/\$ref", partial(self.remove_owner, kind)),
            ]
        return out

    def rewrite(self, path: str) -> str:
        """`/servicePrincipals(appId='...')/...` -> `/servicePrincipals/{id}/...` (alternate key)."""
        match = _ALTERNATE_KEY.match(path)
        if match is None:
            return path
        app_id = match[1].replace("''", "'")
        sp = self.dir.sp_by_app_id(app_id)
        if sp is None:
            raise not_found(app_id)
        return f"/servicePrincipals/{sp['id']}{match[2] or ''}"

    # ---- lookups -------------------------------------------------------------------------------

    def _sp(self, key: str) -> dict[str, Any]:
        sp = self.dir.service_principals.get(key)
        if sp is None:
            raise not_found(key)
        return sp

    def _holder(self, kind: str, key: str) -> dict[str, Any]:
        if kind == "user":
            found = self.dir.find_user(key)
        elif kind == "group":
            found = self.dir.groups.get(key)
        else:
            found = self.dir.service_principals.get(key)
        if found is None:
            raise not_found(key)
        return found

    def user_or_sp(self, key: str, relation: str = "owners") -> tuple[str, dict[str, Any]]:
        """A member or owner to add: a user (id or UPN) or a service principal."""
        user = self.dir.find_user(key)
        if user is not None:
            return "user", user
        sp = self.dir.service_principals.get(key)
        if sp is not None:
            return "servicePrincipal", sp
        if key in self.dir.groups:
            raise bad_request(
                f"Object '{key}' is a group: Graph's owners are users or service principals."
                if relation == "owners"
                # Graph nests groups; the emulator does not model that (memberOf stays direct).
                else f"Object '{key}' is a group: the emulator does not model nested groups."
            )
        raise not_found(key)

    # ---- rendering -----------------------------------------------------------------------------

    @staticmethod
    def _sp_select(call: Call) -> list[str] | None:
        select = query.selection(call)
        for prop in select or ():
            if prop not in SP_PROPERTIES:
                # What Graph answers, e.g. for signInActivity (a user property only in v1.0).
                raise bad_request(
                    f"Could not find a property named '{prop}' on type "
                    "'microsoft.graph.servicePrincipal'.",
                    "BadRequest",
                )
        return select

    @staticmethod
    def render_sp(sp: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        return {p: sp.get(p) for p in (select or SP_PROPERTIES)}

    def render_object(self, object_id: str, select: list[str] | None) -> dict[str, Any]:
        """A directoryObject in a members or owners list, typed as Graph types it."""
        found = self.dir.find_object(object_id)
        if found is None:  # cannot happen: deletions cascade
            return {"@odata.type": "#microsoft.graph.directoryObject", "id": object_id}
        kind, obj = found
        if kind == "user":
            return {"@odata.type": USER_TYPE, **self._render_user(obj, select)}
        if kind == "servicePrincipal":
            body = {p: obj.get(p) for p in select} if select else self.render_sp(obj, None)
            return {"@odata.type": SP_TYPE, **body}
        body = {p: obj.get(p) for p in select} if select else dict(obj)
        return {"@odata.type": GROUP_TYPE, **body}

    def _display_name(self, object_id: str) -> str | None:
        found = self.dir.find_object(object_id)
        return found[1].get("displayName") if found else None

    def render_assignment(self, a: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        full = {
            "id": a["id"],
            "deletedDateTime": None,
            "appRoleId": a["appRoleId"],
            "createdDateTime": a["createdDateTime"],
            # Names are read live, so a renamed principal or resource shows its current name.
            "principalDisplayName": self._display_name(a["principalId"]),
            "principalId": a["principalId"],
            "principalType": a["principalType"],
            "resourceDisplayName": self._display_name(a["resourceId"]),
            "resourceId": a["resourceId"],
        }
        return {p: full.get(p) for p in select} if select else full

    @staticmethod
    def _entity(call: Call, context: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.context": f"{call.service_root}/$metadata#{context}", **body}

    # ---- service principals --------------------------------------------------------------------

    def list_sps(self, call: Call) -> Reply:
        sps: list[dict[str, Any]] = list(self.dir.service_principals.values())
        expression = call.query.get("filter")
        if expression:
            clauses = query.parse_filter(expression, SP_FILTERABLE, "ServicePrincipal")
            for prop, value in clauses:
                if isinstance(value, str) and self.dir.sp_index.covers(prop):
                    ids = self.dir.sp_index.lookup(prop, value)
                    sps = [self.dir.service_principals[i] for i in ids]
                    break
            sps = [s for s in sps if query.matches(s, clauses)]
        select = self._sp_select(call)
        body = query.collection(call, sps, lambda s: self.render_sp(s, select), "servicePrincipals")
        return Reply(200, body)

    def create_sp(self, call: Call) -> Reply:
        sp = self.new_sp(_body(call))
        return Reply(201, self._entity(call, "servicePrincipals/$entity", self.render_sp(sp, None)))

    def new_sp(self, body: dict[str, Any]) -> dict[str, Any]:
        for prop in body:
            if not prop.startswith("@") and prop not in SP_WRITABLE:
                raise bad_request(
                    f"Property '{prop}' does not exist as a declared property or extension "
                    "property.",
                    "BadRequest",
                )
        app_id = body.get("appId")
        if not isinstance(app_id, str) or not app_id:
            raise bad_request(
                "A value is required for property 'appId' of resource 'ServicePrincipal'."
            )
        if self.dir.sp_by_app_id(app_id) is not None:
            raise GraphError(
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                "The service principal cannot be created, updated, or restored because the "
                f"service principal name {app_id} is already in use.",
            )
        name = body.get("displayName") or body.get("appDisplayName") or app_id
        sp: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "deletedDateTime": None,
            "accountEnabled": bool(body.get("accountEnabled", True)),
            "alternativeNames": list(body.get("alternativeNames") or []),
            "appDescription": body.get("appDescription"),
            "appDisplayName": body.get("appDisplayName") or name,
            "appId": app_id,
            "appOwnerOrganizationId": None,
            "appRoleAssignmentRequired": bool(body.get("appRoleAssignmentRequired", False)),
            "appRoles": self._app_roles(body.get("appRoles")),
            "description": body.get("description"),
            "displayName": name,
            "homepage": body.get("homepage"),
            "keyCredentials": [],
            "notes": body.get("notes"),
            "oauth2PermissionScopes": [],
            "passwordCredentials": [],
            "preferredSingleSignOnMode": body.get("preferredSingleSignOnMode"),
            "replyUrls": list(body.get("replyUrls") or []),
            "servicePrincipalNames": list(body.get("servicePrincipalNames") or [app_id]),
            "servicePrincipalType": body.get("servicePrincipalType") or "Application",
            "tags": list(body.get("tags") or []),
        }
        self.dir.put_sp(sp)
        return sp

    @staticmethod
    def _app_roles(raw: Any) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
            raise bad_request(
                "Invalid value specified for property 'appRoles' of resource 'ServicePrincipal'."
            )
        roles: list[dict[str, Any]] = []
        ids: set[str] = set()
        values: set[str] = set()
        for r in raw:
            role_id = r.get("id")
            if not is_guid(role_id):
                raise bad_request("An app role needs an 'id' that is a GUID.")
            role_id = role_id.lower()
            types = r.get("allowedMemberTypes")
            if not isinstance(types, list) or not types or not set(types) <= MEMBER_TYPES:
                raise bad_request(
                    f"App role with identifier '{role_id}' must have at least one value "
                    "specified for 'allowedMemberTypes'."
                    if not types
                    else f"Invalid 'allowedMemberTypes' on app role '{role_id}': {types!r}; "
                    "expected 'User' and/or 'Application'."
                )
            value = r.get("value")
            if role_id in ids or (value is not None and value in values):
                raise bad_request(
                    f"App role '{role_id}' repeats the id or value of another app role."
                )
            ids.add(role_id)
            if value is not None:
                values.add(value)
            roles.append(
                {
                    "allowedMemberTypes": list(types),
                    "description": r.get("description"),
                    "displayName": r.get("displayName"),
                    "id": role_id,
                    "isEnabled": bool(r.get("isEnabled", True)),
                    "origin": "Application",
                    "value": value,
                }
            )
        return roles

    def get_sp(self, call: Call, key: str) -> Reply:
        body = self.render_sp(self._sp(key), self._sp_select(call))
        return Reply(200, self._entity(call, "servicePrincipals/$entity", body))

    def delete_sp(self, call: Call, key: str) -> Reply:
        self.dir.delete_sp(self._sp(key)["id"])
        return Reply(204)

    # ---- app role assignments ------------------------------------------------------------------

    def _assignment_page(self, call: Call, ids: list[str], context: str) -> dict[str, Any]:
        items = [self.dir.assignments[i] for i in ids]
        expression = call.query.get("filter")
        if expression:
            clauses = query.parse_filter(expression, ASSIGNMENT_FILTERABLE, "AppRoleAssignment")
            items = [a for a in items if query.matches(a, clauses)]
        select = query.selection(call)
        return query.collection(call, items, lambda a: self.render_assignment(a, select), context)

    def grant(
        self, body: dict[str, Any], pinned: str | None = None, pinned_id: str | None = None
    ) -> dict[str, Any]:
        """Create an assignment from a request body, validated as Graph validates it.

        `pinned` names the body property the request URL fixes ('principalId' or 'resourceId').
        """
        for prop in ASSIGNMENT_REQUIRED:
            value = body.get(prop)
            if value in (None, ""):
                raise bad_request(
                    f"A value is required for property '{prop}' of resource 'AppRoleAssignment'."
                )
            if not is_guid(value):
                raise bad_request(
                    f"Invalid value specified for property '{prop}' of resource "
                    "'AppRoleAssignment'."
                )
        principal_id, resource_id = body["principalId"].lower(), body["resourceId"].lower()
        app_role_id = body["appRoleId"].lower()
        if pinned is not None and body[pinned].lower() != pinned_id:
            raise bad_request(
                f"The '{pinned}' of the assignment must be the id of the object in the request "
                f"URL ('{pinned_id}')."
            )
        found = self.dir.find_object(principal_id)
        if found is None:
            raise not_found(principal_id)
        kind, _ = found
        resource = self.dir.service_principals.get(resource_id)
        if resource is None:
            raise not_found(resource_id)
        if app_role_id != DEFAULT_APP_ROLE:
            role = next((r for r in resource["appRoles"] if r["id"] == app_role_id), None)
            if role is None:
                raise bad_request(
                    f"Permission being assigned was not found on application '{resource['appId']}'."
                )
            if not role["isEnabled"]:
                raise bad_request(f"Permission being assigned ('{app_role_id}') is disabled.")
            needed = "Application" if kind == "servicePrincipal" else "User"
            if needed not in role["allowedMemberTypes"]:
                raise bad_request(
                    f"Permission being assigned ('{app_role_id}') cannot be assigned to a "
                    f"{PRINCIPAL_TYPES[kind]}: its allowedMemberTypes lack '{needed}'."
                )
        if self.dir.assignment_for(principal_id, resource_id, app_role_id) is not None:
            raise bad_request("Permission being assigned already exists on the object.")
        assignment = {
            "id": _assignment_id(principal_id),
            "appRoleId": app_role_id,
            "createdDateTime": now_iso(),
            "principalId": principal_id,
            "principalType": PRINCIPAL_TYPES[kind],
            "resourceId": resource_id,
        }
        self.dir.add_assignment(assignment)
        return assignment

    def list_assigned_to(self, call: Call, key: str) -> Reply:
        sp = self._sp(key)
        ids = list(self.dir.assigned_to.get(sp["id"], ()))
        context = f"servicePrincipals('{sp['id']}')/appRoleAssignedTo"
        return Reply(200, self._assignment_page(call, ids, context))

    def grant_assigned_to(self, call: Call, key: str) -> Reply:
        sp = self._sp(key)
        assignment = self.grant(_body(call), "resourceId", sp["id"])
        context = f"servicePrincipals('{sp['id']}')/appRoleAssignedTo/$entity"
        return Reply(201, self._entity(call, context, self.render_assignment(assignment, None)))

    def _assigned_to(self, key: str, assignment_id: str) -> dict[str, Any]:
        sp = self._sp(key)
        if assignment_id not in self.dir.assigned_to.get(sp["id"], ()):
            raise not_found(assignment_id)
        return self.dir.assignments[assignment_id]

    def get_assigned_to(self, call: Call, key: str, assignment_id: str) -> Reply:
        a = self._assigned_to(key, assignment_id)
        context = f"servicePrincipals('{a['resourceId']}')/appRoleAssignedTo/$entity"
        body = self.render_assignment(a, query.selection(call))
        return Reply(200, self._entity(call, context, body))

    def delete_assigned_to(self, call: Call, key: str, assignment_id: str) -> Reply:
        self.dir.delete_assignment(self._assigned_to(key, assignment_id)["id"])
        return Reply(204)

    def held_ids(self, kind: str, holder_id: str) -> list[str]:
        ids = list(self.dir.assignments_of.get(holder_id, ()))
        if kind == "user":
            # Documented: a user's list also has the roles of groups it is a direct member of.
            for group_id in self.dir.member_of.get(holder_id, ()):
                ids += self.dir.assignments_of.get(group_id, ())
        return ids

    def _collection_name(self, kind: str) -> str:
        return {"user": "users", "group": "groups", "servicePrincipal": "servicePrincipals"}[kind]

    def list_held(self, kind: str, call: Call, key: str) -> Reply:
        holder = self._holder(kind, key)
        context = f"{self._collection_name(kind)}('{holder['id']}')/appRoleAssignments"
        return Reply(200, self._assignment_page(call, self.held_ids(kind, holder["id"]), context))

    def grant_held(self, kind: str, call: Call, key: str) -> Reply:
        holder = self._holder(kind, key)
        assignment = self.grant(_body(call), "principalId", holder["id"])
        context = f"{self._collection_name(kind)}('{holder['id']}')/appRoleAssignments/$entity"
        return Reply(201, self._entity(call, context, self.render_assignment(assignment, None)))

    def _held(self, kind: str, key: str, assignment_id: str, direct: bool) -> dict[str, Any]:
        holder = self._holder(kind, key)
        ids = (
            self.dir.assignments_of.get(holder["id"], {})
            if direct
            else self.held_ids(kind, holder["id"])
        )
        if assignment_id not in ids:
            raise not_found(assignment_id)
        return self.dir.assignments[assignment_id]

    def get_held(self, kind: str, call: Call, key: str, assignment_id: str) -> Reply:
        a = self._held(kind, key, assignment_id, direct=False)
        context = f"{self._collection_name(kind)}('{key}')/appRoleAssignments/$entity"
        body = self.render_assignment(a, query.selection(call))
        return Reply(200, self._entity(call, context, body))

    def delete_held(self, kind: str, call: Call, key: str, assignment_id: str) -> Reply:
        # Only the holder's own assignments: a group's is removed through the group.
        self.dir.delete_assignment(self._held(kind, key, assignment_id, direct=True)["id"])
        return Reply(204)

    # ---- owners --------------------------------------------------------------------------------

    def list_owners(self, kind: str, call: Call, key: str) -> Reply:
        obj = self._holder(kind, key)
        select = query.selection(call)
        body = query.collection(
            call,
            list(self.dir.owners.get(obj["id"], ())),
            lambda owner_id: self.render_object(owner_id, select),
            "directoryObjects",
        )
        return Reply(200, body)

    def add_owner(self, kind: str, call: Call, key: str) -> Reply:
        obj = self._holder(kind, key)
        _, owner = self.user_or_sp(ref_target(call.body))
        if owner["id"] in self.dir.owners.get(obj["id"], ()):
            raise bad_request(
                "One or more added object references already exist for the following modified "
                "properties: 'owners'."
            )
        self.dir.add_owner(obj["id"], owner["id"])
        return Reply(204)

    def remove_owner(self, kind: str, call: Call, key: str, owner_id: str) -> Reply:
        obj = self._holder(kind, key)
        if owner_id not in self.dir.owners.get(obj["id"], ()):
            raise not_found(owner_id)
        self.dir.remove_owner(obj["id"], owner_id)
        return Reply(204)

    # ---- sign-in activity (control surface) ----------------------------------------------------

    def _signer(self, key: str) -> tuple[str, dict[str, Any]]:
        """A user or service principal by object id; a user by UPN too."""
        found = self.dir.find_object(key)
        if found is None and (user := self.dir.find_user(key)) is not None:
            found = ("user", user)
        if found is None:
            raise not_found(key)
        return found

    def set_sign_in(self, key: str, raw: Any) -> dict[str, Any]:
        kind, obj = self._signer(key)
        if kind == "group":
            raise bad_request("Groups do not sign in: give a user's or service principal's id.")
        activity = signin_activity(raw) if kind == "user" else sp_signin_activity(raw)
        self.dir.set_sign_in(obj["id"], activity)
        return self.describe_sign_in(obj["id"])

    def describe_sign_in(self, key: str) -> dict[str, Any]:
        kind, obj = self._signer(key)
        if kind == "group":
            raise not_found(key)
        activity = self.dir.sign_ins.get(obj["id"])
        if kind == "user":
            return {"objectId": obj["id"], "kind": kind, "signInActivity": activity}
        entry = report_entry(obj, activity) if activity else None
        return {"objectId": obj["id"], "kind": kind, "servicePrincipalSignInActivity": entry}


class BetaReports:
    """The only /beta collection served: reports/servicePrincipalSignInActivities.

    v1.0 has no sign-in activity for service principals; this report is where tenants read it.
    Like the real report it lists only service principals that have signed in.
    """

    _ROUTE = re.compile(r"^/reports/servicePrincipalSignInActivities(?:/([^/]+))?$", re.IGNORECASE)
    CONTEXT = "reports/servicePrincipalSignInActivities"

    def __init__(self, directory: Directory) -> None:
        self.dir = directory

    def dispatch(self, call: Call) -> Reply:
        path = call.path.rstrip("/") or "/"
        match = self._ROUTE.match(path)
        if match is None:
            segment = [s for s in path.split("/") if s][:1] or [path]
            raise bad_request(f"Resource not found for the segment '{segment[0]}'.", "BadRequest")
        if call.method != "GET":
            raise GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        if match[1] is not None:
            return self._get(call, match[1])
        return self._list(call)

    def _entries(self, sps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for sp in sps:
            activity = self.dir.sign_ins.get(sp["id"])
            if activity is not None:
                out.append(report_entry(sp, activity))
        return out

    def _list(self, call: Call) -> Reply:
        sps = list(self.dir.service_principals.values())
        expression = call.query.get("filter")
        clauses: list[query.Clause] = []
        if expression:
            clauses = query.parse_filter(
                expression, ("appId", "id"), "servicePrincipalSignInActivity"
            )
            for prop, value in clauses:
                if prop == "appId" and isinstance(value, str):
                    found = self.dir.sp_by_app_id(value)
                    sps = [found] if found else []
                    break
        entries = [e for e in self._entries(sps) if query.matches(e, clauses)]
        return Reply(200, query.collection(call, entries, dict, self.CONTEXT))

    def _get(self, call: Call, report_id: str) -> Reply:
        try:
            app_id = base64.b64decode(report_id, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise not_found(report_id) from None
        sp = self.dir.sp_by_app_id(app_id)
        activity = self.dir.sign_ins.get(sp["id"]) if sp else None
        if sp is None or activity is None:
            raise not_found(report_id)
        body = {
            "@odata.context": f"{call.service_root}/$metadata#{self.CONTEXT}/$entity",
            **report_entry(sp, activity),
        }
        return Reply(200, body)
