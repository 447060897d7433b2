"""Directory state: an in-memory working copy, written through to SQLite before any reply.

Reads never touch SQLite (the emulator sits on a benchmark's hot path); every accepted write is
committed in the same call that changes memory, so a response always reflects durable state and a
restart with the same file sees the same directory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

# Properties answered on a user when the client sends no $select (as Graph does: employeeId and
# friends must be asked for explicitly, so code that forgets $select fails here as it would there).
USER_DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_PROPERTIES = frozenset(
    {
        "id",
        "employeeId",
        "givenName",
        "surname",
        "displayName",
        "userPrincipalName",
        "mailNickname",
        "mail",
        "department",
        "jobTitle",
        "employeeType",
        "employeeHireDate",
        "employeeLeaveDateTime",
        "officeLocation",
        "accountEnabled",
        "createdDateTime",
        "signInSessionsValidFromDateTime",
        "usageLocation",
        "businessPhones",
        "mobilePhone",
        "preferredLanguage",
        "userType",  # Member | Guest: reviews treat guests apart
    }
)
# Indexed (case-insensitively) so `$filter=... eq '...'` lookups stay O(1) at benchmark scale.
USER_INDEXED = ("employeeId", "userPrincipalName", "mailNickname", "displayName", "mail")
GROUP_INDEXED = ("displayName", "mailNickname")
SP_INDEXED = ("appId", "displayName")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
  group_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (group_id, user_id));
CREATE TABLE IF NOT EXISTS managers (user_id TEXT PRIMARY KEY, manager_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS taps (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, kid TEXT NOT NULL UNIQUE, private_pem TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS app_roles (employee_id TEXT PRIMARY KEY, roles TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS service_principals (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS owners (
  object_id TEXT NOT NULL, owner_id TEXT NOT NULL, PRIMARY KEY (object_id, owner_id));
CREATE TABLE IF NOT EXISTS app_role_assignments (
  id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, resource_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sign_in_activity (object_id TEXT PRIMARY KEY, data TEXT NOT NULL);
-- Directory-role schedules (active and eligible) and the PIM requests that made them.
CREATE TABLE IF NOT EXISTS role_schedules (
  id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS role_requests (
  id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS role_schedules_by_principal ON role_schedules (principal_id);
-- PIM for groups: membership/ownership schedules (active and eligible) and their requests.
CREATE TABLE IF NOT EXISTS group_pim_schedules (
  id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, group_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS group_pim_requests (
  id TEXT PRIMARY KEY, principal_id TEXT NOT NULL, group_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS role_requests_by_principal ON role_requests (principal_id);
-- Deleting an object drops its rows by the non-leading column: index it (100k-row tables).
CREATE INDEX IF NOT EXISTS members_by_member ON members (user_id);
CREATE INDEX IF NOT EXISTS owners_by_owner ON owners (owner_id);
CREATE INDEX IF NOT EXISTS assignments_by_principal ON app_role_assignments (principal_id);
CREATE INDEX IF NOT EXISTS assignments_by_resource ON app_role_assignments (resource_id);
"""


class _Index:
    """Case-insensitive value -> ids (insertion-ordered) for a few string properties."""

    def __init__(self, fields: Iterable[str]) -> None:
        self._maps: dict[str, dict[str, dict[str, None]]] = {f: {} for f in fields}

    def covers(self, field: str) -> bool:
        return field in self._maps

    def add(self, obj: dict[str, Any]) -> None:
        for field, index in self._maps.items():
            value = obj.get(field)
            if isinstance(value, str):
                index.setdefault(value.lower(), {})[obj["id"]] = None

    def remove(self, obj: dict[str, Any]) -> None:
        for field, index in self._maps.items():
            value = obj.get(field)
            if isinstance(value, str):
                ids = index.get(value.lower())
                if ids is not None:
                    ids.pop(obj["id"], None)
                    if not ids:
                        del index[value.lower()]

    def lookup(self, field: str, value: str) -> list[str]:
        return list(self._maps[field].get(value.lower(), ()))


class Directory:
    def __init__(self, db_path: str | None) -> None:
        self._db = sqlite3.connect(db_path or ":memory:", check_same_thread=False)
        if db_path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._bulk = False
        self._reset()
        self._load()

    def _reset(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        # Members are users or service principals (Graph allows both in security groups).
        self.members: dict[str, dict[str, None]] = {}  # group id -> member ids, ordered
        self.member_of: dict[str, dict[str, None]] = {}  # member id -> group ids, ordered
        self.managers: dict[str, str] = {}  # user id -> manager id
        self.taps: dict[str, dict[str, Any]] = {}  # method id -> method (no secret)
        self._tap_of_user: dict[str, str] = {}  # Graph keeps at most one pass per user
        self.app_roles: dict[str, list[str]] = {}  # employee id -> Tenure app roles
        self.service_principals: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, dict[str, None]] = {}  # group or SP id -> owner ids, ordered
        self.owned: dict[str, dict[str, None]] = {}  # owner id -> owned object ids
        self.assignments: dict[str, dict[str, Any]] = {}  # appRoleAssignment id -> stored form
        self.assigned_to: dict[str, dict[str, None]] = {}  # resource SP id -> assignment ids
        self.assignments_of: dict[str, dict[str, None]] = {}  # principal id -> assignment ids
        self._assignment_keys: dict[tuple[str, str, str], str] = {}  # (principal, resource, role)
        self.sign_ins: dict[str, dict[str, Any]] = {}  # user or SP id -> sign-in activity
        self.role_schedules: dict[str, dict[str, Any]] = {}  # directory-role schedule id -> it
        self.role_requests: dict[str, dict[str, Any]] = {}  # PIM request id -> it
        self.group_schedules: dict[str, dict[str, Any]] = {}  # PIM-for-groups schedule id -> it
        self.group_requests: dict[str, dict[str, Any]] = {}  # PIM-for-groups request id -> it
        self.user_index = _Index(USER_INDEXED)
        self.group_index = _Index(GROUP_INDEXED)
        self.sp_index = _Index(SP_INDEXED)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write: its own transaction, or part of the open bulk transaction."""
        if self._bulk:
            yield
            return
        with self._db:
            yield

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Many writes (the seed) in a single transaction; on failure nothing of them remains.

        Memory changes as the writes go, so a failure rolls SQLite back and reloads memory from it.
        """
        if self._bulk:
            yield
            return
        self._bulk = True
        try:
            yield
        except BaseException:
            self._db.rollback()
            self._reset()
            self._load()
            raise
        else:
            self._db.commit()
        finally:
            self._bulk = False

    def _load(self) -> None:
        for (data,) in self._db.execute("SELECT data FROM users ORDER BY rowid"):
            user = json.loads(data)
            self.users[user["id"]] = user
            self.user_index.add(user)
        for (data,) in self._db.execute("SELECT data FROM groups ORDER BY rowid"):
            group = json.loads(data)
            self.groups[group["id"]] = group
            self.group_index.add(group)
        for gid, uid in self._db.execute("SELECT group_id, user_id FROM members ORDER BY rowid"):
            self.members.setdefault(gid, {})[uid] = None
            self.member_of.setdefault(uid, {})[gid] = None
        self.managers = dict(self._db.execute("SELECT user_id, manager_id FROM managers"))
        for (data,) in self._db.execute("SELECT data FROM taps ORDER BY rowid"):
            tap = json.loads(data)
            self.taps[tap["id"]] = tap
            self._tap_of_user[tap["userId"]] = tap["id"]
        for employee_id, roles in self._db.execute(
            "SELECT employee_id, roles FROM app_roles ORDER BY rowid"
        ):
            self.app_roles[employee_id] = json.loads(roles)
        for (data,) in self._db.execute("SELECT data FROM service_principals ORDER BY rowid"):
            sp = json.loads(data)
            self.service_principals[sp["id"]] = sp
            self.sp_index.add(sp)
        for oid, owner in self._db.execute("SELECT object_id, owner_id FROM owners ORDER BY rowid"):
            self.owners.setdefault(oid, {})[owner] = None
            self.owned.setdefault(owner, {})[oid] = None
        for (data,) in self._db.execute("SELECT data FROM app_role_assignments ORDER BY rowid"):
            self._index_assignment(json.loads(data))
        for oid, data in self._db.execute("SELECT object_id, data FROM sign_in_activity"):
            self.sign_ins[oid] = json.loads(data)
        for (data,) in self._db.execute("SELECT data FROM role_schedules ORDER BY rowid"):
            schedule = json.loads(data)
            self.role_schedules[schedule["id"]] = schedule
        for (data,) in self._db.execute("SELECT data FROM role_requests ORDER BY rowid"):
            request = json.loads(data)
            self.role_requests[request["id"]] = request
        for (data,) in self._db.execute("SELECT data FROM group_pim_schedules ORDER BY rowid"):
            schedule = json.loads(data)
            self.group_schedules[schedule["id"]] = schedule
        for (data,) in self._db.execute("SELECT data FROM group_pim_requests ORDER BY rowid"):
            request = json.loads(data)
            self.group_requests[request["id"]] = request

    def find_object(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """(kind, object) for a directory object id: 'user', 'group' or 'servicePrincipal'."""
        if key in self.users:
            return "user", self.users[key]
        if key in self.groups:
            return "group", self.groups[key]
        if key in self.service_principals:
            return "servicePrincipal", self.service_principals[key]
        return None

    # ---- users ---------------------------------------------------------------------------------

    def user_by_upn(self, upn: str) -> dict[str, Any] | None:
        ids = self.user_index.lookup("userPrincipalName", upn)
        return self.users[ids[0]] if ids else None

    def find_user(self, key: str) -> dict[str, Any] | None:
        """A user by object id or by userPrincipalName, as Graph's /users/{id | UPN} accepts."""
        user = self.users.get(key)
        if user is None and "@" in key:
            user = self.user_by_upn(key)
        return user

    def put_user(self, user: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO users (id, data) VALUES (?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (user["id"], json.dumps(user)),
            )
        if previous is not None:
            self.user_index.remove(previous)
        self.users[user["id"]] = user
        self.user_index.add(user)

    def delete_user(self, user_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM users WHERE id = ?", (user_id,))
            self._db.execute("DELETE FROM members WHERE user_id = ?", (user_id,))
            self._db.execute(
                "DELETE FROM managers WHERE user_id = ? OR manager_id = ?", (user_id, user_id)
            )
            self._db.execute("DELETE FROM taps WHERE user_id = ?", (user_id,))
            self._drop_links(user_id)
        self.user_index.remove(self.users.pop(user_id))
        self._forget_memberships(user_id)
        self.managers.pop(user_id, None)
        for uid in [u for u, m in self.managers.items() if m == user_id]:
            del self.managers[uid]
        tap_id = self._tap_of_user.pop(user_id, None)
        if tap_id is not None:
            del self.taps[tap_id]
        self._forget_links(user_id)

    def _forget_memberships(self, member_id: str) -> None:
        for gid in self.member_of.pop(member_id, {}):
            self.members.get(gid, {}).pop(member_id, None)

    def _drop_links(self, object_id: str) -> None:
        """SQL side of a deletion: ownerships either way, assignments either end, sign-ins."""
        self._db.execute(
            "DELETE FROM owners WHERE object_id = ? OR owner_id = ?", (object_id, object_id)
        )
        self._db.execute(
            "DELETE FROM app_role_assignments WHERE principal_id = ? OR resource_id = ?",
            (object_id, object_id),
        )
        self._db.execute("DELETE FROM sign_in_activity WHERE object_id = ?", (object_id,))
        # A deleted principal holds no directory roles, active or eligible.
        self._db.execute("DELETE FROM role_schedules WHERE principal_id = ?", (object_id,))
        self._db.execute("DELETE FROM role_requests WHERE principal_id = ?", (object_id,))
        # Nor any PIM-for-groups schedule, as principal or as the group (its members rows go too).
        self._db.execute(
            "DELETE FROM group_pim_schedules WHERE principal_id = ? OR group_id = ?",
            (object_id, object_id),
        )
        self._db.execute(
            "DELETE FROM group_pim_requests WHERE principal_id = ? OR group_id = ?",
            (object_id, object_id),
        )

    def _forget_links(self, object_id: str) -> None:
        for owner in self.owners.pop(object_id, {}):
            self.owned.get(owner, {}).pop(object_id, None)
        for owned in self.owned.pop(object_id, {}):
            self.owners.get(owned, {}).pop(object_id, None)
        ids = list(self.assignments_of.get(object_id, ())) + list(
            self.assigned_to.get(object_id, ())
        )
        for assignment_id in ids:
            if assignment_id in self.assignments:
                self._unindex_assignment(assignment_id)
        self.assignments_of.pop(object_id, None)
        self.assigned_to.pop(object_id, None)
        self.sign_ins.pop(object_id, None)
        for store in (self.role_schedules, self.role_requests):
            for key in [k for k, v in store.items() if v["principalId"] == object_id]:
                del store[key]
        for store in (self.group_schedules, self.group_requests):
            for key in [
                k for k, v in store.items() if object_id in (v["principalId"], v["groupId"])
            ]:
                del store[key]

    # ---- manager -------------------------------------------------------------------------------

    def set_manager(self, user_id: str, manager_id: str | None) -> None:
        with self._write():
            if manager_id is None:
                self._db.execute("DELETE FROM managers WHERE user_id = ?", (user_id,))
            else:
                self._db.execute(
                    "INSERT INTO managers (user_id, manager_id) VALUES (?, ?) "
                    "ON CONFLICT(user_id) DO UPDATE SET manager_id = excluded.manager_id",
                    (user_id, manager_id),
                )
        if manager_id is None:
            self.managers.pop(user_id, None)
        else:
            self.managers[user_id] = manager_id

    # ---- groups --------------------------------------------------------------------------------

    def put_group(self, group: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO groups (id, data) VALUES (?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (group["id"], json.dumps(group)),
            )
        previous = self.groups.get(group["id"])
        if previous is not None:
            self.group_index.remove(previous)
        self.groups[group["id"]] = group
        self.group_index.add(group)

    def delete_group(self, group_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM groups WHERE id = ?", (group_id,))
            self._db.execute("DELETE FROM members WHERE group_id = ?", (group_id,))
            self._drop_links(group_id)
        self.group_index.remove(self.groups.pop(group_id))
        for uid in self.members.pop(group_id, {}):
            self.member_of.get(uid, {}).pop(group_id, None)
        self._forget_links(group_id)

    def add_member(self, group_id: str, user_id: str) -> None:
        """`user_id` is any member's object id: a user's or a service principal's."""
        with self._write():
            self._db.execute(
                "INSERT INTO members (group_id, user_id) VALUES (?, ?)", (group_id, user_id)
            )
        self.members.setdefault(group_id, {})[user_id] = None
        self.member_of.setdefault(user_id, {})[group_id] = None

    def remove_member(self, group_id: str, user_id: str) -> None:
        with self._write():
            self._db.execute(
                "DELETE FROM members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            )
        self.members.get(group_id, {}).pop(user_id, None)
        self.member_of.get(user_id, {}).pop(group_id, None)

    # ---- service principals --------------------------------------------------------------------

    def sp_by_app_id(self, app_id: str) -> dict[str, Any] | None:
        ids = self.sp_index.lookup("appId", app_id)
        return self.service_principals[ids[0]] if ids else None

    def put_sp(self, sp: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO service_principals (id, data) VALUES (?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (sp["id"], json.dumps(sp)),
            )
        previous = self.service_principals.get(sp["id"])
        if previous is not None:
            self.sp_index.remove(previous)
        self.service_principals[sp["id"]] = sp
        self.sp_index.add(sp)

    def delete_sp(self, sp_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM service_principals WHERE id = ?", (sp_id,))
            self._db.execute("DELETE FROM members WHERE user_id = ?", (sp_id,))
            self._drop_links(sp_id)
        self.sp_index.remove(self.service_principals.pop(sp_id))
        self._forget_memberships(sp_id)
        self._forget_links(sp_id)

    # ---- owners (of groups and service principals) ---------------------------------------------

    def add_owner(self, object_id: str, owner_id: str) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO owners (object_id, owner_id) VALUES (?, ?)", (object_id, owner_id)
            )
        self.owners.setdefault(object_id, {})[owner_id] = None
        self.owned.setdefault(owner_id, {})[object_id] = None

    def remove_owner(self, object_id: str, owner_id: str) -> None:
        with self._write():
            self._db.execute(
                "DELETE FROM owners WHERE object_id = ? AND owner_id = ?", (object_id, owner_id)
            )
        self.owners.get(object_id, {}).pop(owner_id, None)
        self.owned.get(owner_id, {}).pop(object_id, None)

    # ---- app role assignments ------------------------------------------------------------------

    def _index_assignment(self, assignment: dict[str, Any]) -> None:
        aid, principal, resource = (
            assignment["id"],
            assignment["principalId"],
            assignment["resourceId"],
        )
        self.assignments[aid] = assignment
        self.assigned_to.setdefault(resource, {})[aid] = None
        self.assignments_of.setdefault(principal, {})[aid] = None
        self._assignment_keys[(principal, resource, assignment["appRoleId"])] = aid

    def _unindex_assignment(self, assignment_id: str) -> None:
        a = self.assignments.pop(assignment_id)
        self.assigned_to.get(a["resourceId"], {}).pop(assignment_id, None)
        self.assignments_of.get(a["principalId"], {}).pop(assignment_id, None)
        self._assignment_keys.pop((a["principalId"], a["resourceId"], a["appRoleId"]), None)

    def assignment_for(self, principal_id: str, resource_id: str, app_role_id: str) -> str | None:
        return self._assignment_keys.get((principal_id, resource_id, app_role_id))

    def add_assignment(self, assignment: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO app_role_assignments (id, principal_id, resource_id, data) "
                "VALUES (?, ?, ?, ?)",
                (
                    assignment["id"],
                    assignment["principalId"],
                    assignment["resourceId"],
                    json.dumps(assignment),
                ),
            )
        self._index_assignment(assignment)

    def delete_assignment(self, assignment_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM app_role_assignments WHERE id = ?", (assignment_id,))
        self._unindex_assignment(assignment_id)

    # ---- directory roles -----------------------------------------------------------------------

    def put_role_schedule(self, schedule: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO role_schedules (id, principal_id, data) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (schedule["id"], schedule["principalId"], json.dumps(schedule)),
            )
        self.role_schedules[schedule["id"]] = schedule

    def delete_role_schedule(self, schedule_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM role_schedules WHERE id = ?", (schedule_id,))
        self.role_schedules.pop(schedule_id, None)

    def put_role_request(self, request: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO role_requests (id, principal_id, data) VALUES (?, ?, ?)",
                (request["id"], request["principalId"], json.dumps(request)),
            )
        self.role_requests[request["id"]] = request

    def clear_roles(self) -> None:
        """Forget every directory-role schedule and request (the control surface's reset)."""
        with self._write():
            self._db.execute("DELETE FROM role_schedules")
            self._db.execute("DELETE FROM role_requests")
        self.role_schedules.clear()
        self.role_requests.clear()

    # ---- PIM for groups ------------------------------------------------------------------------

    def put_group_schedule(self, schedule: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO group_pim_schedules (id, principal_id, group_id, data) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (
                    schedule["id"],
                    schedule["principalId"],
                    schedule["groupId"],
                    json.dumps(schedule),
                ),
            )
        self.group_schedules[schedule["id"]] = schedule

    def delete_group_schedule(self, schedule_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM group_pim_schedules WHERE id = ?", (schedule_id,))
        self.group_schedules.pop(schedule_id, None)

    def put_group_request(self, request: dict[str, Any]) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO group_pim_requests (id, principal_id, group_id, data) "
                "VALUES (?, ?, ?, ?)",
                (request["id"], request["principalId"], request["groupId"], json.dumps(request)),
            )
        self.group_requests[request["id"]] = request

    def clear_group_pim(self) -> None:
        """Forget every PIM-for-groups schedule and request (memberships are the caller's)."""
        with self._write():
            self._db.execute("DELETE FROM group_pim_schedules")
            self._db.execute("DELETE FROM group_pim_requests")
        self.group_schedules.clear()
        self.group_requests.clear()

    # ---- sign-in activity ----------------------------------------------------------------------

    def set_sign_in(self, object_id: str, activity: dict[str, Any] | None) -> None:
        """Replace the object's recorded sign-in activity; None forgets it (never signed in)."""
        with self._write():
            if activity is None:
                self._db.execute("DELETE FROM sign_in_activity WHERE object_id = ?", (object_id,))
            else:
                self._db.execute(
                    "INSERT INTO sign_in_activity (object_id, data) VALUES (?, ?) "
                    "ON CONFLICT(object_id) DO UPDATE SET data = excluded.data",
                    (object_id, json.dumps(activity)),
                )
        if activity is None:
            self.sign_ins.pop(object_id, None)
        else:
            self.sign_ins[object_id] = activity

    # ---- temporary access passes ---------------------------------------------------------------

    def user_taps(self, user_id: str) -> list[dict[str, Any]]:
        tap_id = self._tap_of_user.get(user_id)
        return [self.taps[tap_id]] if tap_id else []

    def replace_tap(self, tap: dict[str, Any]) -> None:
        """Store `tap` (without its secret) as the user's only pass, as Graph keeps one per user."""
        with self._write():
            self._db.execute("DELETE FROM taps WHERE user_id = ?", (tap["userId"],))
            self._db.execute(
                "INSERT INTO taps (id, user_id, data) VALUES (?, ?, ?)",
                (tap["id"], tap["userId"], json.dumps(tap)),
            )
        old = self._tap_of_user.get(tap["userId"])
        if old is not None:
            del self.taps[old]
        self.taps[tap["id"]] = tap
        self._tap_of_user[tap["userId"]] = tap["id"]

    def delete_tap(self, tap_id: str) -> None:
        with self._write():
            self._db.execute("DELETE FROM taps WHERE id = ?", (tap_id,))
        tap = self.taps.pop(tap_id)
        self._tap_of_user.pop(tap["userId"], None)

    # ---- outbox --------------------------------------------------------------------------------

    def append_mail(self, mail: dict[str, Any]) -> int:
        with self._write():
            cursor = self._db.execute("INSERT INTO outbox (data) VALUES (?)", (json.dumps(mail),))
        return int(cursor.lastrowid or 0)

    def outbox(self, since: int = 0) -> Iterator[dict[str, Any]]:
        # Mail is write-mostly and read by tests only: read it from SQLite instead of holding it.
        rows = self._db.execute("SELECT seq, data FROM outbox WHERE seq > ? ORDER BY seq", (since,))
        for seq, data in rows:
            yield {"seq": seq, **json.loads(data)}

    def clear_outbox(self) -> None:
        with self._write():
            self._db.execute("DELETE FROM outbox")

    # ---- token issuer: signing keys and app role assignments -----------------------------------

    def signing_keys(self) -> list[tuple[str, str]]:
        """(kid, private key PEM) of every signing key, oldest first."""
        return list(self._db.execute("SELECT kid, private_pem FROM signing_keys ORDER BY seq"))

    def add_signing_key(self, kid: str, private_pem: str) -> None:
        with self._write():
            self._db.execute(
                "INSERT INTO signing_keys (kid, private_pem) VALUES (?, ?)", (kid, private_pem)
            )

    def set_app_roles(self, employee_id: str, roles: list[str]) -> None:
        """Replace the person's app roles; an empty list removes the assignment."""
        with self._write():
            if roles:
                self._db.execute(
                    "INSERT INTO app_roles (employee_id, roles) VALUES (?, ?) "
                    "ON CONFLICT(employee_id) DO UPDATE SET roles = excluded.roles",
                    (employee_id, json.dumps(roles)),
                )
            else:
                self._db.execute("DELETE FROM app_roles WHERE employee_id = ?", (employee_id,))
        if roles:
            self.app_roles[employee_id] = list(roles)
        else:
            self.app_roles.pop(employee_id, None)
