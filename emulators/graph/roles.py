"""Graph v1.0 `roleManagement/directory`: role definitions, assignments and PIM schedules.

One stored record, a *schedule*, backs everything: an active-assignment schedule is at once a
roleAssignmentSchedule, and (while its window is open) a roleAssignmentScheduleInstance and a
roleAssignment; an eligibility schedule likewise backs its eligibility instance. Windows are judged
against the clock on every read, so an activation that ran out simply stops being listed, as in
Entra, with no background sweeper. Requests are kept as the audit trail Graph also keeps.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from emulators.graph import query
from emulators.graph.errors import bad_request, not_found, now_iso
from emulators.graph.store import Directory
from emulators.graph.wire import Call, Reply

PREFIX = r"/roleManagement/directory"
TENANT_SCOPE = "/"
ASSIGNMENT, ELIGIBILITY = "assignment", "eligibility"
ASSIGNMENT_ACTIONS = frozenset(
    {"adminAssign", "adminRemove", "adminUpdate", "adminExtend", "selfActivate", "selfDeactivate"}
)
# Eligibility is granted by admins only; a principal cannot make itself eligible.
ELIGIBILITY_ACTIONS = frozenset({"adminAssign", "adminRemove", "adminUpdate", "adminExtend"})
EXPIRATION_TYPES = frozenset({"noExpiration", "afterDateTime", "afterDuration"})
DEFINITION_FILTERABLE = ("id", "displayName", "templateId", "isBuiltIn", "isEnabled")
SCHEDULE_FILTERABLE = ("principalId", "roleDefinitionId", "directoryScopeId", "id")
REQUEST_FILTERABLE = ("principalId", "roleDefinitionId", "action", "status", "id")

# Built-in roles with Entra's real template ids (for built-ins, id == templateId, as in Entra).
_BUILT_IN: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
        "Can manage all aspects of Microsoft Entra ID and Microsoft services that use "
        "Microsoft Entra identities.",
        ("microsoft.directory/allEntities/allProperties/allTasks",),
    ),
    (
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "User Administrator",
        "Can manage all aspects of users and groups, including resetting passwords for limited "
        "admins.",
        ("microsoft.directory/users/allProperties/allTasks", "microsoft.directory/groups/create"),
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
        "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged "
        "Identity Management.",
        ("microsoft.directory/roleAssignments/allProperties/allTasks",),
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
        "Can read security information and reports, and manage configuration in Microsoft "
        "Entra ID and Office 365.",
        ("microsoft.directory/policies/standard/read",),
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
        ("microsoft.directory/users/password/update",),
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
        "Can manage all aspects of the Exchange product.",
        ("microsoft.office365.exchange/allEntities/basic/allTasks",),
    ),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
        "Can create and manage all aspects of app registrations and enterprise apps.",
        ("microsoft.directory/applications/allProperties/allTasks",),
    ),
)

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
# What kiota's Python serializer actually sends for a timedelta: str(timedelta), "1 day, 2:00:00".
_PY_DURATION = re.compile(
    r"^(?:(?P<d>\d+) days?, )?(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)$"
)


def built_in_definitions() -> dict[str, dict[str, Any]]:
    return {
        template_id: {
            "id": template_id,
            "description": description,
            "displayName": name,
            "isBuiltIn": True,
            "isEnabled": True,
            "resourceScopes": [TENANT_SCOPE],
            "templateId": template_id,
            "version": "1",
            "rolePermissions": [{"allowedResourceActions": list(actions), "condition": None}],
        }
        for template_id, name, description, actions in _BUILT_IN
    }


def parse_duration(raw: Any) -> timedelta:
    text = str(raw or "").strip()
    match = _ISO_DURATION.match(text) or _PY_DURATION.match(text)
    if match is None or text in ("P", "PT"):
        raise bad_request(f"Invalid duration value '{raw}'.", "InvalidScheduleInfo")
    return timedelta(
        days=int(match["d"] or 0),
        hours=int(match["h"] or 0),
        minutes=int(match["m"] or 0),
        seconds=float(match["s"] or 0),
    )


def iso_duration(value: timedelta) -> str:
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    clock += f"{seconds}S" if seconds or not (days or clock) else ""
    return out + ("T" + clock if clock else "")


def parse_time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid date/time value '{value}'.", "InvalidScheduleInfo") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    # Fractions kept: a 2-second activation must not lose half its life to rounding.
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def schedule_live(schedule: dict[str, Any], now: datetime, started: bool) -> bool:
    """Not yet expired; with `started`, also inside its window now (an instance)."""
    end = schedule.get("endDateTime")
    if end is not None and parse_time(end) <= now:
        return False
    return not started or parse_time(schedule["startDateTime"]) <= now


def schedule_window(info: Any, now: datetime) -> tuple[datetime, datetime | None, dict[str, Any]]:
    """(start, end, echoed expiration) from a schedule request's scheduleInfo (both PIM
    surfaces read it alike)."""
    info = info if isinstance(info, dict) else {}
    start = parse_time(info["startDateTime"]) if info.get("startDateTime") else now
    expiration = info.get("expiration") if isinstance(info.get("expiration"), dict) else {}
    kind = expiration.get("type") or "noExpiration"
    if kind not in EXPIRATION_TYPES:
        raise bad_request(f"Invalid expiration type '{kind}'.", "InvalidScheduleInfo")
    end: datetime | None = None
    echo: dict[str, Any] = {"type": kind, "endDateTime": None, "duration": None}
    if kind == "afterDateTime":
        if not expiration.get("endDateTime"):
            raise bad_request("endDateTime is required for afterDateTime.", "InvalidScheduleInfo")
        end = parse_time(expiration["endDateTime"])
        echo["endDateTime"] = iso(end)
    elif kind == "afterDuration":
        length = parse_duration(expiration.get("duration"))
        if length <= timedelta(0):
            raise bad_request("The duration must be positive.", "InvalidScheduleInfo")
        end = start + length
        echo["duration"] = iso_duration(length)
    if end is not None and end <= start:
        raise bad_request("The schedule ends before it starts.", "InvalidScheduleInfo")
    return start, end, echo


def _params(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
    return body


class RoleManagement:
    def __init__(self, directory: Directory) -> None:
        self.dir = directory
        self.definitions = built_in_definitions()

    def routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        p = PREFIX
        return [
            ("GET", p + r"/roleDefinitions", self.list_definitions),
            ("GET", p + r"/roleDefinitions/([^/]+)", self.get_definition),
            ("GET", p + r"/roleAssignments", self.list_assignments),
            ("POST", p + r"/roleAssignments", self.create_assignment),
            ("GET", p + r"/roleAssignments/([^/]+)", self.get_assignment),
            ("DELETE", p + r"/roleAssignments/([^/]+)", self.delete_assignment),
            ("GET", p + r"/roleAssignmentSchedules", self._lister(ASSIGNMENT, False)),
            ("GET", p + r"/roleAssignmentSchedules/([^/]+)", self._getter(ASSIGNMENT, False)),
            ("GET", p + r"/roleAssignmentScheduleInstances", self._lister(ASSIGNMENT, True)),
            (
                "GET",
                p + r"/roleAssignmentScheduleInstances/([^/]+)",
                self._getter(ASSIGNMENT, True),
            ),
            ("GET", p + r"/roleEligibilitySchedules", self._lister(ELIGIBILITY, False)),
            ("GET", p + r"/roleEligibilitySchedules/([^/]+)", self._getter(ELIGIBILITY, False)),
            ("GET", p + r"/roleEligibilityScheduleInstances", self._lister(ELIGIBILITY, True)),
            (
                "GET",
                p + r"/roleEligibilityScheduleInstances/([^/]+)",
                self._getter(ELIGIBILITY, True),
            ),
            ("GET", p + r"/roleAssignmentScheduleRequests", self._request_lister(ASSIGNMENT)),
            ("POST", p + r"/roleAssignmentScheduleRequests", self._requester(ASSIGNMENT)),
            (
                "GET",
                p + r"/roleAssignmentScheduleRequests/([^/]+)",
                self._request_getter(ASSIGNMENT),
            ),
            ("GET", p + r"/roleEligibilityScheduleRequests", self._request_lister(ELIGIBILITY)),
            ("POST", p + r"/roleEligibilityScheduleRequests", self._requester(ELIGIBILITY)),
            (
                "GET",
                p + r"/roleEligibilityScheduleRequests/([^/]+)",
                self._request_getter(ELIGIBILITY),
            ),
        ]

    # ---- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _context(call: Call, segment: str) -> str:
        return f"{call.service_root}/$metadata#roleManagement/directory/{segment}"

    def definition(self, key: str) -> dict[str, Any]:
        """A role definition by id/templateId, or (for the seed) by displayName."""
        found = self.definitions.get(key.lower())
        if found is None:
            found = next(
                (d for d in self.definitions.values() if d["displayName"].lower() == key.lower()),
                None,
            )
        return found or {}

    def _schedules(self, kind: str, started: bool) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            s
            for s in self.dir.role_schedules.values()
            if s["kind"] == kind and schedule_live(s, now, started)
        ]

    def matching(
        self, kind: str, principal_id: str, role_id: str, scope: str, started: bool = False
    ) -> list[dict[str, Any]]:
        return [
            s
            for s in self._schedules(kind, started)
            if s["principalId"] == principal_id
            and s["roleDefinitionId"] == role_id
            and s["directoryScopeId"] == scope
        ]

    @staticmethod
    def _filtered(
        call: Call, items: list[dict[str, Any]], allowed: tuple[str, ...], name: str
    ) -> list[dict[str, Any]]:
        expression = call.query.get("filter")
        if not expression:
            return items
        clauses = query.parse_filter(expression, allowed, name)
        return [i for i in items if query.matches(i, clauses)]

    # ---- rendering -----------------------------------------------------------------------------

    @staticmethod
    def render_assignment(s: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": s["id"],
            "principalId": s["principalId"],
            "roleDefinitionId": s["roleDefinitionId"],
            "directoryScopeId": s["directoryScopeId"],
            "appScopeId": None,
            "condition": None,
        }

    def _render_schedule(self, s: dict[str, Any], instance: bool) -> dict[str, Any]:
        out = {
            "id": s["id"],
            "principalId": s["principalId"],
            "roleDefinitionId": s["roleDefinitionId"],
            "directoryScopeId": s["directoryScopeId"],
            "appScopeId": None,
            "memberType": "Direct",
            "startDateTime": s["startDateTime"],
            "endDateTime": s.get("endDateTime"),
        }
        if s["kind"] == ASSIGNMENT:
            out["assignmentType"] = s["assignmentType"]
        if instance:
            if s["kind"] == ASSIGNMENT:
                out["roleAssignmentOriginId"] = s["id"]
                out["roleAssignmentScheduleId"] = s["id"]
            else:
                out["roleEligibilityScheduleId"] = s["id"]
            return out
        end = s.get("endDateTime")
        expiration = s.get("expiration") or {
            "type": "noExpiration" if end is None else "afterDateTime",
            "endDateTime": end,
            "duration": None,
        }
        out.update(
            createdDateTime=s["createdDateTime"],
            createdUsing=s.get("createdUsing"),
            modifiedDateTime=s.get("modifiedDateTime"),
            status="Provisioned",
            scheduleInfo={
                "startDateTime": s["startDateTime"],
                "recurrence": None,
                "expiration": expiration,
            },
        )
        return out

    # ---- role definitions ----------------------------------------------------------------------

    def list_definitions(self, call: Call) -> Reply:
        items = self._filtered(
            call, list(self.definitions.values()), DEFINITION_FILTERABLE, "unifiedRoleDefinition"
        )
        select = query.selection(call)
        render = (lambda d: {p: d.get(p) for p in select}) if select else dict
        ctx = "roleManagement/directory/roleDefinitions"
        return Reply(200, query.collection(call, items, render, ctx))

    def get_definition(self, call: Call, key: str) -> Reply:
        found = self.definitions.get(key.lower())
        if found is None:
            raise not_found(key)
        return Reply(
            200, {"@odata.context": self._context(call, "roleDefinitions/$entity"), **found}
        )

    # ---- role assignments (the active ones) ----------------------------------------------------

    def list_assignments(self, call: Call) -> Reply:
        items = self._filtered(
            call, self._schedules(ASSIGNMENT, True), SCHEDULE_FILTERABLE, "unifiedRoleAssignment"
        )
        ctx = "roleManagement/directory/roleAssignments"
        return Reply(200, query.collection(call, items, self.render_assignment, ctx))

    def _active(self, key: str) -> dict[str, Any]:
        s = self.dir.role_schedules.get(key)
        if s is None or s["kind"] != ASSIGNMENT or not schedule_live(s, datetime.now(UTC), True):
            raise not_found(key)
        return s

    def get_assignment(self, call: Call, key: str) -> Reply:
        body = self.render_assignment(self._active(key))
        ctx = self._context(call, "roleAssignments/$entity")
        return Reply(200, {"@odata.context": ctx, **body})

    def create_assignment(self, call: Call) -> Reply:
        params = _params(call.body)
        principal_id, role_id, scope = self._target(params)
        if self.matching(ASSIGNMENT, principal_id, role_id, scope):
            # What the directory answers for a second identical direct assignment.
            raise bad_request(
                "A conflicting object with one or more of the specified property values is "
                "present in the directory."
            )
        s = self.add_schedule(ASSIGNMENT, principal_id, role_id, scope, datetime.now(UTC), None)
        ctx = self._context(call, "roleAssignments/$entity")
        return Reply(201, {"@odata.context": ctx, **self.render_assignment(s)})

    def delete_assignment(self, call: Call, key: str) -> Reply:
        self.dir.delete_role_schedule(self._active(key)["id"])
        return Reply(204)

    def _target(self, params: dict[str, Any]) -> tuple[str, str, str]:
        """principalId, roleDefinitionId and directoryScopeId of a request, validated."""
        for prop in ("principalId", "roleDefinitionId"):
            if not isinstance(params.get(prop), str) or not params[prop]:
                raise bad_request(f"A value is required for property '{prop}'.", "BadRequest")
        role_id = params["roleDefinitionId"].lower()
        if role_id not in self.definitions:
            raise not_found(params["roleDefinitionId"])
        principal_id = params["principalId"]
        if self.dir.find_object(principal_id) is None:
            raise not_found(principal_id)
        scope = params.get("directoryScopeId") or TENANT_SCOPE
        if scope != TENANT_SCOPE and self.dir.find_object(scope.lstrip("/")) is None:
            raise bad_request(f"Invalid directoryScopeId '{scope}'.", "InvalidDirectoryScope")
        return principal_id, role_id, scope

    def add_schedule(
        self,
        kind: str,
        principal_id: str,
        role_id: str,
        scope: str,
        start: datetime,
        end: datetime | None,
        assignment_type: str = "Assigned",
        expiration: dict[str, Any] | None = None,
        created_using: str | None = None,
    ) -> dict[str, Any]:
        schedule = {
            "id": str(uuid.uuid4()),
            "kind": kind,
            "principalId": principal_id,
            "roleDefinitionId": role_id,
            "directoryScopeId": scope,
            "assignmentType": assignment_type,
            "startDateTime": iso(start),
            "endDateTime": iso(end) if end else None,
            "expiration": expiration,
            "createdDateTime": now_iso(),
            "createdUsing": created_using,
            "modifiedDateTime": None,
        }
        self.dir.put_role_schedule(schedule)
        return schedule

    # ---- schedules and instances ---------------------------------------------------------------

    def _lister(self, kind: str, instance: bool) -> Callable[[Call], Reply]:
        segment = (
            "roleAssignmentSchedule" if kind == ASSIGNMENT else "roleEligibilitySchedule"
        ) + ("Instances" if instance else "s")

        def handler(call: Call) -> Reply:
            items = self._filtered(
                call, self._schedules(kind, instance), SCHEDULE_FILTERABLE, segment
            )
            ctx = f"roleManagement/directory/{segment}"

            def render(s: dict[str, Any]) -> dict[str, Any]:
                return self._render_schedule(s, instance)

            return Reply(200, query.collection(call, items, render, ctx))

        return handler

    def _getter(self, kind: str, instance: bool) -> Callable[[Call, str], Reply]:
        def handler(call: Call, key: str) -> Reply:
            s = self.dir.role_schedules.get(key)
            if s is None or s["kind"] != kind or not schedule_live(s, datetime.now(UTC), instance):
                raise not_found(key)
            return Reply(200, self._render_schedule(s, instance))

        return handler

    # ---- schedule requests ---------------------------------------------------------------------

    def _request_lister(self, kind: str) -> Callable[[Call], Reply]:
        segment = f"role{'Assignment' if kind == ASSIGNMENT else 'Eligibility'}ScheduleRequests"

        def handler(call: Call) -> Reply:
            items = [r for r in self.dir.role_requests.values() if r["kind"] == kind]
            items = self._filtered(call, items, REQUEST_FILTERABLE, segment)
            ctx = f"roleManagement/directory/{segment}"
            return Reply(200, query.collection(call, items, self._render_request, ctx))

        return handler

    def _request_getter(self, kind: str) -> Callable[[Call, str], Reply]:
        def handler(call: Call, key: str) -> Reply:
            r = self.dir.role_requests.get(key)
            if r is None or r["kind"] != kind:
                raise not_found(key)
            return Reply(200, self._render_request(r))

        return handler

    @staticmethod
    def _render_request(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k != "kind"}

    def _requester(self, kind: str) -> Callable[[Call], Reply]:
        segment = f"role{'Assignment' if kind == ASSIGNMENT else 'Eligibility'}ScheduleRequests"

        def handler(call: Call) -> Reply:
            request = self.submit(kind, _params(call.body))
            ctx = self._context(call, f"{segment}/$entity")
            return Reply(201, {"@odata.context": ctx, **self._render_request(request)})

        return handler

    def submit(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        action = params.get("action")
        allowed = ASSIGNMENT_ACTIONS if kind == ASSIGNMENT else ELIGIBILITY_ACTIONS
        if action not in allowed:
            raise bad_request(
                f"The request action '{action}' is not supported; expected one of "
                f"{sorted(allowed)}.",
                "InvalidRequestAction",
            )
        principal_id, role_id, scope = self._target(params)
        now = datetime.now(UTC)
        start, end, expiration = schedule_window(params.get("scheduleInfo"), now)
        request_id = str(uuid.uuid4())
        status = "Provisioned"
        target: dict[str, Any] | None = None

        if action == "adminAssign":
            if self.matching(kind, principal_id, role_id, scope):
                raise bad_request("The Role assignment already exists.", "RoleAssignmentExists")
            target = self.add_schedule(
                kind, principal_id, role_id, scope, start, end, "Assigned", expiration, request_id
            )
        elif action == "selfActivate":
            eligible = self.matching(ELIGIBILITY, principal_id, role_id, scope, started=True)
            if not eligible:
                raise bad_request(
                    'The following policy rules failed: ["EligibilityRule"]',
                    "RoleAssignmentRequestPolicyValidationFailed",
                )
            if end is None:
                # Entra's default policy bounds every activation.
                raise bad_request(
                    'The following policy rules failed: ["ExpirationRule"]',
                    "RoleAssignmentRequestPolicyValidationFailed",
                )
            if self.matching(ASSIGNMENT, principal_id, role_id, scope):
                raise bad_request("The Role assignment already exists.", "RoleAssignmentExists")
            target = self.add_schedule(
                kind, principal_id, role_id, scope, start, end, "Activated", expiration, request_id
            )
        elif action in ("selfDeactivate", "adminRemove"):
            found = [
                s
                for s in self.matching(kind, principal_id, role_id, scope)
                # A person deactivates only what they activated.
                if action == "adminRemove" or s["assignmentType"] == "Activated"
            ]
            if not found:
                raise bad_request(
                    "The Role assignment does not exist.", "RoleAssignmentDoesNotExist"
                )
            for s in found:
                self.dir.delete_role_schedule(s["id"])
            target, status = found[0], "Revoked"
        else:  # adminUpdate, adminExtend: a new window on the existing schedule
            found = self.matching(kind, principal_id, role_id, scope)
            if not found:
                raise bad_request(
                    "The Role assignment does not exist.", "RoleAssignmentDoesNotExist"
                )
            target = {
                **found[0],
                "startDateTime": iso(start),
                "endDateTime": iso(end) if end else None,
                "expiration": expiration,
                "modifiedDateTime": now_iso(),
            }
            self.dir.put_role_schedule(target)

        if status == "Provisioned" and start > now:
            status = "Scheduled"  # a future start: granted, not yet in force
        ticket = params.get("ticketInfo") if isinstance(params.get("ticketInfo"), dict) else {}
        request = {
            "kind": kind,
            "id": request_id,
            "status": status,
            "action": action,
            "principalId": principal_id,
            "roleDefinitionId": role_id,
            "directoryScopeId": scope,
            "appScopeId": None,
            "isValidationOnly": False,
            "targetScheduleId": target["id"] if target else None,
            "justification": params.get("justification"),
            "createdDateTime": iso(now),
            "completedDateTime": iso(now),
            "approvalId": None,
            "customData": None,
            "createdBy": None,
            "scheduleInfo": {
                "startDateTime": iso(start),
                "recurrence": None,
                "expiration": expiration,
            },
            "ticketInfo": {
                "ticketNumber": ticket.get("ticketNumber"),
                "ticketSystem": ticket.get("ticketSystem"),
            },
        }
        self.dir.put_role_request(request)
        return request
