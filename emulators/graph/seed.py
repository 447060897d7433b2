"""The control surface's seed: a whole directory in one call, idempotent, in one SQLite transaction.

Objects are named, not only identified, so a spec can be written before any id exists: users by
userPrincipalName, groups by displayName, service principals by appId. Existing objects are
reused as they are; links (members, owners, assignments) already present are left alone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from emulators.graph.errors import bad_request
from emulators.graph.roles import parse_time
from emulators.graph.wire import Call

if TYPE_CHECKING:
    from emulators.graph.resources import GraphResources

SEED_KEYS = frozenset(
    {"groups", "users", "servicePrincipals", "appRoleAssignments", "roleAssignments"}
)
# Seeded app roles may be given by value only; these fill in the rest.
SEED_ROLE_MEMBER_TYPES = ["User", "Application"]


def seed(resources: GraphResources, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise bad_request("The seed must be a JSON object.", "BadRequest")
    unknown = sorted(set(spec) - SEED_KEYS)
    if unknown:
        raise bad_request(f"Unknown seed keys {unknown}; expected {sorted(SEED_KEYS)}.")
    # All or nothing: a bad entry anywhere leaves the directory as it was.
    with resources.dir.bulk():
        return _Seeder(resources).run(spec)


def _entries(spec: dict[str, Any], key: str, name: str) -> list[dict[str, Any]]:
    entries = spec.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise bad_request(f"Seed '{key}' must be a list of objects.")
    for entry in entries:
        if not isinstance(entry.get(name), str) or not entry[name]:
            raise bad_request(f"Every seed '{key}' entry needs a '{name}' string.")
    return [dict(e) for e in entries]


def _refs(entry: dict[str, Any], key: str) -> list[str]:
    refs = entry.pop(key, None) or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise bad_request(f"Seed '{key}' must be a list of strings.")
    return refs


class _Seeder:
    def __init__(self, resources: GraphResources) -> None:
        self.res = resources
        self.dir = resources.dir
        self.work = resources.workloads

    def resolve(self, ref: str) -> tuple[str, dict[str, Any]]:
        """A UPN, an object id, a service principal's appId, or a group's displayName."""
        if "@" in ref:
            user = self.dir.user_by_upn(ref)
            if user is not None:
                return "user", user
        found = self.dir.find_object(ref)
        if found is not None:
            return found
        sp = self.dir.sp_by_app_id(ref)
        if sp is not None:
            return "servicePrincipal", sp
        groups = self.dir.group_index.lookup("displayName", ref)
        if groups:
            return "group", self.dir.groups[groups[0]]
        raise bad_request(f"Seed reference '{ref}' names no user, group or service principal.")

    def _member_or_owner(self, ref: str, relation: str) -> str:
        kind, obj = self.resolve(ref)
        if kind == "group":
            raise bad_request(f"Seed {relation} must be users or service principals: '{ref}'.")
        return obj["id"]

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        groups = _entries(spec, "groups", "displayName")
        users = _entries(spec, "users", "userPrincipalName")
        sps = _entries(spec, "servicePrincipals", "appId")
        links: list[tuple[str, list[str], list[str]]] = []  # (object id, members, owners)
        sign_ins: list[tuple[str, Any]] = []

        group_ids: dict[str, str] = {}
        for g in groups:
            members, owners = _refs(g, "members"), _refs(g, "owners")
            name = g["displayName"]
            existing = self.dir.group_index.lookup("displayName", name)
            group_id = (
                existing[0]
                if existing
                else self.res.new_group(
                    {
                        "mailNickname": name.replace(" ", "-").lower(),
                        "mailEnabled": False,
                        "securityEnabled": True,
                        **g,
                    }
                )["id"]
            )
            group_ids[name] = group_id
            links.append((group_id, members, owners))

        user_ids: dict[str, str] = {}
        for u in users:
            activity = u.pop("signInActivity", None)
            upn = u["userPrincipalName"]
            user = self.dir.user_by_upn(upn)
            if user is None:
                local = upn.split("@", 1)[0]
                body = {
                    "accountEnabled": True,
                    "displayName": local,
                    "mailNickname": local,
                    "passwordProfile": {"password": uuid.uuid4().hex},
                    **u,
                }
                user = self.res.create_user(Call("POST", "/users", {}, body, "")).body
            user_ids[upn] = user["id"]
            if activity is not None:
                sign_ins.append((user["id"], activity))

        sp_ids: dict[str, str] = {}
        app_roles: dict[str, dict[str, str]] = {}
        for s in sps:
            owners = _refs(s, "owners")
            activity = s.pop("signInActivity", None)
            sp = self.dir.sp_by_app_id(s["appId"])
            if sp is None:
                s["appRoles"] = [self._seed_role(r) for r in s.get("appRoles") or []]
                sp = self.work.new_sp(s)
            sp_ids[sp["appId"]] = sp["id"]
            app_roles[sp["appId"]] = {r["value"] or r["id"]: r["id"] for r in sp["appRoles"]}
            links.append((sp["id"], [], owners))
            if activity is not None:
                sign_ins.append((sp["id"], activity))

        # Links once every named object exists, so entries may refer to each other in any order.
        for object_id, members, owners in links:
            present = self.dir.members.get(object_id, {})
            for ref in members:
                member_id = self._member_or_owner(ref, "members")
                if member_id not in present:
                    self.dir.add_member(object_id, member_id)
                    present = self.dir.members[object_id]
            held = self.dir.owners.get(object_id, {})
            for ref in owners:
                owner_id = self._member_or_owner(ref, "owners")
                if owner_id not in held:
                    self.dir.add_owner(object_id, owner_id)
                    held = self.dir.owners[object_id]

        assignment_ids = [self._assignment(a) for a in spec.get("appRoleAssignments") or []]
        role_ids = [self._directory_role(r) for r in spec.get("roleAssignments") or []]
        for object_id, activity in sign_ins:
            self.work.set_sign_in(object_id, activity)
        return {
            "groups": group_ids,
            "users": user_ids,
            "servicePrincipals": sp_ids,
            "appRoles": app_roles,
            "appRoleAssignments": assignment_ids,
            "roleAssignments": role_ids,
        }

    @staticmethod
    def _seed_role(raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw  # new_sp rejects it with Graph's message
        value = raw.get("value")
        return {
            "id": raw.get("id") or str(uuid.uuid4()),
            "allowedMemberTypes": raw.get("allowedMemberTypes") or list(SEED_ROLE_MEMBER_TYPES),
            "displayName": raw.get("displayName") or value,
            "description": raw.get("description") or value,
            "isEnabled": raw.get("isEnabled", True),
            "value": value,
        }

    def _assignment(self, raw: Any) -> str:
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), str) for k in ("principal", "resource")
        ):
            raise bad_request(
                "Every seed 'appRoleAssignments' entry needs 'principal' and 'resource' strings."
            )
        _, principal = self.resolve(raw["principal"])
        kind, resource = self.resolve(raw["resource"])
        if kind != "servicePrincipal":
            raise bad_request(
                f"Seed assignment resource '{raw['resource']}' is no service principal."
            )
        role_id = raw.get("appRoleId")
        if role_id is None and raw.get("appRole") is not None:
            role_id = next(
                (r["id"] for r in resource["appRoles"] if r["value"] == raw["appRole"]), None
            )
            if role_id is None:
                raise bad_request(
                    f"Service principal '{resource['appId']}' has no app role '{raw['appRole']}'."
                )
        role_id = str(role_id or "00000000-0000-0000-0000-000000000000").lower()
        existing = self.dir.assignment_for(principal["id"], resource["id"], role_id)
        if existing is not None:
            return existing
        body = {"principalId": principal["id"], "resourceId": resource["id"], "appRoleId": role_id}
        return self.work.grant(body)["id"]

    def _directory_role(self, raw: Any) -> str:
        """A directory role held outside Tenure (no PIM request): active, permanent or until
        `endDateTime` (which may be past, to plant an already-lapsed one), or `eligible`."""
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), str) for k in ("principal", "role")
        ):
            raise bad_request("Every seed 'roleAssignments' entry needs 'principal' and 'role'.")
        _, principal = self.resolve(raw["principal"])
        definition = self.res.roles.definition(raw["role"])
        if not definition:
            raise bad_request(f"Seed role '{raw['role']}' names no role definition.")
        end = raw.get("endDateTime")
        if raw.get("permanent", end is None) and end is not None:
            raise bad_request("A seed role assignment is either permanent or has an endDateTime.")
        kind = "eligibility" if raw.get("eligible") else "assignment"
        scope = raw.get("directoryScopeId") or "/"
        # Idempotent like the rest of the seed: an identical live holding is reused.
        existing = self.res.roles.matching(kind, principal["id"], definition["id"], scope)
        if existing:
            return existing[0]["id"]
        start = parse_time(raw["startDateTime"]) if raw.get("startDateTime") else None
        schedule = self.res.roles.add_schedule(
            kind,
            principal["id"],
            definition["id"],
            scope,
            start or datetime.now(UTC),
            parse_time(end) if end else None,
        )
        return schedule["id"]
