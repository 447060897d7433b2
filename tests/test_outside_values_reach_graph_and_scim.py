"""Values from outside (event ids in workflow ids, group and role names) reach Graph and SCIM
encoded, whatever they hold; a request that can never be sent fails for good, not retried."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest
from msgraph import GraphServiceClient
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.graph.activities import GraphActivities
from activities.graph.client import GraphSettings, build_graph_client, header_safe
from activities.graph.errors import graph_call
from activities.scim.activities import ScimActivities
from activities.scim.client import (
    SCIM_UNSENDABLE,
    ScimAppClient,
    ScimAppSettings,
    new_http_client,
    scim_app_clients,
)
from domain.lifecycle.events import WorkerRecord
from domain.provisioning import EnsureGraphUserInput, EnsureScimUserInput, GroupMembershipInput
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
    running_graph_emulator,
)
from tests.support.scim_server import ScimServer, running_scim_server

AWKWARD_GROUPS = ["R&D", "Zoë+Team", "50% #1 / ops?", "O'Brien's", "財務 チーム"]
# Event ids an HR system may send, as they reach workflow ids (joiner-<employee>-<event id>).
AWKWARD_WORKFLOW_IDS = [
    "joiner-E1-ev155903-évènement-ü",
    "joiner-E1-событие-42",
    "joiner-E1-事件\r\nX-Injected: yes",
    "joiner-E1-nul\x00byte",
]


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[GraphEmulatorHandle]:
    async with running_graph_emulator() as handle:
        control = EmulatorControl(handle)
        await control.seed(groups=[{"displayName": name} for name in AWKWARD_GROUPS])
        await control.aclose()
        yield handle


@pytest.fixture(scope="module")
def graph(emulator: GraphEmulatorHandle) -> GraphServiceClient:
    return build_graph_client(GraphSettings(base_url=emulator.base_url, token=emulator.token))


@pytest.fixture(scope="module")
async def scim() -> AsyncIterator[ScimServer]:
    async with running_scim_server() as server:
        yield server


def worker(employee_id: str) -> WorkerRecord:
    return WorkerRecord(employee_id=employee_id, given_name="Zoë", family_name="Ünal")


@pytest.mark.parametrize("workflow_id", AWKWARD_WORKFLOW_IDS)
async def test_any_workflow_id_tags_graph_calls_without_breaking_them(
    graph: GraphServiceClient, emulator: GraphEmulatorHandle, workflow_id: str
) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, attempt=3)
    control = EmulatorControl(emulator)
    since = await control.last_seq()
    employee_id = f"E{uuid.uuid4().hex[:8]}"
    user = await env.run(
        GraphActivities(graph).ensure_user,
        EnsureGraphUserInput(
            worker=worker(employee_id),
            upn_domain=f"t{uuid.uuid4().hex[:6]}.example.com",
            account_enabled=False,
            hire_date=datetime(2026, 12, 1, 9, tzinfo=UTC),
        ),
    )
    assert user.created
    tags = {entry["activity"] for entry in await control.requests(since)}
    await control.aclose()
    [tag] = tags
    assert tag.isascii() and tag.isprintable()
    assert unquote(tag) == f"{workflow_id}:{env.info.activity_id}:3"


async def test_group_names_with_query_characters_resolve_to_themselves(
    graph: GraphServiceClient,
) -> None:
    env = ActivityEnvironment()
    acts = GraphActivities(graph)
    user = await env.run(
        acts.ensure_user,
        EnsureGraphUserInput(
            worker=worker(f"E{uuid.uuid4().hex[:8]}"),
            upn_domain=f"t{uuid.uuid4().hex[:6]}.example.com",
            account_enabled=True,
            hire_date=datetime(2026, 12, 1, 9, tzinfo=UTC),
        ),
    )
    added = await env.run(
        acts.ensure_group_memberships,
        GroupMembershipInput(user_id=user.user_id, groups=AWKWARD_GROUPS),
    )
    assert sorted(added.changed) == sorted(AWKWARD_GROUPS)
    again = await env.run(
        acts.ensure_group_memberships,
        GroupMembershipInput(user_id=user.user_id, groups=AWKWARD_GROUPS),
    )
    assert sorted(again.unchanged) == sorted(AWKWARD_GROUPS)
    removed = await env.run(
        acts.ensure_group_memberships,
        GroupMembershipInput(user_id=user.user_id, groups=AWKWARD_GROUPS, present=False),
    )
    assert sorted(removed.changed) == sorted(AWKWARD_GROUPS)


async def test_scim_roles_with_quotes_and_any_script_are_found_again(scim: ScimServer) -> None:
    roles = ['say "hi"', "back\\slash", "Zoë's role", "財務"]
    async with new_http_client() as http:
        clients = scim_app_clients(
            {"app": ScimAppSettings(name="app", base_url=scim.base_url, token=scim.token)}, http
        )
        acts = ScimActivities(clients)
        env = ActivityEnvironment()
        request = EnsureScimUserInput(
            app="app",
            worker=worker(f"E{uuid.uuid4().hex[:8]}"),
            user_name=f"zoe.{uuid.uuid4().hex[:6]}@example.com",
            active=True,
            roles=roles,
        )
        first = await env.run(acts.ensure_user, request)
        # A rerun finds every role's group by its name (no second group per role).
        await env.run(acts.ensure_user, request)
        for role in roles:
            groups = await clients["app"].find_groups(f'displayName eq "{_escaped(role)}"')
            assert len(groups) == 1, role
            assert [m.value for m in groups[0].members or []] == [first.scim_id]
        # And each role can be taken away again (the member filter quotes the id).
        await env.run(
            acts.ensure_user, request.model_copy(update={"roles": [], "remove_roles": roles})
        )
        for role in roles:
            [group] = await clients["app"].find_groups(f'displayName eq "{_escaped(role)}"')
            assert not group.members


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def test_header_values_are_printable_ascii() -> None:
    assert header_safe("joiner-E1-hr-000123:1:2") == "joiner-E1-hr-000123:1:2"
    assert header_safe("é\r\n\x00") == "%C3%A9%0D%0A%00"


@pytest.mark.parametrize(
    "error",
    [
        httpx.LocalProtocolError("Illegal header value b'a\\nb'"),
        UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)"),
        httpx.InvalidURL("Invalid non-printable ASCII character in URL"),
    ],
)
def test_a_graph_request_that_cannot_be_sent_fails_for_good(error: BaseException) -> None:
    with pytest.raises(ApplicationError) as raised, graph_call("look up user"):
        raise error
    assert raised.value.non_retryable
    assert raised.value.type == "GraphUnsendableRequest"


async def test_a_scim_request_that_cannot_be_sent_fails_for_good() -> None:
    # A token no header can carry (say, pasted with a typographic character): no retry helps.
    async with httpx.AsyncClient() as http:
        client = ScimAppClient(
            ScimAppSettings(name="app", base_url="http://127.0.0.1:9/v2", token="tökén"), http
        )
        with pytest.raises(ApplicationError) as raised:
            await client.find_user('externalId eq "E1"')
    assert raised.value.non_retryable and raised.value.type == SCIM_UNSENDABLE
