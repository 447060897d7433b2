"""The Graph emulator, driven by the official msgraph-sdk exactly as the activities use it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.group import Group
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.models.user import User
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from activities.graph.client import GraphSettings, build_graph_client
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
    running_graph_emulator,
)

DOMAIN = "emu.example.com"


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[GraphEmulatorHandle]:
    async with running_graph_emulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def graph(emulator: GraphEmulatorHandle) -> GraphServiceClient:
    return build_graph_client(GraphSettings(base_url=emulator.base_url, token=emulator.token))


@pytest.fixture
async def control(emulator: GraphEmulatorHandle) -> AsyncIterator[EmulatorControl]:
    ctl = EmulatorControl(emulator)
    yield ctl
    await ctl.clear_faults()
    await ctl.aclose()


def new_user(nickname: str | None = None, **attributes: object) -> User:
    nickname = nickname or f"u{uuid.uuid4().hex[:10]}"
    return User(
        account_enabled=True,
        display_name=attributes.pop("display_name", nickname),
        mail_nickname=nickname,
        user_principal_name=f"{nickname}@{DOMAIN}",
        password_profile=PasswordProfile(password="Xy!" + uuid.uuid4().hex),
        **attributes,
    )


def users_query(**params: object) -> RequestConfiguration:
    return RequestConfiguration(
        query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**params)
    )


async def test_user_create_get_update_delete(graph: GraphServiceClient) -> None:
    created = await graph.users.post(new_user(employee_id="EMU-1", department="Finance"))
    assert created and created.id and created.mail == created.user_principal_name

    by_upn = await graph.users.by_user_id(created.user_principal_name or "").get()
    assert by_upn and by_upn.id == created.id
    # Like Graph, employeeId is only answered when selected.
    assert by_upn.employee_id is None
    selected = await graph.users.by_user_id(created.id).get(
        request_configuration=users_query(select=["employeeId", "department"])
    )
    assert selected and (selected.employee_id, selected.department) == ("EMU-1", "Finance")
    assert selected.display_name is None

    await graph.users.by_user_id(created.id).patch(User(job_title="Analyst", account_enabled=False))
    after = await graph.users.by_user_id(created.id).get(
        request_configuration=users_query(select=["jobTitle", "accountEnabled"])
    )
    assert after and after.job_title == "Analyst" and after.account_enabled is False

    await graph.users.by_user_id(created.id).delete()
    with pytest.raises(ODataError) as missing:
        await graph.users.by_user_id(created.id).get()
    err = missing.value
    assert err.response_status_code == 404
    assert err.error and err.error.code == "Request_ResourceNotFound"
    assert err.error.inner_error is not None


async def test_duplicate_upn_is_a_graph_400(graph: GraphServiceClient) -> None:
    first = new_user()
    await graph.users.post(first)
    with pytest.raises(ODataError) as dup:
        await graph.users.post(new_user(first.mail_nickname))
    assert dup.value.response_status_code == 400
    assert dup.value.error and dup.value.error.code == "Request_BadRequest"
    assert dup.value.error.message == (
        "Another object with the same value for property userPrincipalName already exists."
    )


async def test_filter_select_and_paging(graph: GraphServiceClient) -> None:
    department = f"Dept-{uuid.uuid4().hex[:6]}"
    for i in range(7):
        await graph.users.post(new_user(employee_id=f"PG-{department}-{i}", department=department))
    # Case-insensitive string comparison, `and` of two clauses.
    one = await graph.users.get(
        request_configuration=users_query(
            filter=f"employeeId eq 'pg-{department.lower()}-3' and accountEnabled eq true",
            select=["id", "employeeId"],
        )
    )
    assert one and one.value and [u.employee_id for u in one.value] == [f"PG-{department}-3"]

    seen: list[str] = []
    page = await graph.users.get(
        request_configuration=users_query(select=["employeeId", "department"], top=3)
    )
    while page is not None:
        seen += [u.employee_id for u in page.value or [] if u.department == department]
        if not page.odata_next_link:
            break
        assert "$skiptoken=" in page.odata_next_link
        page = await graph.users.with_url(page.odata_next_link).get()
    assert sorted(seen) == sorted(f"PG-{department}-{i}" for i in range(7))

    with pytest.raises(ODataError) as unsupported:
        await graph.users.get(request_configuration=users_query(filter="jobTitle gt 'a'"))
    assert unsupported.value.response_status_code == 400


async def test_manager_reference(graph: GraphServiceClient) -> None:
    boss = await graph.users.post(new_user())
    report = await graph.users.post(new_user())
    assert boss and report and boss.id and report.id
    with pytest.raises(ODataError) as none_yet:
        await graph.users.by_user_id(report.id).manager.get()
    assert none_yet.value.response_status_code == 404

    ref = ReferenceUpdate(odata_id=f"https://graph.microsoft.com/v1.0/users/{boss.id}")
    await graph.users.by_user_id(report.id).manager.ref.put(ref)
    manager = await graph.users.by_user_id(report.id).manager.get()
    assert manager and manager.id == boss.id and isinstance(manager, User)

    await graph.users.by_user_id(boss.id).delete()  # drops the reference too
    with pytest.raises(ODataError):
        await graph.users.by_user_id(report.id).manager.get()


async def test_groups_members_and_member_of(graph: GraphServiceClient) -> None:
    name = f"Team {uuid.uuid4().hex[:6]}"
    group = await graph.groups.post(
        Group(display_name=name, mail_nickname="team", mail_enabled=False, security_enabled=True)
    )
    user = await graph.users.post(new_user())
    assert group and group.id and user and user.id
    found = await graph.groups.get(
        request_configuration=RequestConfiguration(
            query_parameters=GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
                filter=f"displayName eq '{name}'"
            )
        )
    )
    assert found and [g.id for g in found.value or []] == [group.id]

    ref = ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{user.id}")
    await graph.groups.by_group_id(group.id).members.ref.post(ref)
    with pytest.raises(ODataError) as again:
        await graph.groups.by_group_id(group.id).members.ref.post(ref)
    assert again.value.response_status_code == 400
    assert again.value.error and "already exist" in (again.value.error.message or "")

    members = await graph.groups.by_group_id(group.id).members.get()
    assert members and [m.id for m in members.value or []] == [user.id]
    assert isinstance((members.value or [])[0], User)
    member_of = await graph.users.by_user_id(user.id).member_of.get()
    assert member_of and [g.id for g in member_of.value or []] == [group.id]
    assert isinstance((member_of.value or [])[0], Group)

    await graph.groups.by_group_id(group.id).members.by_directory_object_id(user.id).ref.delete()
    with pytest.raises(ODataError) as not_member:
        await (
            graph.groups.by_group_id(group.id).members.by_directory_object_id(user.id).ref.delete()
        )
    assert not_member.value.response_status_code == 404

    missing = str(uuid.uuid4())
    with pytest.raises(ODataError) as unknown:
        await graph.groups.by_group_id(missing).members.ref.post(ref)
    assert unknown.value.response_status_code == 404


async def test_unauthenticated_requests_are_401(emulator: GraphEmulatorHandle) -> None:
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            response = await http.get(
                f"{emulator.base_url}/users", headers={**headers, "client-request-id": "abc"}
            )
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["code"] == "InvalidAuthenticationToken"
            assert error["innerError"]["client-request-id"] == "abc"
            assert {"date", "request-id"} <= error["innerError"].keys()


async def _post_batch(graph: GraphServiceClient, requests: list[dict]) -> dict:
    info = RequestInformation(Method.POST, f"{graph.request_adapter.base_url}/$batch")
    info.headers.try_add("Content-Type", "application/json")
    info.content = json.dumps({"requests": requests}).encode()
    raw = await graph.request_adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
    return json.loads(raw)


async def test_batch(graph: GraphServiceClient, control: EmulatorControl) -> None:
    user = await graph.users.post(new_user())
    assert user and user.id
    before = await control.last_seq()
    answer = await _post_batch(
        graph,
        [
            {"id": "1", "method": "GET", "url": f"/users/{user.id}?$select=id"},
            {"id": "2", "method": "GET", "url": f"users/{uuid.uuid4()}"},
            {"id": "3", "method": "GET", "url": "/v1.0/users"},
            {
                "id": "4",
                "method": "PATCH",
                "url": f"/users/{user.id}",
                "headers": {"Content-Type": "application/json"},
                "body": {"department": "Batch"},
                "dependsOn": ["1"],
            },
        ],
    )
    by_id = {r["id"]: r for r in answer["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["id"] == user.id
    assert by_id["2"]["status"] == 404
    assert by_id["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["3"]["status"] == 400  # Graph: "Resource not found for the segment 'v1.0'."
    assert by_id["4"]["status"] == 204
    log = await control.requests(since=before)
    assert [(e["method"], e["path"]) for e in log] == [("POST", "/v1.0/$batch")]

    too_many = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(21)]
    with pytest.raises(ODataError) as rejected:
        await _post_batch(graph, too_many)
    assert rejected.value.response_status_code == 400
    absolute = [{"id": "1", "method": "GET", "url": f"{graph.request_adapter.base_url}/users"}]
    with pytest.raises(ODataError) as absolute_rejected:
        await _post_batch(graph, absolute)
    assert absolute_rejected.value.response_status_code == 400


async def test_temporary_access_pass(graph: GraphServiceClient) -> None:
    user = await graph.users.post(new_user())
    assert user and user.id
    methods = graph.users.by_user_id(user.id).authentication.temporary_access_pass_methods
    created = await methods.post(
        TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=60, is_usable_once=True)
    )
    assert created and created.id and created.temporary_access_pass
    assert created.is_usable and created.lifetime_in_minutes == 60 and created.is_usable_once
    listed = await methods.get()
    assert listed and [m.id for m in listed.value or []] == [created.id]
    assert all(m.temporary_access_pass is None for m in listed.value or [])

    # A user holds one pass: a new one replaces the old (Graph's documented behaviour).
    second = await methods.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=30))
    listed = await methods.get()
    assert second and listed and [m.id for m in listed.value or []] == [second.id]
    with pytest.raises(ODataError) as too_long:
        await methods.post(TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=50000))
    assert too_long.value.response_status_code == 400

    await methods.by_temporary_access_pass_authentication_method_id(second.id or "").delete()
    listed = await methods.get()
    assert listed and listed.value == []


async def test_send_mail_reaches_outbox(
    graph: GraphServiceClient, control: EmulatorControl
) -> None:
    sender = await graph.users.post(new_user())
    assert sender and sender.user_principal_name
    body = SendMailPostRequestBody(
        message=Message(
            subject="Hello",
            body=ItemBody(content_type=BodyType.Html, content="<p>hi</p>"),
            to_recipients=[Recipient(email_address=EmailAddress(address="x@example.com"))],
        ),
        save_to_sent_items=False,
    )
    await graph.users.by_user_id(sender.user_principal_name).send_mail.post(body)
    mail = (await control.outbox())[-1]
    assert mail["from"] == sender.user_principal_name
    assert (mail["to"], mail["subject"], mail["body"]) == (["x@example.com"], "Hello", "<p>hi</p>")


async def test_revoke_sign_in_sessions(graph: GraphServiceClient) -> None:
    user = await graph.users.post(new_user())
    assert user and user.id
    answer = await graph.users.by_user_id(user.id).revoke_sign_in_sessions.post()
    assert answer and answer.value is True


async def test_injected_429_reaches_the_sdk_with_retry_after(
    graph: GraphServiceClient, control: EmulatorControl
) -> None:
    before = await control.last_seq()
    await control.add_fault(429, "GET /v1.0/users", retry_after=7, times=1)
    with pytest.raises(ODataError) as throttled:
        await graph.users.get()
    err = throttled.value
    assert err.response_status_code == 429
    assert err.error and err.error.code == "TooManyRequests"
    assert err.response_headers and err.response_headers["retry-after"] == "7"
    log = await control.requests(since=before)
    assert [(e["status"], e["retry_after"]) for e in log] == [(429, 7)]  # no SDK retry
    assert (await graph.users.get()) is not None  # `times=1`: the fault is spent


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "graph.db")
    async with running_graph_emulator(db_path=db) as first:
        client = build_graph_client(GraphSettings(base_url=first.base_url, token=first.token))
        user = await client.users.post(new_user(employee_id="KEEP-1"))
        group = await client.groups.post(
            Group(
                display_name="Keep", mail_nickname="keep", mail_enabled=False, security_enabled=True
            )
        )
        assert user and user.id and group and group.id
        ref = ReferenceCreate(
            odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{user.id}"
        )
        await client.groups.by_group_id(group.id).members.ref.post(ref)
        token = first.token
    async with running_graph_emulator(db_path=db, token=token) as second:
        client = build_graph_client(GraphSettings(base_url=second.base_url, token=second.token))
        found = await client.users.get(
            request_configuration=users_query(filter="employeeId eq 'KEEP-1'", select=["id"])
        )
        assert found and [u.id for u in found.value or []] == [user.id]
        members = await client.groups.by_group_id(group.id).members.get()
        assert members and [m.id for m in members.value or []] == [user.id]
