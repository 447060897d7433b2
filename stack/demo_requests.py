"""The demo's access requests, made through the API as its people would, once the demo HR feed is in.

Three requests show the request workflow's main paths in Temporal UI and `tenure requests`:

1. E0007 (Finance) asks for `accounts-payable`; their manager E0002 approves: granted.
2. E0007 then asks for `accounts-receivable`: denied by the SoD rule payables-vs-receivables.
3. E0010 (Engineering) asks for `production-db-read` for 14 days: waiting for their manager E0003.

Tokens come from the Graph emulator's token endpoint (the stack's emulator token authorises it), so
the API verifies them as it would Entra's. Each request carries a fixed Idempotency-Key: a second
`make run` finds the same requests rather than making new ones. E0001 gets the Tenure.Admin app role
and E0005 Tenure.Auditor, so the audit export and revocation can be tried as them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from domain.access.request import RequestStatus, request_workflow_id
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import IdentityContract, LifecycleStage
from emulators.graph.tokens import emulated_user_token_form
from stack.demo_pim import HOLDER, PLANTED, run_demo_pim
from stack.demo_reviews import REVIEW_STARTER, run_demo_reviews

APP_ROLES: dict[str, list[str]] = {"E0001": ["Tenure.Admin"], "E0005": ["Tenure.Auditor"]}
# How long the demo waits for its people to be provisioned and active, and for each request to
# reach the state it shows.
PEOPLE_TIMEOUT_S = 180.0
SETTLE_TIMEOUT_S = 60.0
POLL_S = 1.0
# A request still moving: submitted (checks running) or granting (resources being applied).
_MOVING = (RequestStatus.SUBMITTED, RequestStatus.GRANTING)


@dataclass(frozen=True)
class DemoRequest:
    key: str  # the Idempotency-Key: fixed, so every run names the same request
    requester_id: str
    package_id: str
    justification: str = ""
    answers: dict[str, str] = field(default_factory=dict)
    end_in_days: int | None = None  # for packages whose end the requester chooses
    approver_id: str | None = None  # who approves it in the demo; None leaves it as it stands

    @property
    def request_id(self) -> str:
        # The API scopes a key to its caller; the requester is the beneficiary here.
        return request_workflow_id(
            self.requester_id, self.package_id, f"{self.requester_id}:{self.key}"
        )

    def body(self, now: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {"package_id": self.package_id, "justification": self.justification}
        if self.answers:
            body["answers"] = dict(self.answers)
        if self.end_in_days is not None:
            body["requested_end"] = (now + timedelta(days=self.end_in_days)).isoformat()
        return body


DEMO_REQUESTS: tuple[DemoRequest, ...] = (
    DemoRequest(
        key="tenure-demo-1-accounts-payable",
        requester_id="E0007",
        package_id="accounts-payable",
        justification="Taking over supplier invoices from Tomás, who leaves today.",
        approver_id="E0002",
    ),
    DemoRequest(
        key="tenure-demo-2-accounts-receivable",
        requester_id="E0007",
        package_id="accounts-receivable",
        justification="Also covering customer invoices for a while.",
    ),
    DemoRequest(
        key="tenure-demo-3-production-db-read",
        requester_id="E0010",
        package_id="production-db-read",
        justification="Investigating slow queries behind the EU checkout incident.",
        answers={"ticket": "CHG-1042", "environment": "eu"},
        end_in_days=14,
    ),
)
# The request left waiting, and who is asked to decide it first (the requester's manager).
WAITING = DEMO_REQUESTS[2]
WAITING_APPROVER = "E0003"


def demo_people() -> list[str]:
    """Everyone the demo needs active: requesters, approvers, the waiting one's approver, and the
    administrator who starts the demo review."""
    ids = [r.requester_id for r in DEMO_REQUESTS]
    ids += [r.approver_id for r in DEMO_REQUESTS if r.approver_id]
    return list(dict.fromkeys([*ids, WAITING_APPROVER, REVIEW_STARTER, HOLDER, PLANTED[0]]))


class DemoRequestError(Exception):
    """The demo requests could not be made; the message says what failed."""


@dataclass(frozen=True)
class DemoEndpoints:
    api_url: str
    token_endpoint: str
    control_url: str  # the Graph emulator's /_emulator
    graph_token: str  # the emulator's control token: app roles and the token endpoint
    audience: str


@dataclass(frozen=True)
class DemoOutcome:
    request: DemoRequest
    request_id: str
    status: RequestStatus
    note: str = ""


async def identity_active(client: Client, employee_id: str) -> bool:
    """Whether Tenure has the person active (their joiner has finished).

    The query's answer is read as plain JSON, whatever data converter the client has."""
    handle = client.get_workflow_handle(identity_workflow_id(employee_id))
    try:
        details = await handle.query(
            IdentityContract.QUERY_DETAILS, rpc_timeout=timedelta(seconds=5)
        )
    except (RPCError, WorkflowQueryFailedError):
        return False
    return isinstance(details, dict) and details.get("stage") == LifecycleStage.ACTIVE.value


async def run_demo_requests(
    endpoints: DemoEndpoints,
    is_active: Callable[[str], Awaitable[bool]],
    say: Callable[[str], None],
    *,
    people_timeout_s: float = PEOPLE_TIMEOUT_S,
    settle_timeout_s: float = SETTLE_TIMEOUT_S,
) -> list[DemoOutcome]:
    """Make the demo requests (or find them again), saying each one's outcome; DemoRequestError
    when none could be made (app roles, people never active)."""
    async with httpx.AsyncClient(timeout=30) as http:
        demo = _Demo(endpoints, http, settle_timeout_s)
        await demo.assign_app_roles()
        await demo.wait_for_people(is_active, people_timeout_s)
        outcomes = []
        for request in DEMO_REQUESTS:
            try:
                outcome = await demo.make(request)
            except DemoRequestError as err:
                # Said, and the next one tried: each shows something on its own.
                say(f"[yellow]demo request {request.request_id} not made:[/] {err}")
                continue
            say(describe(outcome))
            outcomes.append(outcome)
        try:
            await run_demo_reviews(
                http,
                endpoints.api_url,
                endpoints.control_url,
                endpoints.graph_token,
                demo.auth,
                say,
            )
        except httpx.HTTPError as err:
            say(f"[yellow]demo review not started:[/] {err!r}")
        try:
            await run_demo_pim(
                http,
                endpoints.api_url,
                endpoints.control_url,
                endpoints.token_endpoint,
                endpoints.graph_token,
                endpoints.audience,
                demo.auth,
                say,
            )
        except httpx.HTTPError as err:
            say(f"[yellow]demo PIM not made:[/] {err!r}")
        return outcomes


def describe(outcome: DemoOutcome) -> str:
    request = outcome.request
    line = (
        f"demo request: {request.requester_id} asks for {request.package_id}: "
        f"{outcome.status.value} ({outcome.request_id})"
    )
    return line + (f"; {outcome.note}" if outcome.note else "")


class _Demo:
    def __init__(self, endpoints: DemoEndpoints, http: httpx.AsyncClient, settle_s: float) -> None:
        self.endpoints = endpoints
        self.http = http
        self.settle_s = settle_s
        self.tokens: dict[str, str] = {}

    async def assign_app_roles(self) -> None:
        headers = {"Authorization": f"Bearer {self.endpoints.graph_token}"}
        for employee_id, roles in APP_ROLES.items():
            url = f"{self.endpoints.control_url}/app-roles/{employee_id}"
            response = await self._call("PUT", url, json={"roles": roles}, headers=headers)
            if response.status_code != 200:
                raise DemoRequestError(_refused("PUT", url, response))

    async def wait_for_people(
        self, is_active: Callable[[str], Awaitable[bool]], timeout_s: float
    ) -> None:
        """Until every person the demo needs is active and can get a token (bounded)."""
        waiting = demo_people()
        deadline = time.monotonic() + timeout_s
        while True:
            still = []
            for employee_id in waiting:
                if not await is_active(employee_id) or not await self._try_token(employee_id):
                    still.append(employee_id)
            waiting = still
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise DemoRequestError(
                    f"{', '.join(waiting)} not active after {timeout_s:.0f}s (are their hires "
                    "still running? see Temporal UI and the worker's log); no demo requests made"
                )
            await asyncio.sleep(POLL_S)

    async def _try_token(self, employee_id: str) -> bool:
        if employee_id in self.tokens:
            return True
        form = emulated_user_token_form(employee_id, self.endpoints.audience)
        headers = {"Authorization": f"Bearer {self.endpoints.graph_token}"}
        url = self.endpoints.token_endpoint
        response = await self._call("POST", url, data=form, headers=headers)
        if response.status_code == 200:
            self.tokens[employee_id] = response.json()["access_token"]
            return True
        if response.status_code == 400 and _json(response).get("error") == "invalid_grant":
            return False  # not in the directory yet, or not enabled yet
        raise DemoRequestError(_refused("POST", url, response))

    def auth(self, employee_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[employee_id]}"}

    async def make(self, request: DemoRequest) -> DemoOutcome:
        url = f"{self.endpoints.api_url}/v1/access/requests"
        headers = {**self.auth(request.requester_id), "Idempotency-Key": request.key}
        response = await self._call(
            "POST", url, json=request.body(datetime.now(UTC)), headers=headers
        )
        if response.status_code != 202:
            raise DemoRequestError(_refused("POST", url, response))
        request_id = response.json()["request_id"]
        approver = request.approver_id
        view = await self._settled(
            request, request_id, lambda view: _at_rest(view, approver=approver)
        )
        note = ""
        if approver and _waiting_for(view, approver):
            note = await self._approve(request, request_id)
            # The demo's approval completes the request's only stage: wait until the record shows
            # it moved on (the record may first show the decision in a stage not closed yet).
            view = await self._settled(
                request,
                request_id,
                lambda view: (
                    _at_rest(view)
                    and RequestStatus(view["status"]) is not RequestStatus.PENDING_APPROVAL
                ),
            )
        status = RequestStatus(view["status"])
        if status is RequestStatus.PENDING_APPROVAL and view.get("waiting_on"):
            stage = view["waiting_on"]
            decided = {*stage.get("approved_by", ()), *stage.get("denied_by", ())}
            undecided = [a for a in stage["approvers"] if a not in decided]
            note = f"waiting for {', '.join(undecided) or 'nobody'}"
        elif status is RequestStatus.DENIED:
            note = _denial(view)
        return DemoOutcome(request, request_id, status, note)

    async def _approve(self, request: DemoRequest, request_id: str) -> str:
        assert request.approver_id is not None
        url = f"{self.endpoints.api_url}/v1/access/requests/{request_id}/decision"
        body = {"decision": "approve", "comment": "Approved for the demo."}
        response = await self._call("POST", url, json=body, headers=self.auth(request.approver_id))
        if response.status_code == 200:
            return f"approved by {request.approver_id}"
        if response.status_code == 409:
            return ""  # decided on an earlier run
        raise DemoRequestError(_refused("POST", url, response))

    async def _settled(
        self, request: DemoRequest, request_id: str, done: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The request's view (read as its requester) once `done` holds, within the settle time."""
        url = f"{self.endpoints.api_url}/v1/access/requests/{request_id}"
        deadline = time.monotonic() + self.settle_s
        while True:
            response = await self._call("GET", url, headers=self.auth(request.requester_id))
            if response.status_code not in (200, 503):  # 503: Temporal busy, try again
                raise DemoRequestError(_refused("GET", url, response))
            view = response.json() if response.status_code == 200 else None
            if view is not None and done(view):
                return view
            if time.monotonic() > deadline:
                seen = view["status"] if view is not None else "unreadable"
                raise DemoRequestError(
                    f"request {request_id} still {seen} after {self.settle_s:.0f}s"
                )
            await asyncio.sleep(POLL_S)

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as err:
            raise DemoRequestError(f"{method} {url}: {err!r}") from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refused(method: str, url: str, response: httpx.Response) -> str:
    return f"{method} {url} answered {response.status_code}: {response.text[:300]}"


def _at_rest(view: dict[str, Any], approver: str | None = None) -> bool:
    """Not moving on its own any more: closed, granted, or waiting in an open stage (that asks
    `approver`, when given)."""
    status = RequestStatus(view["status"])
    if status in _MOVING:
        return False
    if status is not RequestStatus.PENDING_APPROVAL:
        return True
    waiting = view.get("waiting_on")
    return bool(waiting) and (approver is None or _waiting_for(view, approver))


def _waiting_for(view: dict[str, Any], approver: str) -> bool:
    """The request's open stage still needs `approver`'s decision."""
    waiting = view.get("waiting_on") or {}
    if RequestStatus(view["status"]) is not RequestStatus.PENDING_APPROVAL:
        return False
    decided = [*waiting.get("approved_by", ()), *waiting.get("denied_by", ())]
    return approver in waiting.get("approvers", ()) and approver not in decided


def _denial(view: dict[str, Any]) -> str:
    """Why it was denied: the SoD or eligibility line of its story, else its last line."""
    story = view.get("story") or []
    for entry in story:
        if entry.get("kind") == "sod" and entry.get("data", {}).get("rule"):
            data = entry["data"]
            return f"SoD rule {data['rule']}: conflicts with {data.get('held', '?')}"
    return story[-1]["text"] if story else ""
