"""Graph v1.0 `identityGovernance/privilegedAccess/group`: PIM for groups.

As in `roles`, one stored record, a *schedule*, backs everything: an assignment schedule is at once
a privilegedAccessGroupAssignmentSchedule and (while its window is open) an
assignmentScheduleInstance; an eligibility schedule likewise backs its eligibility instance.
Schedules and instances are judged against the clock on every read. Requests are kept as the audit
trail Graph also keeps.

The effect is Entra's: while an assignment is in force, its principal is a member of the group
(`accessId` "member", seen at /groups/{id}/members and /users/{id}/memberOf) or an owner ("owner",
/groups/{id}/owners). The membership is real directory state, so every other route sees it. The
clock is applied by `sync`, which the app runs before every Graph call, including each request of
a `$batch`. It costs nothing until the earliest pending start or end is reached. Then it adds the
membership of an assignment that has started and takes away that of one that has ended, and the
ended schedule is dropped. So an expiry is visible on the first read after it, wherever that read
is, and no background sweeper is needed.

Removal (adminRemove, selfDeactivate, expiry, the control surface's reset) takes away the
PIM assignment and the membership or ownership that assignment *gave*. A principal who was
already a direct member (or owner, added through `$ref`) when the assignment came into force keeps
that direct membership: PIM did not give it, so PIM does not take it. Conversely a membership PIM
gave and that was then removed through `$ref` is not added again; the assignment simply runs out.
Direct memberships are not shown as PIM assignments (Entra lists them as permanent ones).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emulators.graph import query
from emulators.graph.errors import GraphError, bad_request, not_found, now_iso
from emulators.graph.roles import (
    ASSIGNMENT_ACTIONS,
    ELIGIBILITY_ACTIONS,
    iso,
    parse_time,
    schedule_live,
    schedule_window,
)
from emulators.graph.store import Directory
from emulators.graph.wire import Call, Reply

PREFIX = r"/identityGovernance/privilegedAccess/group"
CONTEXT = "identityGovernance/privilegedAccess/group"
ASSIGNMENT, ELIGIBILITY = "assignment", "eligibility"
ACCESS_IDS = ("member", "owner")
ASSIGNMENT_FILTERABLE = ("id", "groupId", "principalId", "accessId", "assignmentType")
ELIGIBILITY_FILTERABLE = ("id", "groupId", "principalId", "accessId")
REQUEST_FILTERABLE = ("id", "groupId", "principalId", "accessId", "action", "status")
# Graph refuses these lists unless $filter scopes them to a principal or a group.
SCOPING = frozenset({"groupId", "principalId"})
# What an assignment in force did to the directory (stored as the schedule's "applied").
GRANTED = "granted"  # PIM added the membership/ownership, and takes it away again
HELD = "held"  # the principal already held it directly; PIM leaves it alone


def _params(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
    return body


def _segment(kind: str, what: str) -> str:
    """`assignmentSchedules`, `eligibilityScheduleInstances`, `assignmentScheduleRequests`..."""
    return f"{kind}Schedule{what}"


def _resource(segment: str) -> str:
    """The entity type a segment lists, as $filter errors name it."""
    return "privilegedAccessGroup" + segment[0].upper() + segment[1:].removesuffix("s")


class PimGroups:
    def __init__(self, directory: Directory) -> None:
        self.dir = directory
        self._due: datetime | None = None  # earliest pending start or end of an assignment
        self._refresh_due()  # a restart on the same file catches up on its first call
        self._compiled = [
            (method, re.compile(pattern + "$", re.IGNORECASE), handler)
            for method, pattern, handler in self.routes()
        ]

    def routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        out: list[tuple[str, str, Callable[..., Reply]]] = []
        for kind in (ASSIGNMENT, ELIGIBILITY):
            requests = f"{PREFIX}/{_segment(kind, 'Requests')}"
            schedules = f"{PREFIX}/{_segment(kind, 's')}"
            instances = f"{PREFIX}/{_segment(kind, 'Instances')}"
            out += [
                ("GET", requests, self._request_lister(kind)),
                ("POST", requests, self._requester(kind)),
                ("GET", requests + r"/([^/]+)", self._request_getter(kind)),
                ("GET", schedules, self._lister(kind, False)),
                ("GET", schedules + r"/([^/]+)", self._getter(kind, False)),
                ("GET", instances, self._lister(kind, True)),
                ("GET", instances + r"/([^/]+)", self._getter(kind, True)),
            ]
        return out

    def dispatch(self, call: Call) -> Reply | None:
        """Answer a call on PIM for groups; None when the path is not one of ours."""
        path = call.path.rstrip("/") or "/"
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
        return None

    # ---- the clock and the directory ------------------------------------------------------------

    def sync(self) -> None:
        """Add the memberships of assignments that have started, take away those that ended."""
        now = datetime.now(UTC)
        if self._due is None or now < self._due:
            return
        for s in [s for s in self.dir.group_schedules.values() if s["kind"] == ASSIGNMENT]:
            self._reconcile(s, now)
        self._refresh_due()

    def reset(self) -> None:
        """Forget all PIM-for-groups state, with the memberships and ownerships it gave."""
        for s in [s for s in self.dir.group_schedules.values() if s["kind"] == ASSIGNMENT]:
            self._withdraw(s)
        self.dir.clear_group_pim()
        self._due = None

    def _refresh_due(self) -> None:
        due: datetime | None = None
        for s in self.dir.group_schedules.values():
            if s["kind"] != ASSIGNMENT:
                continue
            if s.get("applied") is None:
                moment: datetime | None = parse_time(s["startDateTime"])
            else:
                moment = parse_time(s["endDateTime"]) if s.get("endDateTime") else None
            if moment is not None and (due is None or moment < due):
                due = moment
        self._due = due

    def _holders(self, s: dict[str, Any]) -> dict[str, None]:
        relation = self.dir.members if s["accessId"] == "member" else self.dir.owners
        return relation.get(s["groupId"], {})

    def _withdraw(self, s: dict[str, Any]) -> None:
        """Take away the membership or ownership `s` gave, if it did and it is still there."""
        if s.get("applied") != GRANTED or s["principalId"] not in self._holders(s):
            return
        if s["accessId"] == "member":
            self.dir.remove_member(s["groupId"], s["principalId"])
        else:
            self.dir.remove_owner(s["groupId"], s["principalId"])

    def _reconcile(self, s: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        """Make the directory match assignment `s` now; answer it as stored (None once ended)."""
        if not schedule_live(s, now, False):
            self._withdraw(s)
            self.dir.delete_group_schedule(s["id"])
            return None
        in_force = parse_time(s["startDateTime"]) <= now
        applied = s.get("applied")
        if in_force and applied is None:
            applied = HELD if s["principalId"] in self._holders(s) else GRANTED
            if applied == GRANTED and s["accessId"] == "member":
                self.dir.add_member(s["groupId"], s["principalId"])
            elif applied == GRANTED:
                self.dir.add_owner(s["groupId"], s["principalId"])
        elif not in_force and applied is not None:  # an update moved its start to later
            self._withdraw(s)
            applied = None
        else:
            return s
        updated = {**s, "applied": applied}
        self.dir.put_group_schedule(updated)
        return updated

    # ---- helpers -------------------------------------------------------------------------------

    def _schedules(self, kind: str, started: bool) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            s
            for s in self.dir.group_schedules.values()
            if s["kind"] == kind and schedule_live(s, now, started)
        ]

    def matching(
        self, kind: str, principal_id: str, group_id: str, access_id: str, started: bool = False
    ) -> list[dict[str, Any]]:
        return [
            s
            for s in self._schedules(kind, started)
            if s["principalId"] == principal_id
            and s["groupId"] == group_id
            and s["accessId"] == access_id
        ]

    @staticmethod
    def _filtered(
        call: Call, items: list[dict[str, Any]], allowed: tuple[str, ...], name: str
    ) -> list[dict[str, Any]]:
        expression = call.query.get("filter")
        clauses = query.parse_filter(expression, allowed, name) if expression else []
        if not any(prop in SCOPING for prop, _ in clauses):
            raise bad_request(
                "The $filter must scope the request to a principalId or a groupId "
                "(e.g. groupId eq '{groupId}').",
                "BadRequest",
            )
        return [i for i in items if query.matches(i, clauses)]

    # ---- rendering -----------------------------------------------------------------------------

    @staticmethod
    def _render_schedule(s: dict[str, Any], instance: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": s["id"],
            "accessId": s["accessId"],
            "principalId": s["principalId"],
            "groupId": s["groupId"],
            "memberType": "Direct",
        }
        if s["kind"] == ASSIGNMENT:
            out["assignmentType"] = s["assignmentType"]
        if instance:
            out["startDateTime"] = s["startDateTime"]
            out["endDateTime"] = s.get("endDateTime")
            out[f"{s['kind']}ScheduleId"] = s["id"]
            return out
        out.update(
            createdDateTime=s["createdDateTime"],
            createdUsing=s.get("createdUsing"),
            modifiedDateTime=s.get("modifiedDateTime"),
            status="Provisioned",
            scheduleInfo={
                "startDateTime": s["startDateTime"],
                "recurrence": None,
                "expiration": s["expiration"],
            },
        )
        return out

    @staticmethod
    def _render_request(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k != "kind"}

    # ---- schedules and instances ---------------------------------------------------------------

    def _lister(self, kind: str, instance: bool) -> Callable[[Call], Reply]:
        segment = _segment(kind, "Instances" if instance else "s")
        allowed = ASSIGNMENT_FILTERABLE if kind == ASSIGNMENT else ELIGIBILITY_FILTERABLE
        resource = _resource(segment)

        def handler(call: Call) -> Reply:
            items = self._filtered(call, self._schedules(kind, instance), allowed, resource)

            def render(s: dict[str, Any]) -> dict[str, Any]:
                return self._render_schedule(s, instance)

            return Reply(200, query.collection(call, items, render, f"{CONTEXT}/{segment}"))

        return handler

    def _getter(self, kind: str, instance: bool) -> Callable[[Call, str], Reply]:
        segment = _segment(kind, "Instances" if instance else "s")

        def handler(call: Call, key: str) -> Reply:
            s = self.dir.group_schedules.get(key)
            if s is None or s["kind"] != kind or not schedule_live(s, datetime.now(UTC), instance):
                raise not_found(key)
            ctx = f"{call.service_root}/$metadata#{CONTEXT}/{segment}/$entity"
            return Reply(200, {"@odata.context": ctx, **self._render_schedule(s, instance)})

        return handler

    # ---- schedule requests ---------------------------------------------------------------------

    def _request_lister(self, kind: str) -> Callable[[Call], Reply]:
        segment = _segment(kind, "Requests")
        resource = _resource(segment)

        def handler(call: Call) -> Reply:
            items = [r for r in self.dir.group_requests.values() if r["kind"] == kind]
            items = self._filtered(call, items, REQUEST_FILTERABLE, resource)
            ctx = f"{CONTEXT}/{segment}"
            return Reply(200, query.collection(call, items, self._render_request, ctx))

        return handler

    def _request_getter(self, kind: str) -> Callable[[Call, str], Reply]:
        segment = _segment(kind, "Requests")

        def handler(call: Call, key: str) -> Reply:
            r = self.dir.group_requests.get(key)
            if r is None or r["kind"] != kind:
                raise not_found(key)
            ctx = f"{call.service_root}/$metadata#{CONTEXT}/{segment}/$entity"
            return Reply(200, {"@odata.context": ctx, **self._render_request(r)})

        return handler

    def _requester(self, kind: str) -> Callable[[Call], Reply]:
        segment = _segment(kind, "Requests")

        def handler(call: Call) -> Reply:
            request = self.submit(kind, _params(call.body))
            ctx = f"{call.service_root}/$metadata#{CONTEXT}/{segment}/$entity"
            return Reply(201, {"@odata.context": ctx, **self._render_request(request)})

        return handler

    def _target(self, params: dict[str, Any]) -> tuple[str, str, str]:
        """principalId, groupId and accessId of a request, validated."""
        for prop in ("accessId", "principalId", "groupId"):
            if not isinstance(params.get(prop), str) or not params[prop]:
                raise bad_request(f"A value is required for property '{prop}'.", "BadRequest")
        access_id = params["accessId"]
        if access_id not in ACCESS_IDS:
            raise bad_request(
                f"Cannot convert the literal '{access_id}' to the expected type "
                "'microsoft.graph.privilegedAccessGroupRelationships'.",
                "BadRequest",
            )
        group_id = params["groupId"]
        if group_id not in self.dir.groups:
            raise not_found(group_id)
        principal_id = params["principalId"]
        found = self.dir.find_object(principal_id)
        if found is None:
            raise not_found(principal_id)
        if found[0] == "group":
            raise bad_request(
                f"Object '{principal_id}' is a group: the emulator does not model nested groups."
            )
        return principal_id, group_id, access_id

    def _add_schedule(
        self,
        kind: str,
        target: tuple[str, str, str],
        window: tuple[datetime, datetime | None, dict[str, Any]],
        assignment_type: str,
        created_using: str,
    ) -> dict[str, Any]:
        principal_id, group_id, access_id = target
        start, end, expiration = window
        schedule = {
            # Graph's shape: {groupId}_{accessId}_{guid}.
            "id": f"{group_id}_{access_id}_{uuid.uuid4()}",
            "kind": kind,
            "accessId": access_id,
            "principalId": principal_id,
            "groupId": group_id,
            "assignmentType": assignment_type,
            "startDateTime": iso(start),
            "endDateTime": iso(end) if end else None,
            "expiration": expiration,
            "createdDateTime": now_iso(),
            "createdUsing": created_using,
            "modifiedDateTime": None,
            "applied": None,
        }
        self.dir.put_group_schedule(schedule)
        return schedule

    def submit(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        action = params.get("action")
        allowed = ASSIGNMENT_ACTIONS if kind == ASSIGNMENT else ELIGIBILITY_ACTIONS
        if action not in allowed:
            raise bad_request(
                f"The request action '{action}' is not supported; expected one of "
                f"{sorted(allowed)}.",
                "InvalidRequestAction",
            )
        target = self._target(params)
        now = datetime.now(UTC)
        window = schedule_window(params.get("scheduleInfo"), now)
        start, end, expiration = window
        request_id = str(uuid.uuid4())
        status = "Provisioned"
        schedule: dict[str, Any] | None = None

        if action == "adminAssign":
            if self.matching(kind, *target):
                raise bad_request("The Role assignment already exists.", "RoleAssignmentExists")
            schedule = self._add_schedule(kind, target, window, "Assigned", request_id)
        elif action == "selfActivate":
            if not self.matching(ELIGIBILITY, *target, started=True):
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
            if self.matching(ASSIGNMENT, *target):
                raise bad_request("The Role assignment already exists.", "RoleAssignmentExists")
            schedule = self._add_schedule(kind, target, window, "Activated", request_id)
        elif action in ("selfDeactivate", "adminRemove"):
            found = [
                s
                for s in self.matching(kind, *target)
                # A person deactivates only what they activated.
                if action == "adminRemove" or s["assignmentType"] == "Activated"
            ]
            if not found:
                raise bad_request(
                    "The Role assignment does not exist.", "RoleAssignmentDoesNotExist"
                )
            for s in found:
                self._withdraw(s)
                self.dir.delete_group_schedule(s["id"])
            schedule, status = found[0], "Revoked"
        else:  # adminUpdate, adminExtend: a new window on the existing schedule
            found = self.matching(kind, *target)
            if not found:
                raise bad_request(
                    "The Role assignment does not exist.", "RoleAssignmentDoesNotExist"
                )
            schedule = {
                **found[0],
                "startDateTime": iso(start),
                "endDateTime": iso(end) if end else None,
                "expiration": expiration,
                "modifiedDateTime": now_iso(),
            }
            self.dir.put_group_schedule(schedule)

        if kind == ASSIGNMENT and status != "Revoked":
            self._reconcile(schedule, now)
        self._refresh_due()
        if status == "Provisioned" and start > now:
            status = "Scheduled"  # a future start: granted, not yet in force
        principal_id, group_id, access_id = target
        ticket = params.get("ticketInfo") if isinstance(params.get("ticketInfo"), dict) else {}
        request = {
            "kind": kind,
            "id": request_id,
            "status": status,
            "action": action,
            "accessId": access_id,
            "principalId": principal_id,
            "groupId": group_id,
            "targetScheduleId": schedule["id"],
            "isValidationOnly": False,
            "justification": params.get("justification"),
            "customData": params.get("customData"),
            "createdDateTime": iso(now),
            "completedDateTime": iso(now),
            "approvalId": None,
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
        self.dir.put_group_request(request)
        return request
