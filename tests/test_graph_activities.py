"""Graph activities against the emulator, run through Temporal's ActivityEnvironment."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.graph.activities import GraphActivities
from activities.graph.client import DEFAULT_GRAPH_URL, GraphSettings, build_graph_client
from domain.lifecycle.events import WorkerRecord
from domain.provisioning import (
    EmployeeIdInput,
    EnsureGraphUserInput,
    GraphUserRef,
    GroupMembershipInput,
    IssueTapToManagerInput,
    SendMailInput,
    SetAccountEnabledInput,
    SetManagerInput,
    UserIdInput,
)
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
    running_graph_emulator,
)

SENDER = "onboarding@tenure.example.com"
HIRE_DATE = datetime(2026, 12, 1, 9, tzinfo=UTC)
GROUPS = [f"Birthright {i:02d}" for i in range(40)]


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[GraphEmulatorHandle]:
    async with running_graph_emulator() as handle:
        ctl = EmulatorControl(handle)
        await ctl.seed(
            groups=[{"displayName": name} for name in GROUPS],
            users=[{"userPrincipalName": SENDER, "displayName": "Onboarding"}],
        )
        await ctl.aclose()
        yield handle


@pytest.fixture(scope="module")
def graph(emulator: GraphEmulatorHandle) -> GraphServiceClient:
    return build_graph_client(GraphSettings(base_url=emulator.base_url, token=emulator.token))


@pytest.fixture(scope="module")
def acts(graph: GraphServiceClient) -> GraphActivities:
    return GraphActivities(graph)


@pytest.fixture
async def control(emulator: GraphEmulatorHandle) -> AsyncIterator[EmulatorControl]:
    ctl = EmulatorControl(emulator)
    yield ctl
    await ctl.clear_faults()
    await ctl.aclose()


env = ActivityEnvironment()


def unique_domain() -> str:
    return f"t{uuid.uuid4().hex[:8]}.example.com"


def hire(
    employee_id: str, given: str = "Ada", family: str = "Lovelace", **fields: object
) -> WorkerRecord:
    return WorkerRecord(employee_id=employee_id, given_name=given, family_name=family, **fields)  # type: ignore[arg-type]


async def ensure(acts: GraphActivities, worker: WorkerRecord, domain: str) -> GraphUserRef:
    payload = EnsureGraphUserInput(
        worker=worker, upn_domain=domain, account_enabled=False, hire_date=HIRE_DATE
    )
    return await env.run(acts.ensure_user, payload)


def new_id() -> str:
    return f"E{uuid.uuid4().hex[:8]}"


async def test_ensure_user_is_idempotent_and_converges(
    acts: GraphActivities, graph: GraphServiceClient
) -> None:
    domain, eid = unique_domain(), new_id()
    first = await ensure(acts, hire(eid, department="Finance"), domain)
    assert first.created and first.user_principal_name == f"ada.lovelace@{domain}"
    again = await ensure(acts, hire(eid, department="Research"), domain)
    assert again == GraphUserRef(
        user_id=first.user_id, user_principal_name=first.user_principal_name, created=False
    )
    found = await graph.users.get(
        request_configuration=RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter=f"employeeId eq '{eid}'",
                select=["id", "department", "employeeType", "accountEnabled", "employeeHireDate"],
            )
        )
    )
    assert found and len(found.value or []) == 1
    user = (found.value or [])[0]
    assert (user.department, user.employee_type, user.account_enabled) == (
        "Research",
        "employee",
        False,
    )
    assert user.employee_hire_date == HIRE_DATE


async def test_two_ada_lovelaces_get_distinct_deterministic_upns(acts: GraphActivities) -> None:
    domain = unique_domain()
    first_id, second_id = new_id(), new_id()
    first = await ensure(acts, hire(first_id), domain)
    second = await ensure(acts, hire(second_id), domain)
    assert first.user_principal_name == f"ada.lovelace@{domain}"
    assert second.user_principal_name == f"ada.lovelace2@{domain}"
    # A retry of the second hire lands on the same user, not on a third address.
    assert (await ensure(acts, hire(second_id), domain)).user_id == second.user_id


async def test_group_memberships_idempotent_and_removable(
    acts: GraphActivities, graph: GraphServiceClient
) -> None:
    user = await ensure(acts, hire(new_id()), unique_domain())
    add = GroupMembershipInput(user_id=user.user_id, groups=GROUPS[:2])
    first = await env.run(acts.ensure_group_memberships, add)
    assert sorted(first.changed) == GROUPS[:2] and first.unchanged == []
    second = await env.run(acts.ensure_group_memberships, add)
    assert second.changed == [] and sorted(second.unchanged) == GROUPS[:2]
    group_id = first.group_ids[GROUPS[0]]
    members = await graph.groups.by_group_id(group_id).members.get()
    assert members and [m.id for m in members.value or []].count(user.user_id) == 1

    remove = GroupMembershipInput(user_id=user.user_id, groups=GROUPS[:2], present=False)
    removed = await env.run(acts.ensure_group_memberships, remove)
    assert sorted(removed.changed) == GROUPS[:2]
    again = await env.run(acts.ensure_group_memberships, remove)
    assert sorted(again.unchanged) == GROUPS[:2]
    member_of = await graph.users.by_user_id(user.user_id).member_of.get()
    assert member_of and member_of.value == []


async def test_unknown_group_is_not_retryable(acts: GraphActivities) -> None:
    user = await ensure(acts, hire(new_id()), unique_domain())
    with pytest.raises(ApplicationError) as err:
        await env.run(
            acts.ensure_group_memberships,
            GroupMembershipInput(user_id=user.user_id, groups=["No Such Group"]),
        )
    assert err.value.type == "GroupNotFound" and err.value.non_retryable


async def test_forty_groups_cost_at_most_two_more_requests_than_one(
    acts: GraphActivities, control: EmulatorControl
) -> None:
    domain = unique_domain()
    warm = await ensure(acts, hire(new_id()), domain)
    await env.run(
        acts.ensure_group_memberships, GroupMembershipInput(user_id=warm.user_id, groups=GROUPS)
    )
    one, forty = (
        await ensure(acts, hire(new_id()), domain),
        await ensure(acts, hire(new_id()), domain),
    )

    async def cost(user_id: str, groups: list[str]) -> int:
        before = await control.last_seq()
        result = await env.run(
            acts.ensure_group_memberships, GroupMembershipInput(user_id=user_id, groups=groups)
        )
        assert sorted(result.changed) == sorted(groups)
        return len(await control.requests(since=before))

    assert await cost(forty.user_id, GROUPS) <= await cost(one.user_id, GROUPS[:1]) + 2


async def test_throttling_becomes_retryable_error_with_retry_after(
    acts: GraphActivities, control: EmulatorControl
) -> None:
    user = await ensure(acts, hire(new_id()), unique_domain())
    await control.add_fault(429, f"PATCH /v1.0/users/{user.user_id}", retry_after=9, times=1)
    with pytest.raises(ApplicationError) as err:
        await env.run(
            acts.set_account_enabled, SetAccountEnabledInput(user_id=user.user_id, enabled=True)
        )
    assert err.value.type == "GraphThrottled"
    assert err.value.non_retryable is False
    assert err.value.next_retry_delay == timedelta(seconds=9)

    # A throttled $batch sub-request counts the same, with the batch's largest Retry-After.
    await control.add_fault(503, r"POST /v1\.0/groups/.*/members/\$ref", retry_after=11, times=2)
    with pytest.raises(ApplicationError) as sub:
        await env.run(
            acts.ensure_group_memberships,
            GroupMembershipInput(user_id=user.user_id, groups=GROUPS[:5]),
        )
    assert sub.value.type == "GraphUnavailable" and not sub.value.non_retryable
    assert sub.value.next_retry_delay == timedelta(seconds=11)
    # The retry completes what was throttled and finds the rest already done.
    done = await env.run(
        acts.ensure_group_memberships, GroupMembershipInput(user_id=user.user_id, groups=GROUPS[:5])
    )
    assert len(done.changed) == 2 and len(done.unchanged) == 3


async def test_bad_request_is_not_retryable(acts: GraphActivities) -> None:
    domain = unique_domain()
    manager_id = new_id()
    await ensure(acts, hire(manager_id, "Grace", "Hopper"), domain)
    user = await ensure(acts, hire(new_id()), domain)
    tap = IssueTapToManagerInput(
        user_id=user.user_id,
        user_display_name="Ada Lovelace",
        manager_employee_id=manager_id,
        start_at=datetime.now(UTC),
        lifetime_minutes=5,  # Graph accepts 10 to 43200
        mail_sender=SENDER,
    )
    with pytest.raises(ApplicationError) as err:
        await env.run(acts.issue_temporary_access_pass_to_manager, tap)
    assert err.value.type == "GraphBadRequest" and err.value.non_retryable
    assert "create temporary access pass" in str(err.value)

    with pytest.raises(ApplicationError) as missing:
        await env.run(acts.revoke_sign_in_sessions, UserIdInput(user_id=str(uuid.uuid4())))
    assert missing.value.type == "GraphNotFound" and missing.value.non_retryable


async def test_tap_mail_reaches_manager_and_secret_stays_out_of_result(
    acts: GraphActivities, control: EmulatorControl, graph: GraphServiceClient
) -> None:
    domain = unique_domain()
    manager_id = new_id()
    manager = await ensure(acts, hire(manager_id, "Grace", "Hopper"), domain)
    user = await ensure(acts, hire(new_id(), manager_id=manager_id), domain)
    tap = IssueTapToManagerInput(
        user_id=user.user_id,
        user_display_name="Ada Lovelace",
        manager_employee_id=manager_id,
        start_at=datetime.now(UTC),
        lifetime_minutes=480,
        mail_sender=SENDER,
    )
    since = (await control.outbox())[-1]["seq"] if await control.outbox() else 0
    issued = await env.run(acts.issue_temporary_access_pass_to_manager, tap)
    assert issued.mailed_to_user_id == manager.user_id and issued.lifetime_minutes == 480

    mails = await control.outbox(since=since)
    assert [(m["from"], m["to"]) for m in mails] == [(SENDER, [manager.user_principal_name])]
    secret = re.search(r"<b>([^<]+)</b>", mails[0]["body"])
    assert secret is not None
    assert secret.group(1) not in issued.model_dump_json()

    # A retry replaces the pass (its secret cannot be read back) and mails the new one.
    reissued = await env.run(acts.issue_temporary_access_pass_to_manager, tap)
    methods = await graph.users.by_user_id(
        user.user_id
    ).authentication.temporary_access_pass_methods.get()
    assert methods and [m.id for m in methods.value or []] == [reissued.tap_method_id]
    assert len(await control.outbox(since=since)) == 2


async def test_manager_not_provisioned_is_retryable(acts: GraphActivities) -> None:
    user = await ensure(acts, hire(new_id()), unique_domain())
    with pytest.raises(ApplicationError) as err:
        await env.run(
            acts.set_manager, SetManagerInput(user_id=user.user_id, manager_employee_id="NOPE-1")
        )
    assert err.value.type == "ManagerNotProvisioned" and err.value.non_retryable is False


async def test_set_manager_mail_revoke_and_delete(
    acts: GraphActivities, control: EmulatorControl, graph: GraphServiceClient
) -> None:
    domain = unique_domain()
    manager_id = new_id()
    manager = await ensure(acts, hire(manager_id, "Grace", "Hopper"), domain)
    user = await ensure(acts, hire(new_id()), domain)
    result = await env.run(
        acts.set_manager, SetManagerInput(user_id=user.user_id, manager_employee_id=manager_id)
    )
    assert result.manager_user_id == manager.user_id
    current = await graph.users.by_user_id(user.user_id).manager.get()
    assert current and current.id == manager.user_id

    await env.run(
        acts.send_mail,
        SendMailInput(sender=SENDER, to_user_id=user.user_id, subject="Welcome", html_body="<p/>"),
    )
    assert (await control.outbox())[-1]["to"] == [user.user_principal_name]
    await env.run(acts.revoke_sign_in_sessions, UserIdInput(user_id=user.user_id))
    await env.run(acts.delete_user, UserIdInput(user_id=user.user_id))
    await env.run(acts.delete_user, UserIdInput(user_id=user.user_id))  # already gone: fine

    # A leaver's manager is found by employeeId; someone not in Graph is retryable (not yet there).
    mailbox = await env.run(acts.find_mailbox, EmployeeIdInput(employee_id=manager_id))
    assert mailbox.user_id == manager.user_id and mailbox.address
    with pytest.raises(ApplicationError) as err:
        await env.run(acts.find_mailbox, EmployeeIdInput(employee_id=new_id()))
    assert err.value.type == "ManagerNotProvisioned" and not err.value.non_retryable


def test_settings_from_env(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    settings = GraphSettings.from_env(
        {"TENURE_GRAPH_URL": "http://127.0.0.1:9/v1.0/", "TENURE_GRAPH_TOKEN_FILE": str(token_file)}
    )
    assert (settings.base_url, settings.token, settings.host) == (
        "http://127.0.0.1:9/v1.0",
        "s3cret",
        "127.0.0.1",
    )
    assert "s3cret" not in repr(settings)
    azure = GraphSettings.from_env(
        {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "x"}
    )
    assert azure.base_url == DEFAULT_GRAPH_URL and azure.token is None
    with pytest.raises(ValueError, match="credentials"):
        GraphSettings.from_env({})


DOMAIN_OF_APPROVERS = "approvers.example.com"


async def test_a_groups_members_are_named_by_employee_id_across_pages(
    acts: GraphActivities, control: EmulatorControl
) -> None:
    # Approvers named by group: the member listing's $select (id,employeeId,accountEnabled) must
    # reach Graph whole. Built as a URL template, its commas were dropped and nobody resolved.
    users = [
        {"userPrincipalName": f"approver{i}@{DOMAIN_OF_APPROVERS}", "employeeId": f"AP{i:03d}"}
        for i in range(130)
    ]
    users.append({"userPrincipalName": f"noid@{DOMAIN_OF_APPROVERS}"})  # no employee id: left out
    await control.seed(
        users=users,
        groups=[{"displayName": "Approvers", "members": [u["userPrincipalName"] for u in users]}],
    )
    found = await acts.group_member_employee_ids("Approvers")
    assert sorted(found) == [f"AP{i:03d}" for i in range(130)]
