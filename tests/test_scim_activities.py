"""SCIM activities against a running scim2-server target (the SQLite-backed local emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.scim.activities import ScimActivities
from activities.scim.client import (
    ScimAppClient,
    ScimAppSettings,
    ScimSettingsError,
    scim_app_clients,
    scim_apps_from_env,
)
from domain.lifecycle.events import WorkerRecord
from domain.provisioning import EnsureScimUserInput, ScimUserKey, SetScimActiveInput
from tests.support.scim_server import ScimServer, running_scim_server

APP = "crm"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ScimServer]:
    async with running_scim_server() as running:
        yield running


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def activities(server: ScimServer, http: httpx.AsyncClient) -> ScimActivities:
    settings = {APP: ScimAppSettings(name=APP, base_url=server.base_url, token=server.token)}
    return ScimActivities(scim_app_clients(settings, http))


@pytest.fixture
async def scim(server: ScimServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client reading the target directly, to check what landed there."""
    headers = {"Authorization": f"Bearer {server.token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        yield client


env = ActivityEnvironment()


def joiner(employee_id: str, **worker: Any) -> EnsureScimUserInput:
    record = WorkerRecord(
        employee_id=employee_id,
        given_name=worker.pop("given_name", "Ada"),
        family_name=worker.pop("family_name", "Lovelace"),
        department=worker.pop("department", "Finance"),
        job_title=worker.pop("job_title", "Analyst"),
        **{k: worker.pop(k) for k in list(worker) if k in WorkerRecord.model_fields},
    )
    return EnsureScimUserInput(
        app=APP,
        worker=record,
        user_name=worker.pop("user_name", f"{employee_id.lower()}@example.com"),
        active=worker.pop("active", True),
        roles=worker.pop("roles", []),
    )


async def users_with(scim: httpx.AsyncClient, scim_filter: str) -> list[dict[str, Any]]:
    body = (await scim.get("/Users", params={"filter": scim_filter})).raise_for_status().json()
    return body.get("Resources", [])


async def groups_named(scim: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    params = {"filter": f'displayName eq "{name}"'}
    return (await scim.get("/Groups", params=params)).raise_for_status().json().get("Resources", [])


async def test_ensure_user_creates_the_account_with_the_enterprise_extension(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    ref = await env.run(activities.ensure_user, joiner("A100", employment_type="contractor"))

    assert ref.created and ref.app == APP
    user = (await scim.get(f"/Users/{ref.scim_id}")).raise_for_status().json()
    assert user["externalId"] == "A100"
    assert user["userName"] == "a100@example.com"
    assert user["name"] == {
        "givenName": "Ada",
        "familyName": "Lovelace",
        "formatted": "Ada Lovelace",
    }
    assert user["displayName"] == "Ada Lovelace"
    assert user["active"] is True
    assert user["title"] == "Analyst"
    assert user["userType"] == "contractor"
    assert user["emails"] == [{"value": "a100@example.com", "type": "work", "primary": True}]
    assert user[ENTERPRISE] == {"employeeNumber": "A100", "department": "Finance"}


async def test_ensure_user_twice_leaves_one_user_and_writes_nothing_new(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    first = await env.run(activities.ensure_user, joiner("A200"))
    version = (await scim.get(f"/Users/{first.scim_id}")).json()["meta"]["version"]

    second = await env.run(activities.ensure_user, joiner("A200"))

    assert (second.scim_id, second.created) == (first.scim_id, False)
    assert len(await users_with(scim, 'externalId eq "A200"')) == 1
    assert (await scim.get(f"/Users/{first.scim_id}")).json()["meta"]["version"] == version


async def test_ensure_user_updates_a_mover(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    ref = await env.run(activities.ensure_user, joiner("A250"))

    await env.run(activities.ensure_user, joiner("A250", department="Research", job_title=None))

    user = (await scim.get(f"/Users/{ref.scim_id}")).json()
    assert user[ENTERPRISE]["department"] == "Research"
    assert "title" not in user


async def test_manager_reference_is_resolved_once_the_manager_exists(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    # The report arrives first: no manager account yet, so the reference is left out.
    report = await env.run(activities.ensure_user, joiner("A301", manager_id="A300"))
    assert "manager" not in (await scim.get(f"/Users/{report.scim_id}")).json()[ENTERPRISE]

    boss = await env.run(activities.ensure_user, joiner("A300", given_name="Grace"))
    await env.run(activities.ensure_user, joiner("A301", manager_id="A300"))

    user = (await scim.get(f"/Users/{report.scim_id}")).json()
    assert user[ENTERPRISE]["manager"]["value"] == boss.scim_id

    # No manager in HR any more: the reference is cleared.
    await env.run(activities.ensure_user, joiner("A301"))
    assert "manager" not in (await scim.get(f"/Users/{report.scim_id}")).json()[ENTERPRISE]


async def test_roles_become_group_memberships_once(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    request = joiner("A400", roles=["crm-admin", "crm-viewer", "crm-admin"])
    ref = await env.run(activities.ensure_user, request)
    await env.run(activities.ensure_user, request)
    other = await env.run(activities.ensure_user, joiner("A401", roles=["crm-viewer"]))

    (admin,) = await groups_named(scim, "crm-admin")
    (viewer,) = await groups_named(scim, "crm-viewer")
    assert [m["value"] for m in admin["members"]] == [ref.scim_id]
    assert sorted(m["value"] for m in viewer["members"]) == sorted([ref.scim_id, other.scim_id])


async def test_roles_no_longer_implied_are_removed_and_removal_is_idempotent(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    ref = await env.run(activities.ensure_user, joiner("A410", roles=["gl-approver", "gl-user"]))
    other = await env.run(activities.ensure_user, joiner("A411", roles=["gl-approver"]))
    moved = joiner("A410", roles=["gl-user"])
    moved.remove_roles = ["gl-approver"]
    await env.run(activities.ensure_user, moved)
    await env.run(activities.ensure_user, moved)  # a retry: nothing left to remove

    (approver,) = await groups_named(scim, "gl-approver")
    (user,) = await groups_named(scim, "gl-user")
    assert [m["value"] for m in approver.get("members", [])] == [other.scim_id]
    assert [m["value"] for m in user["members"]] == [ref.scim_id]


async def test_set_active_false_then_true(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    ref = await env.run(activities.ensure_user, joiner("A500"))

    await env.run(
        activities.set_active, SetScimActiveInput(app=APP, external_id="A500", active=False)
    )
    assert (await scim.get(f"/Users/{ref.scim_id}")).json()["active"] is False
    await env.run(
        activities.set_active, SetScimActiveInput(app=APP, external_id="A500", active=False)
    )
    assert (await scim.get(f"/Users/{ref.scim_id}")).json()["active"] is False

    await env.run(
        activities.set_active, SetScimActiveInput(app=APP, external_id="A500", active=True)
    )
    assert (await scim.get(f"/Users/{ref.scim_id}")).json()["active"] is True


async def test_set_active_of_an_unknown_user_is_not_retried(activities: ScimActivities) -> None:
    with pytest.raises(ApplicationError) as caught:
        await env.run(
            activities.set_active, SetScimActiveInput(app=APP, external_id="NOPE", active=False)
        )
    assert caught.value.type == "ScimUserNotFound"
    assert caught.value.non_retryable


async def test_a_user_made_outside_tenure_with_our_external_id_is_adopted(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    made = await scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "old.name@example.com",
            "externalId": "A600",
            "nickName": "kept",
        },
    )
    made.raise_for_status()

    ref = await env.run(activities.ensure_user, joiner("A600"))

    assert (ref.scim_id, ref.created) == (made.json()["id"], False)
    (user,) = await users_with(scim, 'externalId eq "A600"')
    assert user["userName"] == "a600@example.com"
    assert user[ENTERPRISE]["employeeNumber"] == "A600"
    assert user["nickName"] == "kept"  # what Tenure does not manage is left alone


async def test_a_conflict_on_user_name_adopts_the_account_without_external_id(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    made = await scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "a700@example.com",
        },
    )
    made.raise_for_status()

    ref = await env.run(activities.ensure_user, joiner("A700"))

    assert (ref.scim_id, ref.created) == (made.json()["id"], False)
    assert [u["id"] for u in await users_with(scim, 'userName eq "a700@example.com"')] == [
        ref.scim_id
    ]
    assert (await scim.get(f"/Users/{ref.scim_id}")).json()["externalId"] == "A700"


async def test_a_user_name_held_by_another_employee_is_a_non_retryable_conflict(
    activities: ScimActivities,
) -> None:
    await env.run(activities.ensure_user, joiner("A800", user_name="shared@example.com"))

    with pytest.raises(ApplicationError) as caught:
        await env.run(activities.ensure_user, joiner("A801", user_name="shared@example.com"))
    assert caught.value.type == "ScimConflict"
    assert caught.value.non_retryable
    assert "crm" in str(caught.value)


async def test_delete_user_is_idempotent(
    activities: ScimActivities, scim: httpx.AsyncClient
) -> None:
    ref = await env.run(activities.ensure_user, joiner("A900"))

    await env.run(activities.delete_user, ScimUserKey(app=APP, external_id="A900"))
    await env.run(activities.delete_user, ScimUserKey(app=APP, external_id="A900"))

    assert (await scim.get(f"/Users/{ref.scim_id}")).status_code == 404
    assert await users_with(scim, 'externalId eq "A900"') == []


async def test_a_wrong_token_is_a_non_retryable_unauthorized(
    server: ScimServer, http: httpx.AsyncClient
) -> None:
    settings = {APP: ScimAppSettings(name=APP, base_url=server.base_url, token="wrong")}
    activities = ScimActivities(scim_app_clients(settings, http))

    with pytest.raises(ApplicationError) as caught:
        await env.run(activities.ensure_user, joiner("A1000"))
    assert caught.value.type == "ScimUnauthorized"
    assert caught.value.non_retryable
    assert "crm" in str(caught.value) and "wrong" not in str(caught.value)


async def test_an_unknown_app_is_not_retried(activities: ScimActivities) -> None:
    with pytest.raises(ApplicationError) as caught:
        await env.run(activities.delete_user, ScimUserKey(app="payroll", external_id="A1"))
    assert caught.value.type == "ScimAppUnknown"
    assert caught.value.non_retryable


# ---- error mapping and settings, without a server --------------------------------------------


def answering(status: int, headers: dict[str, str]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if status == 0:
            raise httpx.ConnectError("refused", request=request)
        body = {"detail": "nope", "status": str(status)}
        return httpx.Response(status, headers=headers, json=body)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(
    ("status", "headers", "error_type", "retryable", "delay"),
    [
        (429, {"Retry-After": "7"}, "ScimThrottled", True, timedelta(seconds=7)),
        (503, {}, "ScimThrottled", True, timedelta(seconds=5)),
        (429, {"Retry-After": "soon"}, "ScimThrottled", True, timedelta(seconds=5)),
        (500, {}, "ScimServerError", True, None),
        (0, {}, "ScimUnreachable", True, None),
        (400, {}, "ScimBadRequest", False, None),
        (401, {}, "ScimUnauthorized", False, None),
        (403, {}, "ScimForbidden", False, None),
    ],
)
async def test_http_failures_map_to_temporal_errors(
    status: int, headers: dict[str, str], error_type: str, retryable: bool, delay: timedelta | None
) -> None:
    settings = ScimAppSettings(name="crm", base_url="http://crm.example.com/v2", token="t")
    async with httpx.AsyncClient(transport=answering(status, headers)) as http:
        with pytest.raises(ApplicationError) as caught:
            await ScimAppClient(settings, http).find_user('externalId eq "E1"')
    assert caught.value.type == error_type
    assert caught.value.non_retryable is not retryable
    assert caught.value.next_retry_delay == delay
    assert caught.value.message.startswith("crm: find user")


def test_scim_apps_from_env_reads_url_and_token() -> None:
    environ = {
        "TENURE_SCIM_CRM_URL": "http://127.0.0.1:9001/v2/",
        "TENURE_SCIM_CRM_TOKEN": "t1",
        "TENURE_SCIM_HR_PORTAL_URL": "http://127.0.0.1:9002/v2",
        "TENURE_SCIM_HR_PORTAL_TOKEN": "t2",
    }
    apps = scim_apps_from_env(["crm", "hr-portal"], environ)
    assert apps["crm"] == ScimAppSettings("crm", "http://127.0.0.1:9001/v2", "t1")
    assert apps["hr-portal"].token == "t2"
    assert "t2" not in repr(apps["hr-portal"])


def test_scim_apps_from_env_names_the_missing_variable() -> None:
    with pytest.raises(ScimSettingsError, match="TENURE_SCIM_WIKI_TOKEN"):
        scim_apps_from_env(["wiki"], {"TENURE_SCIM_WIKI_URL": "http://x/v2"})
