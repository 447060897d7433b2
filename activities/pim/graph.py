"""PIM's Graph calls: activate, deactivate and check a privileged role for one person, and keep
their eligibility (the contract is domain/pim/graph.py).

Both kinds of privileged role go through PIM's schedule requests, built by hand as JSON:

- a directory role: `roleManagement/directory/role{Assignment,Eligibility}Schedule{Requests,
  Instances}`, by principalId, roleDefinitionId (the template id) and directoryScopeId "/";
- a privileged group: `identityGovernance/privilegedAccess/group/{assignment,eligibility}
  Schedule{Requests,Instances}`, by principalId, groupId (resolved from the display name through
  the shared cache) and accessId member | owner.

Every write looks up first (docs/architecture.md, rule 3), so a retry is safe: what is already
active up to the asked end is returned as it is, an earlier end is moved (adminUpdate), and a
request Graph answers with RoleAssignmentExists (a race, or the retry of an attempt whose answer
was lost) is followed by a fresh look. Removing what is already gone (RoleAssignmentDoesNotExist:
expired, removed by someone else) is success with removed=False. Any other refusal (400: a policy
rule, a bad schedule) fails for good as `PimRequestRefused` with Graph's code and message;
throttling and outages stay retryable (activities/graph/errors.py).

Times go to Graph in whole seconds (activities/graph/odata.graph_time), and ends are compared in
whole seconds, so an end Graph echoes without its fraction still counts as the one asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.graph import errors as graph_errors
from activities.graph.directory import GraphDirectory
from activities.graph.odata import graph_time, odata_quote, parse_graph_time
from activities.unsendable import UNSENDABLE
from domain.pim.graph import (
    ActivateRoleInput,
    ActiveAssignment,
    ActiveAssignmentInput,
    AssignEligibilityInput,
    DeactivateRoleInput,
    DeactivateRoleResult,
    EligibilityInput,
    GraphEligibility,
    PimGraphActivityNames,
    RemoveEligibilityInput,
    RoleTarget,
)
from domain.pim.roles import RoleKind

TENANT_SCOPE = "/"
DIRECTORY_PIM = "roleManagement/directory"
GROUP_PIM = "identityGovernance/privilegedAccess/group"
ASSIGNMENT, ELIGIBILITY = "assignment", "eligibility"
# Graph's limit on a schedule request's justification.
JUSTIFICATION_LIMIT = 500
# Look, write, look again: a write that meets a concurrent change gets this many tries before the
# attempt fails (retryably) and Temporal tries again later.
ATTEMPTS = 3
# The outcomes of one schedule request.
DONE, EXISTS, MISSING = "done", "exists", "missing"
_EXISTS_CODES = frozenset({"roleassignmentexists"})
_MISSING_CODES = frozenset({"roleassignmentdoesnotexist"})
# Request statuses meaning Graph did what was asked (or will, by itself: a scheduled start).
_ACCEPTED = frozenset(
    {
        "granted",
        "provisioned",
        "pendingprovisioning",
        "pendingschedulecreation",
        "schedulecreated",
        "scheduled",
        "revoked",
    }
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _second(value: datetime) -> datetime:
    """The instant to whole seconds (UTC): what Graph is sent, and how ends are compared."""
    return _utc(value).replace(microsecond=0)


def _now() -> datetime:
    return datetime.now(UTC)


def _covers(held: datetime | None, asked: datetime) -> bool:
    """A held end at or after the asked one (None: permanent, covers everything)."""
    return held is None or _second(held) >= _second(asked)


def _same_end(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return _second(a) == _second(b)


def _latest(items: list[Any]) -> Any:
    """The item ending last (a permanent one first); None for none."""
    if not items:
        return None
    return max(items, key=lambda i: (i.end is None, i.end or datetime.min.replace(tzinfo=UTC)))


def _schedule(start: datetime, end: datetime | None) -> dict[str, Any]:
    expiration: dict[str, Any] = (
        {"type": "noExpiration"}
        if end is None
        else {"type": "afterDateTime", "endDateTime": graph_time(end)}
    )
    return {"startDateTime": graph_time(start), "expiration": expiration}


def _justification(text: str, default: str, *tags: str) -> str:
    """The text with its tags (`[pim-activation-…]`, `[ticket …]`) kept whole within Graph's
    limit: an auditor reading Graph finds the Tenure run even when the text is long."""
    suffix = "".join(f" [{tag}]" for tag in tags if tag)
    body = " ".join(text.split()) or default
    room = JUSTIFICATION_LIMIT - len(suffix)
    if len(body) > room:
        body = body[: max(room - 1, 0)].rstrip() + "…"
    return (body + suffix)[:JUSTIFICATION_LIMIT].strip()


def _assignment_type(raw: Any) -> str:
    """Graph writes `Assigned`/`Activated` for directory roles, `assigned`/`activated` for groups."""
    text = str(raw or "Assigned")
    return text[:1].upper() + text[1:]


def _granted_window(
    answer: dict[str, Any], start: datetime, end: datetime | None
) -> tuple[datetime, datetime | None]:
    """(start, end) as a schedule request's answer echoes them; what was sent where it is silent."""
    info = answer.get("scheduleInfo")
    if not isinstance(info, dict):
        return start, end
    expiration = info.get("expiration") or {}
    granted_start = parse_graph_time(info.get("startDateTime")) or start
    if expiration.get("type") == "noExpiration":
        return granted_start, None
    return granted_start, parse_graph_time(expiration.get("endDateTime")) or end


@dataclass(frozen=True)
class _Where:
    """One person's privileged role, as PIM's endpoints address it."""

    root: str
    principal_id: str
    target: RoleTarget
    group_id: str | None = None  # a privileged group's object id

    @property
    def is_group(self) -> bool:
        return self.target.kind is RoleKind.PRIVILEGED_GROUP

    def describe(self) -> str:
        return f"{self.target.describe()} for principal {self.principal_id}"

    def collection(self, kind: str, what: str) -> str:
        """`what`: "Requests" or "Instances"."""
        if self.is_group:
            return f"{self.root}/{GROUP_PIM}/{kind}Schedule{what}"
        return f"{self.root}/{DIRECTORY_PIM}/role{kind.capitalize()}Schedule{what}"

    def instances_url(self, kind: str) -> str:
        if self.is_group:
            assert self.group_id is not None
            expression = (
                f"groupId eq {odata_quote(self.group_id)} and "
                f"principalId eq {odata_quote(self.principal_id)}"
            )
        else:
            assert self.target.template_id is not None
            expression = (
                f"principalId eq {odata_quote(self.principal_id)} and "
                f"roleDefinitionId eq {odata_quote(self.target.template_id)}"
            )
        # Quoted whole (spaces, quotes): the URL is given as it is to GraphDirectory._get.
        return f"{self.collection(kind, 'Instances')}?$filter={quote(expression, safe='')}"

    def holds(self, item: dict[str, Any]) -> bool:
        """An instance of this role for this person (the filter is not trusted to be complete:
        groups are filtered by principal and group only, and scopes other than "/" are kept out)."""
        if str(item.get("principalId") or "").lower() != self.principal_id.lower():
            return False
        if self.is_group:
            return (
                str(item.get("groupId") or "").lower() == (self.group_id or "").lower()
                and str(item.get("accessId") or "").lower() == self.target.access.value
            )
        return (
            str(item.get("roleDefinitionId") or "").lower()
            == (self.target.template_id or "").lower()
            and (item.get("directoryScopeId") or TENANT_SCOPE) == TENANT_SCOPE
        )

    def request(self, action: str, **extra: Any) -> dict[str, Any]:
        if self.is_group:
            keys: dict[str, Any] = {
                "accessId": self.target.access.value,
                "principalId": self.principal_id,
                "groupId": self.group_id,
            }
        else:
            keys = {
                "principalId": self.principal_id,
                "roleDefinitionId": self.target.template_id,
                "directoryScopeId": TENANT_SCOPE,
            }
        return {"action": action, **keys, **extra}


class PimGraphActivities(GraphDirectory):
    """PIM activations and eligibilities in Graph; the client is injected by the worker."""

    # ---- activities ----------------------------------------------------------------------------

    @activity.defn(name=PimGraphActivityNames.ACTIVATE)
    async def activate_role(self, input: ActivateRoleInput) -> ActiveAssignment:
        where = await self._where(input.principal_id, input.target)
        call = f"activate {where.describe()}"
        end = _second(input.end)
        if end <= _now():
            raise ApplicationError(
                f"{call}: the activation was to end at {graph_time(end)}, which has passed",
                type="PimRequestRefused",
                non_retryable=True,
            )
        tags = [input.activation_id, f"ticket {input.ticket}" if input.ticket else ""]
        extra: dict[str, Any] = {
            "justification": _justification(input.justification, "Activated by Tenure", *tags)
        }
        if input.ticket:
            extra["ticketInfo"] = {"ticketNumber": input.ticket}
        last: str | None = None
        for _ in range(ATTEMPTS):
            held = _latest(await self._assignments(where))
            if held is not None and _covers(held.end, end):
                return held
            action = self._action(held is not None, last)
            start = _second(_now())
            last, answer = await self._submit(
                where, ASSIGNMENT, action, {"scheduleInfo": _schedule(start, end), **extra}, call
            )
            if last == DONE:
                granted_start, granted_end = _granted_window(answer, start, end)
                return ActiveAssignment(
                    principal_id=input.principal_id,
                    target=input.target,
                    start=granted_start,
                    end=granted_end,
                    assignment_type=held.assignment_type if held is not None else "Assigned",
                )
        raise ApplicationError(
            f"{call}: the assignment changed under every attempt (last: {last})",
            type="PimAssignmentConflict",
        )

    @activity.defn(name=PimGraphActivityNames.DEACTIVATE)
    async def deactivate_role(self, input: DeactivateRoleInput) -> DeactivateRoleResult:
        where = await self._where(input.principal_id, input.target)
        extra = {"justification": _justification(input.reason, "Deactivated by Tenure")}
        outcome, _ = await self._submit(
            where, ASSIGNMENT, "adminRemove", extra, f"deactivate {where.describe()}"
        )
        return DeactivateRoleResult(removed=outcome == DONE)

    @activity.defn(name=PimGraphActivityNames.ACTIVE_ASSIGNMENT)
    async def active_assignment(self, input: ActiveAssignmentInput) -> ActiveAssignment | None:
        where = await self._where(input.principal_id, input.target)
        return _latest(await self._assignments(where))

    @activity.defn(name=PimGraphActivityNames.ELIGIBILITY)
    async def eligibility(self, input: EligibilityInput) -> GraphEligibility | None:
        where = await self._where(input.principal_id, input.target)
        return _latest(await self._eligibilities(where))

    @activity.defn(name=PimGraphActivityNames.ASSIGN_ELIGIBILITY)
    async def assign_eligibility(self, input: AssignEligibilityInput) -> GraphEligibility:
        where = await self._where(input.principal_id, input.target)
        call = f"make eligible {where.describe()}"
        end = _second(input.end) if input.end is not None else None
        extra = {"justification": _justification(input.justification, "Eligibility kept by Tenure")}
        last: str | None = None
        for _ in range(ATTEMPTS):
            held = _latest(await self._eligibilities(where))
            if held is not None and _same_end(held.end, end):
                return held
            action = self._action(held is not None, last)
            # Graph takes a start in the past badly; one already begun starts now.
            start = max(_second(input.start), _second(_now()))
            last, answer = await self._submit(
                where, ELIGIBILITY, action, {"scheduleInfo": _schedule(start, end), **extra}, call
            )
            if last == DONE:
                granted_start, granted_end = _granted_window(answer, start, end)
                return GraphEligibility(
                    principal_id=input.principal_id,
                    target=input.target,
                    start=granted_start,
                    end=granted_end,
                )
        raise ApplicationError(
            f"{call}: the eligibility changed under every attempt (last: {last})",
            type="PimAssignmentConflict",
        )

    @activity.defn(name=PimGraphActivityNames.REMOVE_ELIGIBILITY)
    async def remove_eligibility(self, input: RemoveEligibilityInput) -> DeactivateRoleResult:
        where = await self._where(input.principal_id, input.target)
        extra = {"justification": _justification(input.reason, "Eligibility removed by Tenure")}
        outcome, _ = await self._submit(
            where, ELIGIBILITY, "adminRemove", extra, f"remove eligibility of {where.describe()}"
        )
        return DeactivateRoleResult(removed=outcome == DONE)

    # ---- lookups -------------------------------------------------------------------------------

    @staticmethod
    def _action(held: bool, last: str | None) -> str:
        """Update what is there (seen, or Graph said it exists); assign what is not (never seen,
        or Graph said the one seen is gone)."""
        if last == EXISTS or (held and last != MISSING):
            return "adminUpdate"
        return "adminAssign"

    async def _where(self, principal_id: str, target: RoleTarget) -> _Where:
        if target.kind is RoleKind.DIRECTORY_ROLE:
            if not target.template_id:
                raise ApplicationError(
                    "a directory role target needs its template id",
                    type="PimTargetInvalid",
                    non_retryable=True,
                )
            return _Where(self._root, principal_id, target)
        if not target.group:
            raise ApplicationError(
                "a privileged group target needs the group's display name",
                type="PimTargetInvalid",
                non_retryable=True,
            )
        group_id = (await self._resolve_groups([target.group]))[target.group]
        return _Where(self._root, principal_id, target, group_id)

    async def _instances(self, where: _Where, kind: str) -> list[dict[str, Any]]:
        call = f"read {kind} instances of {where.describe()}"
        url: str | None = where.instances_url(kind)
        found: list[dict[str, Any]] = []
        while url:
            page = await self._send(where, self._get(url), call)
            found += [item for item in page.get("value") or [] if where.holds(item)]
            url = page.get("@odata.nextLink")
        return found

    async def _assignments(self, where: _Where) -> list[ActiveAssignment]:
        """What is in force now (instances that have begun and not ended)."""
        now = _now()
        held = []
        for item in await self._instances(where, ASSIGNMENT):
            start = parse_graph_time(item.get("startDateTime"))
            end = parse_graph_time(item.get("endDateTime"))
            if (start is not None and start > now) or (end is not None and end <= now):
                continue
            held.append(
                ActiveAssignment(
                    principal_id=where.principal_id,
                    target=where.target,
                    start=start,
                    end=end,
                    assignment_type=_assignment_type(item.get("assignmentType")),
                )
            )
        return held

    async def _eligibilities(self, where: _Where) -> list[GraphEligibility]:
        """Eligibilities not yet ended (one that begins later is held all the same)."""
        now = _now()
        held = []
        for item in await self._instances(where, ELIGIBILITY):
            end = parse_graph_time(item.get("endDateTime"))
            if end is not None and end <= now:
                continue
            held.append(
                GraphEligibility(
                    principal_id=where.principal_id,
                    target=where.target,
                    start=parse_graph_time(item.get("startDateTime")) or now,
                    end=end,
                )
            )
        return held

    # ---- calls ---------------------------------------------------------------------------------

    def _forget_group(self, where: _Where) -> None:
        # A 404 naming a group may be a stale cached id (the group deleted and made again).
        if where.is_group and where.target.group:
            self._group_ids.pop(where.target.group, None)

    async def _send(self, where: _Where, request: RequestInformation, call: str) -> dict[str, Any]:
        try:
            return await self._send_for_json(request)
        except APIError as err:
            if graph_errors.status_of(err) == 404:
                self._forget_group(where)
            raise graph_errors.to_application_error(err, call) from None
        except (httpx.TransportError, *UNSENDABLE) as err:
            raise graph_errors.to_application_error(err, call) from None

    async def _submit(
        self, where: _Where, kind: str, action: str, extra: dict[str, Any], call: str
    ) -> tuple[str, dict[str, Any]]:
        """POST one schedule request: DONE with Graph's answer, or EXISTS / MISSING when Graph
        says the assignment already exists / does not exist. Every other refusal raises."""
        request = RequestInformation(Method.POST)
        request.url = where.collection(kind, "Requests")
        request.headers.try_add("Content-Type", "application/json")
        request.content = json.dumps(where.request(action, **extra)).encode()
        call = f"{call} ({action})"
        try:
            answer = await self._send_for_json(request)
        except APIError as err:
            status = graph_errors.status_of(err)
            code = graph_errors.graph_code(err)
            message = graph_errors.graph_message(err)
            if status == 400 and code.lower() in _EXISTS_CODES:
                return EXISTS, {}
            if status == 400 and code.lower() in _MISSING_CODES:
                return MISSING, {}
            if status == 400:
                # A policy rule (RoleAssignmentRequestPolicyValidationFailed), a bad schedule, a
                # group not under PIM: the same request would be refused again.
                raise ApplicationError(
                    f"{call}: Graph refused the request"
                    + (f" ({code})" if code else "")
                    + (f": {message}" if message else ""),
                    type="PimRequestRefused",
                    non_retryable=True,
                ) from None
            if status == 404:
                self._forget_group(where)
            raise graph_errors.to_application_error(err, call) from None
        except (httpx.TransportError, *UNSENDABLE) as err:
            raise graph_errors.to_application_error(err, call) from None
        status = str(answer.get("status") or "")
        if status and status.lower() not in _ACCEPTED:
            # Pending approval in Entra, denied, failed: Tenure approves before it asks, so a
            # request Graph holds back is a tenant setting to fix, not something to wait for.
            raise ApplicationError(
                f"{call}: Graph took the request but left it {status}",
                type="PimRequestRefused",
                non_retryable=True,
            )
        return DONE, answer
