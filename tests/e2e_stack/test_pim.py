"""Privileged access end to end over HTTP with tokens, on the running local stack (its policy is
the demo's, with `user-admin` and `global-admin`): an eligibility an administrator assigns, an
activation visible in the emulator's role assignments and gone after its end, an activation
refused without MFA; and an incident posted with the SIEM's credentials that disables the
account and revokes sessions within 5 s, ends the activation, and changes nothing when replayed;
bad credentials 401, malformed incidents 422, an unknown user 404, never a 5xx."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from temporalio.client import Client

from domain.pim.alert_scan import PimAlertContract
from domain.security.incident import IncidentContract, incident_workflow_id
from emulators.graph.tokens import emulated_user_token_form
from tests.support.e2e import Apis, hire, identity, wait_until

pytestmark = pytest.mark.e2e

ADMIN, HOLDER, SUSPECT = "E8101", "E8102", "E8103"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


async def token(apis: Apis, employee_id: str, *, mfa: bool = False) -> dict[str, str]:
    form = emulated_user_token_form(employee_id, apis.info["api"]["token_audience"], mfa=mfa)
    response = await apis.control.post(apis.info["graph"]["token_endpoint"], data=form)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def user_of(apis: Apis, employee_id: str) -> dict[str, Any]:
    response = await apis.graph.get(
        "/users",
        params={
            "$filter": f"employeeId eq '{employee_id}'",
            "$select": "id,userPrincipalName,accountEnabled,signInSessionsValidFromDateTime",
        },
    )
    response.raise_for_status()
    return response.json()["value"][0]


async def role_holders(apis: Apis, template_id: str) -> list[str]:
    response = await apis.graph.get(
        "/roleManagement/directory/roleAssignments",
        params={"$filter": f"roleDefinitionId eq '{template_id}'"},
    )
    response.raise_for_status()
    return [a["principalId"] for a in response.json()["value"]]


@pytest.fixture(scope="module")
async def people(apis: Apis, temporal: Client) -> dict[str, dict[str, str]]:
    events = [hire(e, department="Engineering") for e in (ADMIN, HOLDER, SUSPECT)]
    assert (await apis.post_events(events)).status_code == 202

    async def active() -> bool:
        states = [await identity(temporal, e) for e in (ADMIN, HOLDER, SUSPECT)]
        return all(
            s is not None and s.stage.value == "active" and not s.running_transition for s in states
        )

    await wait_until(active, 90, "the PIM people's hires")
    (
        await apis.control.put(f"/app-roles/{ADMIN}", json={"roles": ["Tenure.Admin"]})
    ).raise_for_status()
    admin = await token(apis, ADMIN)
    for person in (HOLDER, SUSPECT):
        made = await apis.api.post(
            "/v1/pim/eligibilities",
            json={"employee_id": person, "role_id": "user-admin", "justification": "on call"},
            headers=admin,
        )
        assert made.status_code == 202, made.text
    return {ADMIN: admin, HOLDER: await token(apis, HOLDER, mfa=True)}


async def activation(apis: Apis, headers: dict[str, str], activation_id: str) -> dict[str, Any]:
    response = await apis.api.get(f"/v1/pim/activations/{activation_id}", headers=headers)
    response.raise_for_status()
    return response.json()


async def activate(apis: Apis, employee_id: str, duration: str) -> tuple[str, dict[str, str]]:
    """Activate user-admin with MFA once the eligibility is in Graph (its own run writes it)."""
    headers = await token(apis, employee_id, mfa=True)
    body = {
        "role_id": "user-admin",
        "duration": duration,
        "justification": "e2e",
        "ticket": "INC-4242",
    }
    deadline = time.monotonic() + 30
    while True:
        answer = await apis.api.post("/v1/pim/activations", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["activation_id"]

        async def settled(run_id: str = run_id) -> bool:
            view = await activation(apis, headers, run_id)
            return view["status"] not in ("submitted", "granting")

        await wait_until(settled, 15, "the activation settled")
        view = await activation(apis, headers, run_id)
        if view["status"] == "granted" or time.monotonic() > deadline:
            assert view["status"] == "granted", view["story"]
            return run_id, headers
        await asyncio.sleep(0.5)  # not eligible yet: the eligibility is still being written


async def test_activation_is_visible_in_graph_and_gone_after_its_end(
    apis: Apis, people: dict[str, dict[str, str]]
) -> None:
    principal = (await user_of(apis, HOLDER))["id"]
    # Without MFA the API refuses at once, naming the rule.
    plain = await token(apis, HOLDER)
    refused = await apis.api.post(
        "/v1/pim/activations",
        json={"role_id": "user-admin", "justification": "e2e", "ticket": "INC-4242"},
        headers=plain,
    )
    assert refused.status_code == 403
    assert "multi-factor" in refused.json()["detail"]

    run_id, headers = await activate(apis, HOLDER, "1m")
    assert principal in await role_holders(apis, USER_ADMIN)
    listed = await apis.api.get(
        "/v1/pim/activations", params={"status": "granted"}, headers=headers
    )
    assert run_id in [a["request_id"] for a in listed.json()["activations"]]

    async def gone() -> bool:
        return principal not in await role_holders(apis, USER_ADMIN)

    await wait_until(gone, 120, "the role removed at the activation's end")

    async def expired() -> bool:
        return (await activation(apis, headers, run_id))["status"] == "expired"

    await wait_until(expired, 30, "the activation expired")
    ended = await activation(apis, headers, run_id)
    kinds = [line["kind"] for line in ended["story"]]
    assert {"granted", "removed", "verified"} <= set(kinds)


async def test_incident_with_siem_credentials_suspends_within_seconds(
    apis: Apis, temporal: Client, people: dict[str, dict[str, str]]
) -> None:
    siem = {"Authorization": f"Bearer {apis.info['api']['siem_token']}"}
    await activate(apis, SUSPECT, "4h")
    before = await user_of(apis, SUSPECT)
    assert before["accountEnabled"] is True
    report = {
        "incident_id": "E2E-INC-1",
        "user": before["userPrincipalName"],
        "severity": "critical",
        "title": "token theft",
        "source": "sentinel",
    }
    started = time.monotonic()
    posted = await apis.api.post("/v1/security/incidents", json=report, headers=siem)
    assert posted.status_code == 202, posted.text
    assert posted.json()["employee_id"] == SUSPECT
    # A lost workflow task is handed out again within seconds, not Temporal's default 10 s.
    described = await temporal.get_workflow_handle(incident_workflow_id("E2E-INC-1")).describe()
    config = described.raw_description.execution_config
    assert config.default_workflow_task_timeout.ToTimedelta() == IncidentContract.TASK_TIMEOUT

    async def cut_off() -> bool:
        user = await user_of(apis, SUSPECT)
        return user["accountEnabled"] is False and bool(user.get("signInSessionsValidFromDateTime"))

    await wait_until(cut_off, 5, "sign-in disabled and sessions revoked")
    assert time.monotonic() - started < 5

    async def role_ended() -> bool:
        return before["id"] not in await role_holders(apis, USER_ADMIN)

    await wait_until(role_ended, 10, "the activation ended")
    admin = people[ADMIN]

    async def settled() -> bool:
        shown = await apis.api.get("/v1/security/incidents/E2E-INC-1", headers=admin)
        steps = shown.json()["steps"] if shown.status_code == 200 else []
        return any(step["kind"] in ("notified", "not_notified") for step in steps)

    await wait_until(settled, 10, "the incident's response complete (the mails its last step)")
    shown = (await apis.api.get("/v1/security/incidents/E2E-INC-1", headers=admin)).json()

    # A replay changes nothing.
    again = await apis.api.post("/v1/security/incidents", json=report, headers=siem)
    assert again.status_code == 200 and again.json()["replay"] is True
    after = (await apis.api.get("/v1/security/incidents/E2E-INC-1", headers=admin)).json()
    assert len(after["steps"]) == len(shown["steps"])

    # An administrator restores: sign-in comes back, the ended activation stays ended.
    restored = await apis.api.post("/v1/security/incidents/E2E-INC-1/restore", headers=admin)
    assert restored.status_code == 200 and restored.json()["status"] == "restored"
    assert (await user_of(apis, SUSPECT))["accountEnabled"] is True
    assert before["id"] not in await role_holders(apis, USER_ADMIN)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, None, 401),
        ({"Authorization": "Bearer not-the-siem"}, None, 401),
        ("siem", {"incident_id": "E2E-BAD", "user": "E8101"}, 422),
        (
            "siem",
            {
                "incident_id": "E2E-BAD",
                "user": "x",
                "severity": "urgent",
                "title": "t",
                "source": "s",
            },
            422,
        ),
        (
            "siem",
            {
                "incident_id": "E2E-NOBODY",
                "user": "nobody@contoso.example.com",
                "severity": "low",
                "title": "t",
                "source": "s",
            },
            404,
        ),
        (
            "siem",
            {
                "incident_id": "E2E-NOBODY-2",
                "user": "E0000404",
                "severity": "low",
                "title": "t",
                "source": "s",
            },
            404,
        ),
    ],
)
async def test_bad_incidents_are_refused_clearly(
    apis: Apis, headers: Any, body: dict[str, Any] | None, status: int
) -> None:
    if headers == "siem":
        headers = {"Authorization": f"Bearer {apis.info['api']['siem_token']}"}
    sent = body or {
        "incident_id": "E2E-X",
        "user": "E8101",
        "severity": "low",
        "title": "t",
        "source": "s",
    }
    response = await apis.api.post("/v1/security/incidents", json=sent, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_alert_for_a_role_planted_outside_tenure(
    apis: Apis, temporal: Client, people: dict[str, dict[str, str]]
) -> None:
    principal = (await user_of(apis, ADMIN))["id"]
    planted = {"principal": principal, "role": GLOBAL_ADMIN, "permanent": True}
    (await apis.control.post("/seed", json={"roleAssignments": [planted]})).raise_for_status()
    # The stack synced the scan's Schedule; run it now rather than wait for the hour.
    await temporal.get_schedule_handle(PimAlertContract.SCHEDULE_ID).trigger()
    admin = people[ADMIN]

    async def raised() -> bool:
        answer = await apis.api.get("/v1/pim/alerts", headers=admin)
        return any(
            a["kind"] == "outside_tenure" and a["subject"] == ADMIN for a in answer.json()["alerts"]
        )

    await wait_until(raised, 60, "an outside_tenure alert for the planted role")
    alerts = (await apis.api.get("/v1/pim/alerts", headers=admin)).json()["alerts"]
    mine = [a for a in alerts if a["subject"] == ADMIN]
    assert {"outside_tenure", "permanent_active"} <= {a["kind"] for a in mine}
    # Nobody but auditors and administrators reads them.
    other = await apis.api.get("/v1/pim/alerts", headers=people[HOLDER])
    assert other.status_code == 403
