"""Access requests end to end over HTTP with people's tokens, on a running local stack.

`tenure stack run` (with its demo) starts on free ports with the demo policy plus one short-lived
package; the tests hire their own people through the intake API, get their tokens from the Graph
emulator's token endpoint, and read the effects in the Graph emulator and the SCIM app.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client

from connection.temporal import TemporalSettings, connect
from domain.access.request import RequestStatus
from domain.lifecycle.identity import LifecycleStage
from domain.policy.file import DEFAULT_POLICY_PATH, load_policy
from emulators.graph.tokens import EMULATED_USER_GRANT
from stack.demo_requests import DEMO_REQUESTS, WAITING_APPROVER
from stack.launcher import LaunchedStack, launched_stack
from tests.support.e2e import Apis, hire, identity, wait_all_applied, wait_until

pytestmark = pytest.mark.e2e

REQUESTS = "/v1/access/requests"
AUDIT = "/v1/audit/access-changes"
PROBLEM = "application/problem+json"

# A package whose end the requester chooses, so a grant can end seconds after it is approved.
SHORT = "e2e-short"
SHORT_GROUP = "E2E Short Access"
SHORT_ROLE = "e2e-role"
SHORT_RESOURCES = {f"group:{SHORT_GROUP}", f"app:ledger:{SHORT_ROLE}"}
GRANT_SECONDS = 20

MANAGER, REQUESTER, CLERK, STRANGER, AUDITOR = "E8100", "E8101", "E8102", "E8103", "E8104"
HIRES = [
    hire(MANAGER, department="Finance", job_title="Finance Manager", location="London"),
    hire(REQUESTER, department="Finance", job_title="Analyst", manager_id=MANAGER),
    hire(CLERK, department="Finance", job_title="Accounts Clerk", manager_id=MANAGER),
    hire(STRANGER, department="Sales", job_title="Account Executive"),
    hire(AUDITOR, department="People", job_title="Internal Auditor"),
]


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo policy with one more package: a Graph group and a ledger role, ended by choice."""
    policy = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    policy["groups"].append(SHORT_GROUP)
    policy["access"]["packages"][SHORT] = {
        "display_name": "E2E short-lived access",
        "catalog": "finance",
        "resources": [{"group": SHORT_GROUP}, {"app": "ledger", "role": SHORT_ROLE}],
        "policy": {
            "who_may_request": {"everyone": True},
            "stages": [{"name": "manager", "approvers": ["manager"], "deadline": "1d"}],
            "expiry": {"kind": "requester_chooses", "max": "1d"},
        },
    }
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False, allow_unicode=True))
    load_policy(path)  # a mistake here should fail here, not as a stack that will not start
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, policy_file: Path) -> Iterator[LaunchedStack]:
    with launched_stack(tmp_path_factory.mktemp("stack"), policy=policy_file, demo=True) as running:
        yield running


@pytest.fixture(scope="module")
async def temporal(stack: LaunchedStack) -> AsyncIterator[Client]:
    info = stack.info()["temporal"]
    yield await connect(TemporalSettings(address=info["address"], namespace=info["namespace"]))


class People:
    """Tokens from the emulator's token endpoint, and calls to the access API as a given person."""

    def __init__(self, apis: Apis) -> None:
        self.apis = apis
        self.audience = apis.info["api"]["token_audience"]
        self.tokens: dict[str, str] = {}

    async def token(self, employee_id: str, audience: str | None = None) -> str:
        response = await self.apis.control.post(
            self.apis.info["graph"]["token_endpoint"],
            data={
                "grant_type": EMULATED_USER_GRANT,
                "employee_id": employee_id,
                "scope": f"{audience or self.audience}/.default",
            },
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def set_roles(self, employee_id: str, roles: list[str]) -> None:
        response = await self.apis.control.put(f"/app-roles/{employee_id}", json={"roles": roles})
        assert response.status_code == 200, response.text
        self.tokens.pop(employee_id, None)  # roles are in the token: take a new one

    async def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if who not in self.tokens:
            self.tokens[who] = await self.token(who)
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.tokens[who]}"}
        return await self.apis.api.request(method, path, headers=headers, **kwargs)

    async def view(self, who: str, request_id: str) -> dict[str, Any]:
        response = await self.call(who, "GET", f"{REQUESTS}/{request_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def submit(self, who: str, body: dict[str, Any]) -> str:
        response = await self.call(who, "POST", REQUESTS, json=body)
        assert response.status_code == 202, response.text
        return response.json()["request_id"]

    async def wait_status(
        self, who: str, request_id: str, status: RequestStatus, timeout_s: float = 30
    ) -> dict[str, Any]:
        """The request once its record says `status` (and, when pending, its stage is open)."""
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            seen.update(await self.view(who, request_id))
            if seen["status"] != status.value:
                return False
            return status is not RequestStatus.PENDING_APPROVAL or bool(seen.get("waiting_on"))

        await wait_until(reached, timeout_s, f"{request_id} to be {status.value}")
        return seen


@pytest.fixture(scope="module")
async def people(stack: LaunchedStack, temporal: Client) -> AsyncIterator[People]:
    apis = Apis(stack.info())
    views = People(apis)
    response = await apis.post_events(HIRES)
    assert response.status_code == 202, response.text
    await wait_all_applied(temporal, HIRES, timeout_s=120)

    async def all_active() -> bool:
        for event in HIRES:
            state = await identity(temporal, event["worker"]["employee_id"])
            if state is None or state.stage is not LifecycleStage.ACTIVE:
                return False
        return True

    await wait_until(all_active, 60, "the test's people to be active")
    await views.set_roles(AUDITOR, ["Tenure.Auditor"])
    yield views
    await apis.aclose()


def short_request(seconds: float = GRANT_SECONDS) -> dict[str, Any]:
    end = datetime.now(UTC) + timedelta(seconds=seconds)
    return {
        "package_id": SHORT,
        "justification": "end-to-end test",
        "requested_end": end.isoformat(),
    }


async def group_member_ids(apis: Apis, display_name: str) -> list[str]:
    response = await apis.graph.get(
        "/groups", params={"$filter": f"displayName eq '{display_name}'"}
    )
    response.raise_for_status()
    [group] = response.json()["value"]
    members = await apis.graph.get(f"/groups/{group['id']}/members")
    members.raise_for_status()
    return [m["id"] for m in members.json()["value"]]


async def holds_short_access(apis: Apis, employee_id: str) -> tuple[bool, bool]:
    """(in the Graph group, has the ledger role)."""
    [user] = await apis.graph_users(employee_id)
    in_group = user["id"] in await group_member_ids(apis, SHORT_GROUP)
    accounts = await apis.scim_users("ledger", employee_id)
    role_members = await apis.scim_group_members("ledger", SHORT_ROLE) if accounts else []
    has_role = any(a["id"] in role_members for a in accounts)
    return in_group, has_role


async def test_approved_access_is_granted_in_graph_and_scim_then_expires(
    people: People,
) -> None:
    apis = people.apis
    assert await holds_short_access(apis, REQUESTER) == (False, False)
    request_id = await people.submit(REQUESTER, short_request())
    pending = await people.wait_status(REQUESTER, request_id, RequestStatus.PENDING_APPROVAL)
    assert pending["waiting_on"]["approvers"] == [MANAGER]

    decided = await people.call(
        MANAGER,
        "POST",
        f"{REQUESTS}/{request_id}/decision",
        json={"decision": "approve", "comment": "fine for the test"},
    )
    assert decided.status_code == 200, decided.text

    async def granted_everywhere() -> bool:
        return await holds_short_access(apis, REQUESTER) == (True, True)

    await wait_until(granted_everywhere, 20, "the group membership and the ledger role")
    granted = await people.wait_status(REQUESTER, request_id, RequestStatus.GRANTED)
    expires_at = datetime.fromisoformat(granted["expires_at"])
    assert expires_at - datetime.now(UTC) < timedelta(seconds=GRANT_SECONDS)

    wait_s = (expires_at - datetime.now(UTC)).total_seconds() + 20
    expired = await people.wait_status(REQUESTER, request_id, RequestStatus.EXPIRED, wait_s)
    assert await holds_short_access(apis, REQUESTER) == (False, False)
    removed = expired["story"][-1]
    assert removed["kind"] == "removed" and removed["data"]["reason"] == "expired"
    assert set(removed["data"]["resources"]) == SHORT_RESOURCES

    export = await people.call(AUDITOR, "GET", AUDIT, params={"employee_id": REQUESTER})
    assert export.status_code == 200, export.text
    assert export.headers["content-type"].startswith("application/x-ndjson")
    changes = [json.loads(line) for line in export.text.splitlines() if line.strip()]
    mine = [c for c in changes if c["cause"].get("request_id") == request_id]
    assert {(c["action"], c["resource"]) for c in mine} == {
        (action, resource) for action in ("granted", "removed") for resource in SHORT_RESOURCES
    }
    for change in mine:
        assert [a["by"] for a in change["cause"]["approvals"]] == [MANAGER]
        assert change["cause"]["requester"] == REQUESTER
    removals = [c for c in mine if c["action"] == "removed"]
    assert all(c["cause"]["reason"] == "expired" for c in removals)
    # The export is for auditors only.
    assert (await people.call(REQUESTER, "GET", AUDIT)).status_code == 403


async def test_calls_without_a_valid_token_are_refused(people: People) -> None:
    api = people.apis.api
    assert (await api.get(REQUESTS)).status_code == 401
    no_token = await api.post(REQUESTS, json=short_request())
    assert no_token.status_code == 401
    assert no_token.headers["content-type"].startswith(PROBLEM)
    assert no_token.headers["www-authenticate"].startswith("Bearer")

    # A real token of the same issuer, for another audience (another API of the tenant).
    other = await people.token(REQUESTER, audience="api://another-app")
    wrong_audience = await api.get(REQUESTS, headers={"Authorization": f"Bearer {other}"})
    assert wrong_audience.status_code == 401
    assert "invalid_token" in wrong_audience.headers["www-authenticate"]
    garbage = await api.get(REQUESTS, headers={"Authorization": "Bearer not.a.token"})
    assert garbage.status_code == 401
    # The right audience is accepted.
    assert (await people.call(REQUESTER, "GET", REQUESTS)).status_code == 200


async def test_a_decision_by_the_wrong_person_is_refused_and_recorded(people: People) -> None:
    request_id = await people.submit(REQUESTER, short_request(3600))
    await people.wait_status(REQUESTER, request_id, RequestStatus.PENDING_APPROVAL)
    decision = f"{REQUESTS}/{request_id}/decision"

    stranger = await people.call(STRANGER, "POST", decision, json={"decision": "approve"})
    assert stranger.status_code == 403, stranger.text
    assert stranger.headers["content-type"].startswith(PROBLEM)
    reason = stranger.json()["detail"]
    assert reason
    own = await people.call(REQUESTER, "POST", decision, json={"decision": "approve"})
    assert own.status_code == 403, own.text

    async def attempts_recorded() -> bool:
        story = (await people.view(REQUESTER, request_id))["story"]
        refused = [e for e in story if e["kind"] == "refused_attempt"]
        return {e["actor"] for e in refused} == {STRANGER, REQUESTER}

    await wait_until(attempts_recorded, 20, "the refused attempts in the request's story")
    view = await people.view(REQUESTER, request_id)
    [by_stranger] = [
        e for e in view["story"] if e["kind"] == "refused_attempt" and e["actor"] == STRANGER
    ]
    assert by_stranger["data"]["action"] == "decide"
    assert by_stranger["data"]["reason"] == reason
    assert view["status"] == RequestStatus.PENDING_APPROVAL.value  # nothing else changed

    cancelled = await people.call(
        REQUESTER, "POST", f"{REQUESTS}/{request_id}/cancel", json={"reason": "test over"}
    )
    assert cancelled.status_code == 200, cancelled.text
    await people.wait_status(REQUESTER, request_id, RequestStatus.CANCELLED)


def fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return {e["field"] for e in response.json()["errors"]}


async def test_malformed_bodies_are_422_naming_the_field(people: People) -> None:
    no_package = await people.call(REQUESTER, "POST", REQUESTS, json={"justification": "x"})
    assert "package_id" in fields(no_package)
    unknown = await people.call(REQUESTER, "POST", REQUESTS, json={"package_id": "no-such"})
    assert fields(unknown) == {"package_id"}
    no_end = await people.call(REQUESTER, "POST", REQUESTS, json={"package_id": SHORT})
    assert fields(no_end) == {"requested_end", "justification"}
    bad_json = await people.call(
        REQUESTER,
        "POST",
        REQUESTS,
        content=b'{"package_id": ',
        headers={"Content-Type": "application/json"},
    )
    assert fields(bad_json) == {"(body)"}
    assert "JSON" in bad_json.json()["detail"]

    decision = f"{REQUESTS}/access-request-{REQUESTER}-{SHORT}-0000000000/decision"
    maybe = await people.call(MANAGER, "POST", decision, json={"decision": "maybe"})
    assert fields(maybe) == {"decision"}


async def test_a_second_package_in_conflict_is_denied_naming_the_sod_rule(
    people: People,
) -> None:
    payables = await people.submit(
        CLERK, {"package_id": "accounts-payable", "justification": "supplier invoices"}
    )
    await people.wait_status(CLERK, payables, RequestStatus.PENDING_APPROVAL)
    approved = await people.call(
        MANAGER, "POST", f"{REQUESTS}/{payables}/decision", json={"decision": "approve"}
    )
    assert approved.status_code == 200, approved.text
    await people.wait_status(CLERK, payables, RequestStatus.GRANTED)

    receivables = await people.submit(
        CLERK, {"package_id": "accounts-receivable", "justification": "customer invoices"}
    )
    denied = await people.wait_status(CLERK, receivables, RequestStatus.DENIED)
    [sod] = [e for e in denied["story"] if e["kind"] == "sod"]
    assert sod["data"]["rule"] == "payables-vs-receivables"
    assert sod["data"]["held"] == "package:accounts-payable"
    assert "payables-vs-receivables" in sod["text"]
    assert denied["waiting_on"] is None and denied["stages"] == []


async def test_the_demo_makes_a_granted_a_denied_and_a_waiting_request(
    stack: LaunchedStack, people: People
) -> None:
    granted, denied, waiting = DEMO_REQUESTS

    async def demo_done() -> bool:
        log = stack.log_path.read_text()
        # A line per request, "... (id)" or "demo request id not made: ..."; or one line when
        # none could be made ("demo requests not made" / "failed").
        return "demo requests" in log or all(
            f"({r.request_id})" in log or f"demo request {r.request_id} not made" in log
            for r in DEMO_REQUESTS
        )

    await wait_until(demo_done, 120, "the demo requests")
    log = stack.log_path.read_text()
    assert "not made" not in log and "demo requests failed" not in log, log[-3000:]

    # E0001 holds Tenure.Admin (given by the demo), so sees every request.
    admin = await people.view("E0001", granted.request_id)
    assert admin["status"] == RequestStatus.GRANTED.value
    assert admin["requester_id"] == granted.requester_id
    assert any(
        e["kind"] == "decision" and e["actor"] == granted.approver_id for e in admin["story"]
    )

    refused = await people.view("E0001", denied.request_id)
    assert refused["status"] == RequestStatus.DENIED.value
    assert any(
        e["kind"] == "sod" and e["data"].get("rule") == "payables-vs-receivables"
        for e in refused["story"]
    )

    pending = await people.view("E0001", waiting.request_id)
    assert pending["status"] == RequestStatus.PENDING_APPROVAL.value
    assert pending["waiting_on"]["approvers"] == [WAITING_APPROVER]
    assert pending["answers"] == {"ticket": "CHG-1042", "environment": "eu"}
    approvals = await people.call(WAITING_APPROVER, "GET", "/v1/access/approvals")
    assert approvals.status_code == 200
    assert [r["request_id"] for r in approvals.json()["requests"]] == [waiting.request_id]
    for request in DEMO_REQUESTS:
        assert f"({request.request_id})" in log

    # The auditor role the demo gives lets E0005 export the record.
    export = await people.call("E0005", "GET", AUDIT, params={"employee_id": granted.requester_id})
    assert export.status_code == 200
    assert any(
        json.loads(line)["cause"].get("request_id") == granted.request_id
        for line in export.text.splitlines()
    )
