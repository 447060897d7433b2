"""The Graph emulator's workload identities, driven by msgraph-sdk as an access review reads them:
service principals and app roles, app-role assignments both ways, owners, sign-in activity, the
beta service-principal sign-in report, the sign-in control route and the bulk seed."""

from __future__ import annotations

import base64
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.groups.item.members.members_request_builder import MembersRequestBuilder
from msgraph.generated.groups.item.owners.owners_request_builder import OwnersRequestBuilder
from msgraph.generated.models.app_role import AppRole
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.user import User
from msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder import (
    AppRoleAssignedToRequestBuilder,
)
from msgraph.generated.service_principals.service_principals_request_builder import (
    ServicePrincipalsRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from activities.graph.client import GraphSettings, build_graph_client
from emulators.graph.tokens import EMULATED_USER_GRANT
from tests.support.graph_emulator import GraphEmulatorHandle, running_graph_emulator

DOMAIN = "wl.example.com"
ZERO_ROLE = uuid.UUID(int=0)


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[GraphEmulatorHandle]:
    async with running_graph_emulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def graph(emulator: GraphEmulatorHandle) -> GraphServiceClient:
    return build_graph_client(GraphSettings(base_url=emulator.base_url, token=emulator.token))


@pytest.fixture
async def http(emulator: GraphEmulatorHandle) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP with the bearer token: the control surface and the /beta report."""
    async with httpx.AsyncClient(
        base_url=emulator.root, headers={"Authorization": f"Bearer {emulator.token}"}
    ) as client:
        yield client


def _query(builder: Any, **params: object) -> RequestConfiguration:
    # Each request builder has its own query-parameter class; all map to $filter/$select/$top.
    name = builder.__name__ + "GetQueryParameters"
    return RequestConfiguration(query_parameters=getattr(builder, name)(**params))


def new_user(**attributes: object) -> User:
    nickname = f"u{uuid.uuid4().hex[:10]}"
    return User(
        account_enabled=True,
        display_name=attributes.pop("display_name", nickname),
        mail_nickname=nickname,
        user_principal_name=f"{nickname}@{DOMAIN}",
        password_profile=PasswordProfile(password="Xy!" + uuid.uuid4().hex),
        **attributes,
    )


def role(value: str, *member_types: str, enabled: bool = True) -> AppRole:
    return AppRole(
        id=uuid.uuid4(),
        value=value,
        display_name=value,
        description=value,
        allowed_member_types=list(member_types),
        is_enabled=enabled,
    )


def ref(object_id: str) -> ReferenceCreate:
    return ReferenceCreate(
        odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"
    )


async def new_sp(graph: GraphServiceClient, name: str, *roles: AppRole) -> ServicePrincipal:
    sp = await graph.service_principals.post(
        ServicePrincipal(app_id=str(uuid.uuid4()), display_name=name, app_roles=list(roles))
    )
    assert sp and sp.id and sp.app_id
    return sp


async def new_group(graph: GraphServiceClient) -> Group:
    name = f"G {uuid.uuid4().hex[:8]}"
    group = await graph.groups.post(
        Group(display_name=name, mail_nickname=name, mail_enabled=False, security_enabled=True)
    )
    assert group and group.id
    return group


async def graph_error(call: Any) -> ODataError:
    with pytest.raises(ODataError) as caught:
        await call
    return caught.value


async def test_service_principals_list_filter_select_page_and_delete(
    graph: GraphServiceClient,
) -> None:
    marker = uuid.uuid4().hex[:6]
    made = [await new_sp(graph, f"app-{marker}-{i}", role("Reader", "User")) for i in range(5)]
    first = made[0]
    assert first.account_enabled is True and first.service_principal_type == "Application"
    assert first.app_roles and first.app_roles[0].value == "Reader"

    by_app_id = await graph.service_principals.get(
        request_configuration=_query(
            ServicePrincipalsRequestBuilder,
            filter=f"appId eq '{first.app_id}'",
            select=["id", "appId", "appRoles"],
        )
    )
    assert by_app_id and [s.id for s in by_app_id.value or []] == [first.id]
    only = (by_app_id.value or [])[0]
    assert only.display_name is None and only.app_roles and only.app_roles[0].value == "Reader"
    by_name = await graph.service_principals.get(
        request_configuration=_query(
            ServicePrincipalsRequestBuilder, filter=f"displayName eq 'APP-{marker}-3'"
        )
    )
    assert by_name and [s.id for s in by_name.value or []] == [made[3].id]

    seen: list[str] = []
    page = await graph.service_principals.get(
        request_configuration=_query(
            ServicePrincipalsRequestBuilder, select=["id", "displayName"], top=2
        )
    )
    while page is not None:
        assert len(page.value or []) <= 2
        seen += [s.id or "" for s in page.value or [] if marker in (s.display_name or "")]
        if not page.odata_next_link:
            break
        page = await graph.service_principals.with_url(page.odata_next_link).get()
    assert seen == [s.id for s in made]

    alternate = await graph.service_principals_with_app_id(first.app_id or "").get()
    assert alternate and alternate.id == first.id

    duplicate = await graph_error(
        graph.service_principals.post(ServicePrincipal(app_id=first.app_id))
    )
    assert duplicate.response_status_code == 409
    assert duplicate.error and duplicate.error.code == "Request_MultipleObjectsWithSameKeyValue"
    no_app_id = await graph_error(graph.service_principals.post(ServicePrincipal(display_name="x")))
    assert no_app_id.response_status_code == 400
    # v1.0 has no signInActivity on service principals (that is the beta report's job).
    no_sign_in = await graph_error(
        graph.service_principals.by_service_principal_id(first.id or "").get(
            request_configuration=_query(ServicePrincipalsRequestBuilder, select=["signInActivity"])
        )
    )
    assert no_sign_in.response_status_code == 400

    await graph.service_principals.by_service_principal_id(first.id or "").delete()
    gone = await graph_error(graph.service_principals.by_service_principal_id(first.id or "").get())
    assert gone.response_status_code == 404
    assert gone.error and gone.error.code == "Request_ResourceNotFound"
    unknown_key = await graph_error(graph.service_principals_with_app_id(str(uuid.uuid4())).get())
    assert unknown_key.response_status_code == 404


async def test_app_role_assignments_both_directions(graph: GraphServiceClient) -> None:
    reader, daemon, off = (
        role("Reader", "User"),
        role("Sync", "Application"),
        role("Old", "User", enabled=False),
    )
    resource = await new_sp(graph, "Payroll API", reader, daemon, off)
    client = await new_sp(graph, "Payroll sync job")
    user = await graph.users.post(new_user(display_name="Ada Review"))
    group = await new_group(graph)
    assert user and user.id and resource.id and client.id and group.id
    await graph.groups.by_group_id(group.id).members.ref.post(ref(user.id))
    assigned_to = graph.service_principals.by_service_principal_id(resource.id).app_role_assigned_to

    # To the resource: a user, then a group the user is in.
    to_user = await assigned_to.post(
        AppRoleAssignment(
            principal_id=uuid.UUID(user.id),
            resource_id=uuid.UUID(resource.id),
            app_role_id=reader.id,
        )
    )
    assert to_user and to_user.id
    assert (to_user.principal_type, to_user.principal_display_name) == ("User", "Ada Review")
    assert (to_user.resource_display_name, to_user.app_role_id) == ("Payroll API", reader.id)
    assert to_user.deleted_date_time is None and to_user.created_date_time is not None
    # Graph's assignment ids begin with the principal's GUID bytes, base64url-encoded.
    prefix = base64.urlsafe_b64encode(uuid.UUID(user.id).bytes_le).decode()[:21]
    assert to_user.id.startswith(prefix) and len(to_user.id) == 43
    to_group = await assigned_to.post(
        AppRoleAssignment(
            principal_id=uuid.UUID(group.id),
            resource_id=uuid.UUID(resource.id),
            app_role_id=ZERO_ROLE,
        )
    )
    assert to_group and to_group.principal_type == "Group"

    # Held by the principal: the client SP gets the application role.
    held_by_client = graph.service_principals.by_service_principal_id(
        client.id
    ).app_role_assignments
    app_only = await held_by_client.post(
        AppRoleAssignment(
            principal_id=uuid.UUID(client.id),
            resource_id=uuid.UUID(resource.id),
            app_role_id=daemon.id,
        )
    )
    assert app_only and app_only.principal_type == "ServicePrincipal"
    listed = await held_by_client.get()
    assert listed and [a.id for a in listed.value or []] == [app_only.id]

    # A user's list also has the roles of groups it is a direct member of (documented).
    of_user = await graph.users.by_user_id(user.id).app_role_assignments.get()
    assert of_user and {a.id for a in of_user.value or []} == {to_user.id, to_group.id}

    everyone: list[str] = []
    page = await assigned_to.get(
        request_configuration=_query(AppRoleAssignedToRequestBuilder, top=1)
    )
    while page is not None:
        assert len(page.value or []) <= 1
        everyone += [a.id or "" for a in page.value or []]
        if not page.odata_next_link:
            break
        page = await assigned_to.with_url(page.odata_next_link).get()
    assert everyone == [to_user.id, to_group.id, app_only.id]
    filtered = await assigned_to.get(
        request_configuration=_query(
            AppRoleAssignedToRequestBuilder,
            filter=f"principalId eq {client.id}",
            select=["id", "appRoleId"],
        )
    )
    assert filtered and [(a.id, a.principal_id) for a in filtered.value or []] == [
        (app_only.id, None)
    ]

    # Graph's validation.
    duplicate = await graph_error(
        graph.users.by_user_id(user.id).app_role_assignments.post(
            AppRoleAssignment(
                principal_id=uuid.UUID(user.id),
                resource_id=uuid.UUID(resource.id),
                app_role_id=reader.id,
            )
        )
    )
    assert duplicate.response_status_code == 400 and duplicate.error
    assert duplicate.error.message == "Permission being assigned already exists on the object."
    for bad_role in (uuid.uuid4(), off.id, daemon.id):  # undefined, disabled, application-only
        rejected = await graph_error(
            assigned_to.post(
                AppRoleAssignment(
                    principal_id=uuid.UUID(user.id),
                    resource_id=uuid.UUID(resource.id),
                    app_role_id=bad_role,
                )
            )
        )
        assert rejected.response_status_code == 400
    undefined = await graph_error(
        assigned_to.post(
            AppRoleAssignment(
                principal_id=uuid.UUID(user.id),
                resource_id=uuid.UUID(resource.id),
                app_role_id=uuid.uuid4(),
            )
        )
    )
    assert undefined.error and "was not found on application" in (undefined.error.message or "")
    unknown_principal = await graph_error(
        assigned_to.post(
            AppRoleAssignment(
                principal_id=uuid.uuid4(), resource_id=uuid.UUID(resource.id), app_role_id=reader.id
            )
        )
    )
    assert unknown_principal.response_status_code == 404
    assert unknown_principal.error and unknown_principal.error.code == "Request_ResourceNotFound"
    unknown_resource = await graph_error(
        graph.users.by_user_id(user.id).app_role_assignments.post(
            AppRoleAssignment(
                principal_id=uuid.UUID(user.id), resource_id=uuid.uuid4(), app_role_id=reader.id
            )
        )
    )
    assert unknown_resource.response_status_code == 404
    missing_sp = str(uuid.uuid4())
    no_such_sp = await graph_error(
        graph.service_principals.by_service_principal_id(missing_sp).app_role_assigned_to.post(
            AppRoleAssignment(
                principal_id=uuid.UUID(user.id),
                resource_id=uuid.UUID(missing_sp),
                app_role_id=reader.id,
            )
        )
    )
    assert no_such_sp.response_status_code == 404
    wrong_resource = await graph_error(
        assigned_to.post(
            AppRoleAssignment(
                principal_id=uuid.UUID(user.id),
                resource_id=uuid.UUID(client.id),
                app_role_id=reader.id,
            )
        )
    )
    assert wrong_resource.response_status_code == 400

    # Removal, from either end.
    await assigned_to.by_app_role_assignment_id(to_user.id).delete()
    await held_by_client.by_app_role_assignment_id(app_only.id or "").delete()
    again = await graph_error(assigned_to.by_app_role_assignment_id(to_user.id).delete())
    assert again.response_status_code == 404
    # The group's assignment shows on the user but is removed through the group only.
    through_user = await graph_error(
        graph.users.by_user_id(user.id)
        .app_role_assignments.by_app_role_assignment_id(to_group.id or "")
        .delete()
    )
    assert through_user.response_status_code == 404
    mine = await graph.users.by_user_id(user.id).app_role_assignments.post(
        AppRoleAssignment(
            principal_id=uuid.UUID(user.id),
            resource_id=uuid.UUID(resource.id),
            app_role_id=reader.id,
        )
    )
    assert mine and mine.id
    await (
        graph.users.by_user_id(user.id)
        .app_role_assignments.by_app_role_assignment_id(mine.id)
        .delete()
    )
    remaining = await assigned_to.get()
    assert remaining and [a.id for a in remaining.value or []] == [to_group.id]


async def test_owners_of_groups_and_service_principals(graph: GraphServiceClient) -> None:
    group = await new_group(graph)
    app = await new_sp(graph, "Owned app")
    owner_sp = await new_sp(graph, "Owning automation")
    person = await graph.users.post(new_user(display_name="Owner Person"))
    assert person and person.id and group.id and app.id and owner_sp.id
    for owners in (
        graph.groups.by_group_id(group.id).owners,
        graph.service_principals.by_service_principal_id(app.id).owners,
    ):
        assert (await owners.get()).value == []  # type: ignore[union-attr]
        await owners.ref.post(ref(person.id))
        await owners.ref.post(ref(owner_sp.id))
        dup = await graph_error(owners.ref.post(ref(person.id)))
        assert dup.response_status_code == 400 and "already exist" in (dup.error.message or "")  # type: ignore[union-attr]
        listed = await owners.get()
        assert listed and [type(o) for o in listed.value or []] == [User, ServicePrincipal]
        assert [o.id for o in listed.value or []] == [person.id, owner_sp.id]
        selected = await owners.get(
            request_configuration=_query(OwnersRequestBuilder, select=["id", "displayName"])
        )
        names = [
            (o.display_name, getattr(o, "user_principal_name", None)) for o in selected.value or []
        ]  # type: ignore[union-attr]
        assert names == [("Owner Person", None), ("Owning automation", None)]

        await owners.by_directory_object_id(person.id).ref.delete()
        not_owner = await graph_error(owners.by_directory_object_id(person.id).ref.delete())
        assert not_owner.response_status_code == 404
        unknown = await graph_error(owners.ref.post(ref(str(uuid.uuid4()))))
        assert unknown.response_status_code == 404
        a_group = await graph_error(owners.ref.post(ref(group.id)))
        assert a_group.response_status_code == 400
        after = await owners.get()
        assert after and [o.id for o in after.value or []] == [owner_sp.id]

    missing = await graph_error(graph.groups.by_group_id(str(uuid.uuid4())).owners.get())
    assert missing.response_status_code == 404


async def test_sign_in_activity_only_on_select_and_set_by_control(
    graph: GraphServiceClient, emulator: GraphEmulatorHandle, http: httpx.AsyncClient
) -> None:
    user = await graph.users.post(new_user())
    assert user and user.id
    raw = (await http.get(f"/v1.0/users/{user.id}")).json()
    assert "signInActivity" not in raw  # not a default property
    plain = await graph.users.by_user_id(user.id).get()
    assert plain and plain.sign_in_activity is None
    never = (
        await http.get(f"/v1.0/users/{user.id}", params={"$select": "id,signInActivity"})
    ).json()
    assert never == {
        "@odata.context": never["@odata.context"],
        "id": user.id,
        "signInActivity": None,
    }
    # userType, which reviews read beside it: Graph's default is Member.
    guest = await graph.users.post(new_user(user_type="Guest"))
    assert guest and guest.id
    for who, expected in ((user.id, "Member"), (guest.id, "Guest")):
        typed = await graph.users.by_user_id(who).get(
            request_configuration=_query(UsersRequestBuilder, select=["userType"])
        )
        assert typed and typed.user_type == expected

    stamp = "2024-03-01T09:30:00Z"
    answer = await http.put(
        f"/_emulator/sign-in/{user.id}",
        json={
            "lastSignInDateTime": stamp,
            "lastSuccessfulSignInDateTime": "2024-03-01T09:30:00+00:00",
        },
    )
    assert answer.status_code == 200
    activity = answer.json()["signInActivity"]
    assert activity["lastSignInDateTime"] == stamp and activity["lastSignInRequestId"]
    assert activity["lastNonInteractiveSignInDateTime"] is None
    assert (await http.get(f"/_emulator/sign-in/{user.id}")).json()["signInActivity"] == activity

    selected = await graph.users.by_user_id(user.id).get(
        request_configuration=_query(UsersRequestBuilder, select=["id", "signInActivity"])
    )
    assert selected and selected.sign_in_activity
    got = selected.sign_in_activity
    assert got.last_sign_in_date_time == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    assert got.last_successful_sign_in_date_time == got.last_sign_in_date_time
    assert got.last_non_interactive_sign_in_date_time is None
    listed = await graph.users.get(
        request_configuration=_query(
            UsersRequestBuilder,
            filter=f"userPrincipalName eq '{user.user_principal_name}'",
            select=["id", "signInActivity"],
        )
    )
    assert listed and [
        u.sign_in_activity.last_sign_in_request_id for u in listed.value or [] if u.sign_in_activity
    ] == [activity["lastSignInRequestId"]]
    without = await graph.users.get(
        request_configuration=_query(
            UsersRequestBuilder, filter=f"userPrincipalName eq '{user.user_principal_name}'"
        )
    )
    assert without and all(u.sign_in_activity is None for u in without.value or [])

    assert (await http.put(f"/_emulator/sign-in/{user.id}", content=b"null")).status_code == 200
    cleared = await graph.users.by_user_id(user.id).get(
        request_configuration=_query(UsersRequestBuilder, select=["signInActivity"])
    )
    assert cleared and cleared.sign_in_activity is None

    bad_date = await http.put(f"/_emulator/sign-in/{user.id}", json={"lastSignInDateTime": "soon"})
    assert bad_date.status_code == 400
    bad_key = await http.put(f"/_emulator/sign-in/{user.id}", json={"lastLogon": stamp})
    assert bad_key.status_code == 400
    unknown = await http.put(
        f"/_emulator/sign-in/{uuid.uuid4()}", json={"lastSignInDateTime": stamp}
    )
    assert unknown.status_code == 404
    unauthenticated = await httpx.AsyncClient().put(
        f"{emulator.control_url}/sign-in/{user.id}", json=None
    )
    assert unauthenticated.status_code == 401


async def test_beta_service_principal_sign_in_report(
    graph: GraphServiceClient, emulator: GraphEmulatorHandle, http: httpx.AsyncClient
) -> None:
    active = await new_sp(graph, "Nightly export")
    idle = await new_sp(graph, "Never used")
    delegated = await new_sp(graph, "Web app")
    stamp = "2024-05-02T03:04:05Z"
    set_active = await http.put(
        f"/_emulator/sign-in/{active.id}", json={"lastSignInDateTime": stamp}
    )
    assert set_active.status_code == 200
    entry = set_active.json()["servicePrincipalSignInActivity"]
    flows = {
        "delegatedClientSignInActivity": {"lastSignInDateTime": "2024-01-01T00:00:00Z"},
        "delegatedResourceSignInActivity": {"lastSignInDateTime": "2024-02-01T00:00:00Z"},
    }
    assert (await http.put(f"/_emulator/sign-in/{delegated.id}", json=flows)).status_code == 200

    report = f"{emulator.root}/beta/reports/servicePrincipalSignInActivities"
    one = await http.get(report, params={"$filter": f"appId eq '{active.app_id}'"})
    assert one.status_code == 200
    body = one.json()
    assert body["@odata.context"].endswith(
        "/beta/$metadata#reports/servicePrincipalSignInActivities"
    )
    [row] = body["value"]
    assert row == entry
    assert row["id"] == base64.b64encode((active.app_id or "").encode()).decode()
    assert row["appId"] == active.app_id
    assert row["lastSignInActivity"]["lastSignInDateTime"] == stamp
    # Given no flow, the sign-in counts as app-only, as a client (client credentials).
    assert row["applicationAuthenticationClientSignInActivity"] == row["lastSignInActivity"]
    assert row["delegatedClientSignInActivity"]["lastSignInDateTime"] is None

    # Only service principals that signed in are listed, as in the real report.
    none = await http.get(report, params={"$filter": f"appId eq '{idle.app_id}'"})
    assert none.json()["value"] == []
    both = await http.get(report, params={"$top": "999"})
    app_ids = [r["appId"] for r in both.json()["value"]]
    assert active.app_id in app_ids and delegated.app_id in app_ids and idle.app_id not in app_ids
    web = (
        await http.get(f"{report}/{base64.b64encode((delegated.app_id or '').encode()).decode()}")
    ).json()
    # The overall last sign-in is the latest flow's.
    assert web["lastSignInActivity"]["lastSignInDateTime"] == "2024-02-01T00:00:00Z"
    assert web["applicationAuthenticationClientSignInActivity"]["lastSignInDateTime"] is None

    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(report)).status_code == 401
    assert (await http.get(f"{emulator.root}/beta/users")).status_code == 400
    assert (await http.post(report, json={})).status_code == 405
    assert (await http.get(f"{report}/{base64.b64encode(b'nope').decode()}")).status_code == 404
    group = await new_group(graph)
    assert (
        await http.put(f"/_emulator/sign-in/{group.id}", json={"lastSignInDateTime": stamp})
    ).status_code == 400


async def test_deleting_a_user_or_service_principal_drops_its_links(
    graph: GraphServiceClient, http: httpx.AsyncClient
) -> None:
    reader = role("Reader", "User", "Application")
    resource = await new_sp(graph, "Ledger", reader)
    worker = await new_sp(graph, "Ledger worker")
    user = await graph.users.post(new_user())
    group = await new_group(graph)
    assert user and user.id and resource.id and worker.id and group.id
    sp_api = graph.service_principals.by_service_principal_id
    for member in (user.id, worker.id):
        await graph.groups.by_group_id(group.id).members.ref.post(ref(member))
        await graph.groups.by_group_id(group.id).owners.ref.post(ref(member))
        await sp_api(resource.id).owners.ref.post(ref(member))
        await sp_api(resource.id).app_role_assigned_to.post(
            AppRoleAssignment(
                principal_id=uuid.UUID(member),
                resource_id=uuid.UUID(resource.id),
                app_role_id=reader.id,
            )
        )
        await http.put(
            f"/_emulator/sign-in/{member}", json={"lastSignInDateTime": "2024-01-01T00:00:00Z"}
        )
    members = await graph.groups.by_group_id(group.id).members.get()
    assert members and [type(m) for m in members.value or []] == [User, ServicePrincipal]

    await graph.users.by_user_id(user.id).delete()
    await sp_api(worker.id).delete()
    for listing in (
        graph.groups.by_group_id(group.id).members.get(),
        graph.groups.by_group_id(group.id).owners.get(),
        sp_api(resource.id).owners.get(),
        sp_api(resource.id).app_role_assigned_to.get(),
    ):
        assert (await listing).value == []  # type: ignore[union-attr]
    assert (await http.get(f"/_emulator/sign-in/{user.id}")).status_code == 404

    # Deleting the resource drops the assignments made to it, wherever they are listed.
    holder = await graph.users.post(new_user())
    assert holder and holder.id
    await sp_api(resource.id).app_role_assigned_to.post(
        AppRoleAssignment(
            principal_id=uuid.UUID(holder.id),
            resource_id=uuid.UUID(resource.id),
            app_role_id=reader.id,
        )
    )
    await sp_api(resource.id).delete()
    assert (await graph.users.by_user_id(holder.id).app_role_assignments.get()).value == []  # type: ignore[union-attr]


async def test_workload_state_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "graph.db")
    async with running_graph_emulator(db_path=db) as first:
        client = build_graph_client(GraphSettings(base_url=first.base_url, token=first.token))
        reader = role("Reader", "User")
        resource = await new_sp(client, "Kept API", reader)
        user = await client.users.post(new_user())
        group = await new_group(client)
        assert user and user.id and resource.id and group.id
        assignment = await client.service_principals.by_service_principal_id(
            resource.id
        ).app_role_assigned_to.post(
            AppRoleAssignment(
                principal_id=uuid.UUID(user.id),
                resource_id=uuid.UUID(resource.id),
                app_role_id=reader.id,
            )
        )
        await client.groups.by_group_id(group.id).owners.ref.post(ref(user.id))
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {first.token}"}) as http:
            stamp = {"lastSignInDateTime": "2024-06-01T00:00:00Z"}
            assert (
                await http.put(f"{first.control_url}/sign-in/{user.id}", json=stamp)
            ).status_code == 200
            assert (
                await http.put(f"{first.control_url}/sign-in/{resource.id}", json=stamp)
            ).status_code == 200
        token = first.token
    async with running_graph_emulator(db_path=db, token=token) as second:
        client = build_graph_client(GraphSettings(base_url=second.base_url, token=second.token))
        kept = await client.service_principals_with_app_id(resource.app_id or "").get()
        assert kept and kept.app_roles and kept.app_roles[0].id == reader.id
        held = await client.users.by_user_id(user.id).app_role_assignments.get()
        assert held and assignment and [a.id for a in held.value or []] == [assignment.id]
        owners = await client.groups.by_group_id(group.id).owners.get()
        assert owners and [o.id for o in owners.value or []] == [user.id]
        selected = await client.users.by_user_id(user.id).get(
            request_configuration=_query(UsersRequestBuilder, select=["signInActivity"])
        )
        assert selected and selected.sign_in_activity
        assert selected.sign_in_activity.last_sign_in_date_time == datetime(2024, 6, 1, tzinfo=UTC)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            report = await http.get(f"{second.root}/beta/reports/servicePrincipalSignInActivities")
            assert [r["appId"] for r in report.json()["value"]] == [resource.app_id]


async def test_bulk_seed_at_scale_lists_back_through_paging(tmp_path: Path) -> None:
    users_n, groups_n = 2000, 3
    db = tmp_path / "graph.db"
    upns = [f"seed{i:05d}@{DOMAIN}" for i in range(users_n)]
    spec = {
        "users": [
            {
                "userPrincipalName": upn,
                "employeeId": f"S{i:05d}",
                **(
                    {"signInActivity": {"lastSignInDateTime": "2024-04-01T00:00:00Z"}}
                    if i % 2
                    else {}
                ),
            }
            for i, upn in enumerate(upns)
        ],
        "groups": [
            {"displayName": f"Seeded {g}", "members": upns, "owners": [upns[g], "batch-app-id"]}
            for g in range(groups_n)
        ],
        "servicePrincipals": [
            {
                "appId": "batch-app-id",
                "displayName": "Batch app",
                "appRoles": [
                    {"value": "Reader"},
                    {"value": "Writer", "allowedMemberTypes": ["User"]},
                ],
                "owners": [upns[0]],
                "signInActivity": {"lastSignInDateTime": "2024-04-02T00:00:00Z"},
            }
        ],
        "appRoleAssignments": [
            {"principal": upns[1], "resource": "batch-app-id", "appRole": "Writer"},
            {"principal": "Seeded 0", "resource": "batch-app-id", "appRole": "Reader"},
        ],
    }
    async with running_graph_emulator(db_path=str(db)) as handle:
        graph = build_graph_client(GraphSettings(base_url=handle.base_url, token=handle.token))
        async with httpx.AsyncClient(
            base_url=handle.control_url,
            headers={"Authorization": f"Bearer {handle.token}"},
            timeout=60,
        ) as control:
            started = time.monotonic()
            answer = await control.post("/seed", json=spec)
            elapsed = time.monotonic() - started
            assert answer.status_code == 200, answer.text
            seeded = answer.json()
            assert elapsed < 20, f"seeding {users_n} users x {groups_n} groups took {elapsed:.1f}s"
            assert len(seeded["users"]) == users_n and len(seeded["groups"]) == groups_n
            app_id = seeded["servicePrincipals"]["batch-app-id"]
            assert set(seeded["appRoles"]["batch-app-id"]) == {"Reader", "Writer"}
            assert len(seeded["appRoleAssignments"]) == 2

            # Idempotent: the same spec again changes nothing and answers the same ids.
            again = (await control.post("/seed", json=spec)).json()
            assert again == seeded
            # All or nothing: a bad reference leaves no trace of the rest of the spec.
            broken = {
                "users": [{"userPrincipalName": f"late@{DOMAIN}"}],
                "groups": [{"displayName": "Seeded 0", "members": ["nobody"]}],
            }
            assert (await control.post("/seed", json=broken)).status_code == 400
            health = (await control.get("/health")).json()
            assert (health["users"], health["groups"], health["servicePrincipals"]) == (
                users_n,
                groups_n,
                1,
            )

        # Every member of every group, page by page (raw JSON: msgraph-sdk parses ~80 objects/s).
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {handle.token}"}) as http:

            async def walk(url: str, params: dict[str, str]) -> list[list[dict[str, Any]]]:
                pages: list[list[dict[str, Any]]] = []
                answer: dict[str, Any] = (await http.get(url, params=params)).json()
                while True:
                    pages.append(answer["value"])
                    if "@odata.nextLink" not in answer:
                        return pages
                    answer = (await http.get(answer["@odata.nextLink"])).json()

            expected = [seeded["users"][u] for u in upns]
            for name, group_id in seeded["groups"].items():
                pages = await walk(
                    f"{handle.base_url}/groups/{group_id}/members", {"$select": "id", "$top": "999"}
                )
                assert [m["id"] for page in pages for m in page] == expected, name
                assert [len(page) for page in pages] == [999, 999, 2]
            # Selecting signInActivity caps pages at 120 users however large $top is, as in Graph.
            pages = await walk(
                f"{handle.base_url}/users", {"$select": "id,signInActivity", "$top": "999"}
            )
            assert {len(page) for page in pages[:-1]} == {120}
            assert len(pages) == -(-users_n // 120)
            signed_in = [u for page in pages for u in page if u["signInActivity"]]
            assert len(signed_in) == users_n // 2

        # The SDK follows the same nextLinks.
        group_id = seeded["groups"]["Seeded 1"]
        members = graph.groups.by_group_id(group_id).members
        first = await members.get(
            request_configuration=_query(MembersRequestBuilder, select=["id"], top=25)
        )
        assert first and first.odata_next_link
        second = await members.with_url(first.odata_next_link).get()
        assert (
            second and [m.id for m in (first.value or []) + (second.value or [])] == expected[:50]
        )
        owners = await graph.groups.by_group_id(group_id).owners.get()
        assert owners and [type(o) for o in owners.value or []] == [User, ServicePrincipal]

        # The user holds Writer directly and Reader through group "Seeded 0".
        held = await graph.users.by_user_id(seeded["users"][upns[1]]).app_role_assignments.get()
        assert held and sorted(a.principal_type or "" for a in held.value or []) == [
            "Group",
            "User",
        ]
        sp_owners = await graph.service_principals.by_service_principal_id(app_id).owners.get()
        assert sp_owners and [o.id for o in sp_owners.value or []] == [seeded["users"][upns[0]]]

    # Written through: the file alone has it all.
    with sqlite3.connect(db) as conn:
        counts = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("users", "members", "owners", "app_role_assignments", "sign_in_activity")
        }
    assert counts == {
        "users": users_n,
        "members": users_n * groups_n,
        "owners": 2 * groups_n + 1,
        "app_role_assignments": 2,
        "sign_in_activity": users_n // 2 + 1,
    }


async def test_a_token_is_a_sign_in_that_signin_activity_reports(
    emulator: GraphEmulatorHandle, http: httpx.AsyncClient
) -> None:
    upn = f"signer-{uuid.uuid4().hex[:6]}@{DOMAIN}"
    seeded = await http.post(
        "/_emulator/seed", json={"users": [{"userPrincipalName": upn, "employeeId": "SIGN1"}]}
    )
    user_id = seeded.json()["users"][upn]
    select = {"$select": "id,signInActivity"}
    before = (await http.get(f"/v1.0/users/{user_id}", params=select)).json()
    assert before["signInActivity"] is None  # never signed in
    form = {
        "grant_type": EMULATED_USER_GRANT,
        "employee_id": "SIGN1",
        "scope": "api://tenure/.default",
    }
    issued = await http.post(f"/{emulator.tenant_id}/oauth2/v2.0/token", data=form)
    assert issued.status_code == 200, issued.text
    after = (await http.get(f"/v1.0/users/{user_id}", params=select)).json()["signInActivity"]
    signed = datetime.fromisoformat(after["lastSignInDateTime"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - signed) < timedelta(minutes=1)
    assert after["lastSuccessfulSignInDateTime"] == after["lastSignInDateTime"]
