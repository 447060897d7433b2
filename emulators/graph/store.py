"""Directory state: an in-memory working copy, written through to SQLite before any reply.

Reads never touch SQLite (the emulator sits on a benchmark's hot path); every accepted write is
committed in the same call that changes memory, so a response always reflects durable state and a
restart with the same file sees the same directory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
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
    }
)
# Indexed (case-insensitively) so `$filter=... eq '...'` lookups stay O(1) at benchmark scale.
USER_INDEXED = ("employeeId", "userPrincipalName", "mailNickname", "displayName", "mail")
GROUP_INDEXED = ("displayName", "mailNickname")

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
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, None]] = {}  # group id -> user ids, ordered
        self.member_of: dict[str, dict[str, None]] = {}  # user id -> group ids, ordered
        self.managers: dict[str, str] = {}  # user id -> manager id
        self.taps: dict[str, dict[str, Any]] = {}  # method id -> method (no secret)
        self._tap_of_user: dict[str, str] = {}  # Graph keeps at most one pass per user
        self.app_roles: dict[str, list[str]] = {}  # employee id -> Tenure app roles
        self.user_index = _Index(USER_INDEXED)
        self.group_index = _Index(GROUP_INDEXED)
        self._load()

    def close(self) -> None:
        self._db.close()

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
        with self._db:
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
        with self._db:
            self._db.execute("DELETE FROM users WHERE id = ?", (user_id,))
            self._db.execute("DELETE FROM members WHERE user_id = ?", (user_id,))
            self._db.execute(
                "DELETE FROM managers WHERE user_id = ? OR manager_id = ?", (user_id, user_id)
            )
            self._db.execute("DELETE FROM taps WHERE user_id = ?", (user_id,))
        self.user_index.remove(self.users.pop(user_id))
        for gid in self.member_of.pop(user_id, {}):
            self.members.get(gid, {}).pop(user_id, None)
        self.managers.pop(user_id, None)
        for uid in [u for u, m in self.managers.items() if m == user_id]:
            del self.managers[uid]
        tap_id = self._tap_of_user.pop(user_id, None)
        if tap_id is not None:
            del self.taps[tap_id]

    # ---- manager -------------------------------------------------------------------------------

    def set_manager(self, user_id: str, manager_id: str | None) -> None:
        with self._db:
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
        with self._db:
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
        with self._db:
            self._db.execute("DELETE FROM groups WHERE id = ?", (group_id,))
            self._db.execute("DELETE FROM members WHERE group_id = ?", (group_id,))
        self.group_index.remove(self.groups.pop(group_id))
        for uid in self.members.pop(group_id, {}):
            self.member_of.get(uid, {}).pop(group_id, None)

    def add_member(self, group_id: str, user_id: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO members (group_id, user_id) VALUES (?, ?)", (group_id, user_id)
            )
        self.members.setdefault(group_id, {})[user_id] = None
        self.member_of.setdefault(user_id, {})[group_id] = None

    def remove_member(self, group_id: str, user_id: str) -> None:
        with self._db:
            self._db.execute(
                "DELETE FROM members WHERE group_id = ? AND user_id = ?", (group_id, user_id)
            )
        self.members.get(group_id, {}).pop(user_id, None)
        self.member_of.get(user_id, {}).pop(group_id, None)

    # ---- temporary access passes ---------------------------------------------------------------

    def user_taps(self, user_id: str) -> list[dict[str, Any]]:
        tap_id = self._tap_of_user.get(user_id)
        return [self.taps[tap_id]] if tap_id else []

    def replace_tap(self, tap: dict[str, Any]) -> None:
        """Store `tap` (without its secret) as the user's only pass, as Graph keeps one per user."""
        with self._db:
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
        with self._db:
            self._db.execute("DELETE FROM taps WHERE id = ?", (tap_id,))
        tap = self.taps.pop(tap_id)
        self._tap_of_user.pop(tap["userId"], None)

    # ---- outbox --------------------------------------------------------------------------------

    def append_mail(self, mail: dict[str, Any]) -> int:
        with self._db:
            cursor = self._db.execute("INSERT INTO outbox (data) VALUES (?)", (json.dumps(mail),))
        return int(cursor.lastrowid or 0)

    def outbox(self, since: int = 0) -> Iterator[dict[str, Any]]:
        # Mail is write-mostly and read by tests only: read it from SQLite instead of holding it.
        rows = self._db.execute("SELECT seq, data FROM outbox WHERE seq > ? ORDER BY seq", (since,))
        for seq, data in rows:
            yield {"seq": seq, **json.loads(data)}

    def clear_outbox(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM outbox")

    # ---- token issuer: signing keys and app role assignments -----------------------------------

    def signing_keys(self) -> list[tuple[str, str]]:
        """(kid, private key PEM) of every signing key, oldest first."""
        return list(self._db.execute("SELECT kid, private_pem FROM signing_keys ORDER BY seq"))

    def add_signing_key(self, kid: str, private_pem: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO signing_keys (kid, private_pem) VALUES (?, ?)", (kid, private_pem)
            )

    def set_app_roles(self, employee_id: str, roles: list[str]) -> None:
        """Replace the person's app roles; an empty list removes the assignment."""
        with self._db:
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
