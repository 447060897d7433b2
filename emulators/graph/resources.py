"""Graph v1.0 resources: users, manager, groups and members, TAPs, sendMail, sign-in sessions.

Service principals, app-role assignments and owners live in `workloads`, directory roles and PIM
in `roles`; both are routed from here.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from emulators.graph import query
from emulators.graph.errors import GraphError, bad_request, not_found, now_iso
from emulators.graph.roles import RoleManagement
from emulators.graph.store import USER_DEFAULT_PROPERTIES, USER_PROPERTIES, Directory
from emulators.graph.wire import Call, Reply
from emulators.graph.workloads import SIGN_IN_PAGE_CAP, Workloads, ref_target

USER_FILTERABLE = (
    "employeeId",
    "userPrincipalName",
    "mailNickname",
    "displayName",
    "mail",
    "accountEnabled",
)
GROUP_FILTERABLE = ("displayName", "mailNickname")
USER_REQUIRED = (
    "accountEnabled",
    "displayName",
    "mailNickname",
    "userPrincipalName",
    "passwordProfile",
)
GROUP_REQUIRED = ("displayName", "mailNickname", "mailEnabled", "securityEnabled")
# Write-only properties: accepted, never stored or answered.
USER_WRITE_ONLY = frozenset({"passwordProfile", "passwordPolicies"})
TAP_MIN_MINUTES, TAP_MAX_MINUTES, TAP_DEFAULT_MINUTES = 10, 43200, 60
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid date/time value '{value}'.", "BadRequest") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GraphResources:
    def __init__(self, directory: Directory) -> None:
        self.dir = directory
        self.workloads = Workloads(directory, self._render_user)
        self.roles = RoleManagement(directory)
        r = self._routes = []
        add = r.append
        add(("GET", r"/users", self.list_users))
        add(("POST", r"/users", self.create_user))
        add(("GET", r"/users/([^/]+)", self.get_user))
        add(("PATCH", r"/users/([^/]+)", self.update_user))
        add(("DELETE", r"/users/([^/]+)", self.delete_user))
        add(("GET", r"/users/([^/]+)/manager", self.get_manager))
        add(("GET", r"/users/([^/]+)/manager/\$ref", self.get_manager))
        add(("PUT", r"/users/([^/]+)/manager/\$ref", self.put_manager))
        add(("DELETE", r"/users/([^/]+)/manager/\$ref", self.delete_manager))
        add(("GET", r"/users/([^/]+)/memberOf", self.member_of))
        add(("POST", r"/users/([^/]+)/revokeSignInSessions", self.revoke_sessions))
        add(("POST", r"/users/([^/]+)/sendMail", self.send_mail))
        tap = r"/users/([^/]+)/authentication/temporaryAccessPassMethods"
        add(("GET", tap, self.list_taps))
        add(("POST", tap, self.create_tap))
        add(("GET", tap + r"/([^/]+)", self.get_tap))
        add(("DELETE", tap + r"/([^/]+)", self.delete_tap))
        add(("GET", r"/groups", self.list_groups))
        add(("POST", r"/groups", self.create_group))
        add(("GET", r"/groups/([^/]+)", self.get_group))
        add(("DELETE", r"/groups/([^/]+)", self.delete_group))
        add(("GET", r"/groups/([^/]+)/members", self.list_members))
        add(("POST", r"/groups/([^/]+)/members/\$ref", self.add_member))
        add(("DELETE", r"/groups/([^/]+)/members/([^/]+)/\$ref", self.remove_member))
        r += self.workloads.routes()
        r += self.roles.routes()
        # Graph treats path segments case-insensitively (memberOf == memberof).
        self._compiled = [
            (method, re.compile(pattern + "$", re.IGNORECASE), handler)
            for method, pattern, handler in r
        ]

    def dispatch(self, call: Call) -> Reply:
        path = self.workloads.rewrite(call.path.rstrip("/") or "/")
        path_matched = False
        for method, pattern, handler in self._compiled:
            match = pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if method == call.method:
                return handler(call, *match.groups())
        if path_matched:
            raise GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        segments = [s for s in path.split("/") if s]
        known = ("users", "groups", "servicePrincipals")
        unknown = segments[0] if segments and segments[0] not in known else path
        raise bad_request(
            f"Resource not found for the segment '{unknown.rsplit('/', 1)[-1]}'.", "BadRequest"
        )

    # ---- rendering -----------------------------------------------------------------------------

    def _render_user(self, user: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        props = select or USER_DEFAULT_PROPERTIES
        out = {p: user.get(p, [] if p == "businessPhones" else None) for p in props}
        if "signInActivity" in out:
            # Only on $select, as in Graph; null for a user who never signed in.
            activity = self.dir.sign_ins.get(user["id"])
            out["signInActivity"] = dict(activity) if activity else None
        return out

    def _render_group(self, group: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        return {p: group.get(p) for p in select} if select else dict(group)

    def _entity(self, call: Call, context: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.context": f"{call.service_root}/$metadata#{context}", **body}

    # ---- lookups -------------------------------------------------------------------------------

    def _user(self, key: str) -> dict[str, Any]:
        user = self.dir.find_user(key)
        if user is None:
            raise not_found(key)
        return user

    def _group(self, key: str) -> dict[str, Any]:
        group = self.dir.groups.get(key)
        if group is None:
            raise not_found(key)
        return group

    # ---- users ---------------------------------------------------------------------------------

    def list_users(self, call: Call) -> Reply:
        users: list[dict[str, Any]] = list(self.dir.users.values())
        expression = call.query.get("filter")
        if expression:
            clauses = query.parse_filter(expression, USER_FILTERABLE, "User")
            users = self._candidates(clauses, users)
        select = query.selection(call)
        cap = SIGN_IN_PAGE_CAP if select and "signInActivity" in select else None
        body = query.collection(
            call, users, lambda u: self._render_user(u, select), "users", max_page=cap
        )
        return Reply(200, body)

    def _candidates(self, clauses: list[query.Clause], users: list[dict[str, Any]]) -> list:
        # Narrow through an index when a clause allows it; check every clause on what is left.
        for prop, value in clauses:
            if isinstance(value, str) and self.dir.user_index.covers(prop):
                users = [self.dir.users[i] for i in self.dir.user_index.lookup(prop, value)]
                break
        return [u for u in users if query.matches(u, clauses)]

    def _check_properties(self, body: dict[str, Any]) -> None:
        for prop in body:
            if prop.startswith("@") or prop in USER_PROPERTIES or prop in USER_WRITE_ONLY:
                continue
            raise bad_request(
                f"Property '{prop}' does not exist as a declared property or extension property.",
                "BadRequest",
            )
        if "id" in body or "createdDateTime" in body:
            raise bad_request("Property 'id' or 'createdDateTime' is read-only.")

    def _check_upn_free(self, upn: str, own_id: str | None = None) -> None:
        holder = self.dir.user_by_upn(upn)
        if holder is not None and holder["id"] != own_id:
            raise bad_request(
                "Another object with the same value for property userPrincipalName already exists."
            )

    def create_user(self, call: Call) -> Reply:
        body = call.body if isinstance(call.body, dict) else {}
        for prop in USER_REQUIRED:
            if body.get(prop) in (None, ""):
                raise bad_request(f"A value is required for property '{prop}' of resource 'User'.")
        self._check_properties(body)
        password = body["passwordProfile"]
        if not isinstance(password, dict) or not password.get("password"):
            raise bad_request("A value is required for property 'password' of resource 'User'.")
        upn = str(body["userPrincipalName"])
        if "@" not in upn:
            raise bad_request(
                "Invalid value specified for property 'userPrincipalName' of resource 'User'."
            )
        self._check_upn_free(upn)
        user = {k: v for k, v in body.items() if k in USER_PROPERTIES}
        user.update(
            id=str(uuid.uuid4()),
            mail=user.get("mail") or upn,
            userType=user.get("userType") or "Member",  # Graph's default
            createdDateTime=now_iso(),
            signInSessionsValidFromDateTime=now_iso(),
        )
        self.dir.put_user(user)
        return Reply(201, self._entity(call, "users/$entity", self._render_user(user, None)))

    def get_user(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        body = self._render_user(user, query.selection(call))
        return Reply(200, self._entity(call, "users/$entity", body))

    def update_user(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        body = call.body if isinstance(call.body, dict) else {}
        self._check_properties(body)
        if "userPrincipalName" in body:
            self._check_upn_free(str(body["userPrincipalName"]), user["id"])
        updated = dict(user)
        updated.update({k: v for k, v in body.items() if k in USER_PROPERTIES})
        self.dir.put_user(updated, previous=user)
        return Reply(204)

    def delete_user(self, call: Call, key: str) -> Reply:
        self.dir.delete_user(self._user(key)["id"])
        return Reply(204)

    # ---- manager -------------------------------------------------------------------------------

    def get_manager(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        manager_id = self.dir.managers.get(user["id"])
        if manager_id is None:
            raise not_found("manager")
        body = {"@odata.type": USER_TYPE, **self._render_user(self.dir.users[manager_id], None)}
        return Reply(200, self._entity(call, "directoryObjects/$entity", body))

    def put_manager(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        manager = self._user(ref_target(call.body))
        if manager["id"] == user["id"]:
            raise bad_request("A user cannot be their own manager.")
        self.dir.set_manager(user["id"], manager["id"])
        return Reply(204)

    def delete_manager(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        if user["id"] not in self.dir.managers:
            raise not_found("manager")
        self.dir.set_manager(user["id"], None)
        return Reply(204)

    def member_of(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        groups = [self.dir.groups[g] for g in self.dir.member_of.get(user["id"], ())]
        select = query.selection(call)
        body = query.collection(
            call,
            groups,
            lambda g: {"@odata.type": GROUP_TYPE, **self._render_group(g, select)},
            "directoryObjects",
        )
        return Reply(200, body)

    # ---- sessions and mail ---------------------------------------------------------------------

    def revoke_sessions(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        self.dir.put_user({**user, "signInSessionsValidFromDateTime": now_iso()}, previous=user)
        return Reply(200, self._entity(call, "Edm.Boolean", {"value": True}))

    def send_mail(self, call: Call, key: str) -> Reply:
        sender = self.dir.find_user(key)
        if sender is None:
            # Exchange, not the directory, answers for mailboxes, with its own code.
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{key}' is invalid.")
        # Action parameters are case-insensitive in Graph; the SDK sends "Message".
        params = {k.lower(): v for k, v in call.body.items()} if isinstance(call.body, dict) else {}
        message = params.get("message")
        if not isinstance(message, dict):
            raise bad_request("Empty Payload. JSON content expected.", "ErrorInvalidRequest")
        to = [
            r.get("emailAddress", {}).get("address")
            for r in message.get("toRecipients") or []
            if isinstance(r, dict)
        ]
        if not to or not all(isinstance(a, str) and "@" in a for a in to):
            raise bad_request("At least one recipient is not valid.", "ErrorInvalidRecipients")
        body = message.get("body") or {}
        self.dir.append_mail(
            {
                "from": sender["userPrincipalName"],
                "to": to,
                "subject": message.get("subject") or "",
                "content_type": body.get("contentType", "text"),
                "body": body.get("content", ""),
                "time": time.time(),
            }
        )
        return Reply(202)

    # ---- temporary access passes ---------------------------------------------------------------

    def _render_tap(self, tap: dict[str, Any]) -> dict[str, Any]:
        start = _parse_time(tap["startDateTime"])
        end = start + timedelta(minutes=tap["lifetimeInMinutes"])
        now = datetime.now(UTC)
        if start <= now < end:
            reason = "EnabledByPolicy"
        else:
            reason = "NotYetValid" if now < start else "Expired"
        rendered = {k: v for k, v in tap.items() if k != "userId"}
        rendered.update(isUsable=reason == "EnabledByPolicy", methodUsabilityReason=reason)
        return rendered

    def list_taps(self, call: Call, key: str) -> Reply:
        taps = self.dir.user_taps(self._user(key)["id"])
        context = "users('{id}')/authentication/temporaryAccessPassMethods"
        return Reply(200, query.collection(call, taps, self._render_tap, context))

    def get_tap(self, call: Call, key: str, tap_id: str) -> Reply:
        user = self._user(key)
        tap = self.dir.taps.get(tap_id)
        if tap is None or tap["userId"] != user["id"]:
            raise not_found(tap_id)
        return Reply(200, self._render_tap(tap))

    def create_tap(self, call: Call, key: str) -> Reply:
        user = self._user(key)
        body = call.body if isinstance(call.body, dict) else {}
        lifetime = body.get("lifetimeInMinutes", TAP_DEFAULT_MINUTES)
        if not isinstance(lifetime, int) or not TAP_MIN_MINUTES <= lifetime <= TAP_MAX_MINUTES:
            raise bad_request(
                f"lifetimeInMinutes must be between {TAP_MIN_MINUTES} and {TAP_MAX_MINUTES}.",
                "BadRequest",
            )
        raw_start = body.get("startDateTime")
        start = _parse_time(raw_start) if raw_start else datetime.now(UTC)
        tap = {
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
            "id": str(uuid.uuid4()),
            "userId": user["id"],
            "createdDateTime": now_iso(),
            "startDateTime": _iso(start),
            "lifetimeInMinutes": lifetime,
            "isUsableOnce": bool(body.get("isUsableOnce", False)),
        }
        # Graph keeps one pass per user: a new one replaces the old (documented behaviour). The
        # secret is answered once and never stored.
        self.dir.replace_tap(tap)
        secret = "".join(
            secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789")
            for _ in range(8)
        )
        context = "users('{id}')/authentication/temporaryAccessPassMethods/$entity"
        body = self._entity(call, context, {**self._render_tap(tap), "temporaryAccessPass": secret})
        return Reply(201, body)

    def delete_tap(self, call: Call, key: str, tap_id: str) -> Reply:
        user = self._user(key)
        tap = self.dir.taps.get(tap_id)
        if tap is None or tap["userId"] != user["id"]:
            raise not_found(tap_id)
        self.dir.delete_tap(tap_id)
        return Reply(204)

    # ---- groups --------------------------------------------------------------------------------

    def list_groups(self, call: Call) -> Reply:
        groups: list[dict[str, Any]] = list(self.dir.groups.values())
        expression = call.query.get("filter")
        if expression:
            clauses = query.parse_filter(expression, GROUP_FILTERABLE, "Group")
            prop, value = clauses[0]
            if isinstance(value, str):
                groups = [self.dir.groups[i] for i in self.dir.group_index.lookup(prop, value)]
            groups = [g for g in groups if query.matches(g, clauses)]
        select = query.selection(call)
        body = query.collection(call, groups, lambda g: self._render_group(g, select), "groups")
        return Reply(200, body)

    def create_group(self, call: Call) -> Reply:
        body = call.body if isinstance(call.body, dict) else {}
        for prop in GROUP_REQUIRED:
            if body.get(prop) in (None, ""):
                raise bad_request(f"A value is required for property '{prop}' of resource 'Group'.")
        group = self.new_group(body)
        return Reply(201, self._entity(call, "groups/$entity", group))

    def new_group(self, body: dict[str, Any]) -> dict[str, Any]:
        group = {
            "id": str(uuid.uuid4()),
            "displayName": body["displayName"],
            "mailNickname": body.get("mailNickname"),
            "description": body.get("description"),
            "mailEnabled": bool(body.get("mailEnabled", False)),
            "securityEnabled": bool(body.get("securityEnabled", True)),
            "groupTypes": list(body.get("groupTypes") or []),
            "createdDateTime": now_iso(),
        }
        self.dir.put_group(group)
        return group

    def get_group(self, call: Call, key: str) -> Reply:
        body = self._render_group(self._group(key), query.selection(call))
        return Reply(200, self._entity(call, "groups/$entity", body))

    def delete_group(self, call: Call, key: str) -> Reply:
        self.dir.delete_group(self._group(key)["id"])
        return Reply(204)

    def list_members(self, call: Call, key: str) -> Reply:
        group = self._group(key)
        member_ids = list(self.dir.members.get(group["id"], ()))
        select = query.selection(call)
        body = query.collection(
            call,
            member_ids,
            lambda member_id: self.workloads.render_object(member_id, select),
            "directoryObjects",
        )
        return Reply(200, body)

    def add_member(self, call: Call, key: str) -> Reply:
        group = self._group(key)
        _, user = self.workloads.user_or_sp(ref_target(call.body), "members")
        if user["id"] in self.dir.members.get(group["id"], ()):
            raise bad_request(
                "One or more added object references already exist for the following modified "
                "properties: 'members'."
            )
        self.dir.add_member(group["id"], user["id"])
        return Reply(204)

    def remove_member(self, call: Call, key: str, member_id: str) -> Reply:
        group = self._group(key)
        if member_id not in self.dir.members.get(group["id"], ()):
            raise not_found(member_id)
        self.dir.remove_member(group["id"], member_id)
        return Reply(204)
