"""The Graph emulator's `identityGovernance/privilegedAccess/group` (PIM for groups), driven by
msgraph-sdk: active member and owner assignments and the memberships they give, eligibility and
activation, the errors Graph answers, scheduled starts and expiry on read, reset and restart.
Lists stay small: the SDK parses slowly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.identity_governance.privileged_access.group.assignment_schedule_instances.assignment_schedule_instances_request_builder import (
    AssignmentScheduleInstancesRequestBuilder,
)
from msgraph.generated.identity_governance.privileged_access.group.assignment_schedule_requests.assignment_schedule_requests_request_builder import (
    AssignmentScheduleRequestsRequestBuilder,
)
from msgraph.generated.identity_governance.privileged_access.group.assignment_schedules.assignment_schedules_request_builder import (
    AssignmentSchedulesRequestBuilder,
)
from msgraph.generated.identity_governance.privileged_access.group.eligibility_schedule_instances.eligibility_schedule_instances_request_builder import (
    EligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.identity_governance.privileged_access.group.eligibility_schedules.eligibility_schedules_request_builder import (
    EligibilitySchedulesRequestBuilder,
)
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.privileged_access_group_assignment_schedule_request import (
    PrivilegedAccessGroupAssignmentScheduleRequest,
)
from msgraph.generated.models.privileged_access_group_assignment_type import (
    PrivilegedAccessGroupAssignmentType,
)
from msgraph.generated.models.privileged_access_group_eligibility_schedule_request import (
    PrivilegedAccessGroupEligibilityScheduleRequest,
)
from msgraph.generated.models.privileged_access_group_member_type import (
    PrivilegedAccessGroupMemberType,
)
from msgraph.generated.models.privileged_access_group_relationships import (
    PrivilegedAccessGroupRelationships as Access,
)
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.request_schedule import RequestSchedule
from msgraph.generated.models.schedule_request_actions import ScheduleRequestActions as Action
from msgraph.generated.models.user import User

from activities.graph.client import GraphSettings, build_graph_client
from tests.support.graph_emulator import GraphEmulatorHandle, running_graph_emulator

DOMAIN = "pim-groups.example.com"
PIM = "/v1.0/identityGovernance/privilegedAccess/group"


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[GraphEmulatorHandle]:
    async with running_graph_emulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def graph(emulator: GraphEmulatorHandle) -> GraphServiceClient:
    return build_graph_client(GraphSettings(base_url=emulator.base_url, token=emulator.token))


@pytest.fixture
async def http(emulator: GraphEmulatorHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=emulator.root, headers={"Authorization": f"Bearer {emulator.token}"}
    ) as client:
        yield client


def _query(builder: Any, **params: object) -> RequestConfiguration:
    name = builder.__name__ + "GetQueryParameters"
    return RequestConfiguration(query_parameters=getattr(builder, name)(**params))


def _scope(group_id: str, principal_id: str | None = None, access: str | None = None) -> str:
    clause = f"groupId eq '{group_id}'"
    clause += f" and principalId eq '{principal_id}'" if principal_id else ""
    return clause + (f" and accessId eq '{access}'" if access else "")


async def new_user(graph: GraphServiceClient) -> str:
    nickname = f"p{uuid.uuid4().hex[:10]}"
    user = await graph.users.post(
        User(
            account_enabled=True,
            display_name=nickname,
            mail_nickname=nickname,
            user_principal_name=f"{nickname}@{DOMAIN}",
            password_profile=PasswordProfile(password="Xy!" + uuid.uuid4().hex),
        )
    )
    assert user and user.id
    return user.id


async def new_group(graph: GraphServiceClient) -> str:
    nickname = f"g{uuid.uuid4().hex[:10]}"
    group = await graph.groups.post(
        Group(
            display_name=f"PIM {nickname}",
            mail_nickname=nickname,
            mail_enabled=False,
            security_enabled=True,
        )
    )
    assert group and group.id
    return group.id


def schedule(
    kind: ExpirationPatternType = ExpirationPatternType.NoExpiration,
    *,
    duration: timedelta | None = None,
    end: datetime | None = None,
    start: datetime | None = None,
) -> RequestSchedule:
    return RequestSchedule(
        start_date_time=start,
        expiration=ExpirationPattern(type=kind, duration=duration, end_date_time=end),
    )


def assignment(
    action: Action,
    principal_id: str,
    group_id: str,
    info: RequestSchedule | None = None,
    access: Access = Access.Member,
) -> PrivilegedAccessGroupAssignmentScheduleRequest:
    return PrivilegedAccessGroupAssignmentScheduleRequest(
        access_id=access,
        action=action,
        principal_id=principal_id,
        group_id=group_id,
        justification="break-glass drill",
        schedule_info=info,
    )


def eligibility(
    action: Action,
    principal_id: str,
    group_id: str,
    info: RequestSchedule | None = None,
    access: Access = Access.Member,
) -> PrivilegedAccessGroupEligibilityScheduleRequest:
    return PrivilegedAccessGroupEligibilityScheduleRequest(
        access_id=access,
        action=action,
        principal_id=principal_id,
        group_id=group_id,
        justification="on-call rota",
        schedule_info=info,
    )


async def graph_error(call: Any) -> ODataError:
    with pytest.raises(ODataError) as caught:
        await call
    return caught.value


def _code(error: ODataError) -> str | None:
    return error.error.code if error.error else None


async def members(graph: GraphServiceClient, group_id: str) -> list[str]:
    page = await graph.groups.by_group_id(group_id).members.get()
    return [m.id or "" for m in (page.value if page else None) or []]


async def owners(graph: GraphServiceClient, group_id: str) -> list[str]:
    page = await graph.groups.by_group_id(group_id).owners.get()
    return [o.id or "" for o in (page.value if page else None) or []]


async def active(graph: GraphServiceClient, group_id: str, principal_id: str) -> list[Any]:
    page = (
        await graph.identity_governance.privileged_access.group.assignment_schedule_instances.get(
            request_configuration=_query(
                AssignmentScheduleInstancesRequestBuilder, filter=_scope(group_id, principal_id)
            )
        )
    )
    return list((page.value if page else None) or [])


async def test_member_assignment_with_expiration_then_admin_remove(
    graph: GraphServiceClient,
) -> None:
    user_id, group_id = await new_user(graph), await new_group(graph)
    pim = graph.identity_governance.privileged_access.group
    made = await pim.assignment_schedule_requests.post(
        assignment(
            Action.AdminAssign,
            user_id,
            group_id,
            schedule(ExpirationPatternType.AfterDuration, duration=timedelta(hours=2)),
        )
    )
    assert made and made.status == "Provisioned" and made.action == Action.AdminAssign
    assert made.access_id == Access.Member and made.group_id == group_id
    assert made.target_schedule_id and made.target_schedule_id.startswith(f"{group_id}_member_")
    assert made.schedule_info and made.schedule_info.expiration
    assert made.schedule_info.expiration.duration == timedelta(hours=2)

    assert await members(graph, group_id) == [user_id]
    assert await owners(graph, group_id) == []
    member_of = await graph.users.by_user_id(user_id).member_of.get()
    assert member_of and [g.id for g in member_of.value or []] == [group_id]

    schedules = await pim.assignment_schedules.get(
        request_configuration=_query(
            AssignmentSchedulesRequestBuilder, filter=_scope(group_id, user_id, "member")
        )
    )
    only = (schedules.value or [None])[0] if schedules else None
    assert only and only.id == made.target_schedule_id
    assert only.assignment_type == PrivilegedAccessGroupAssignmentType.Assigned
    assert only.member_type == PrivilegedAccessGroupMemberType.Direct
    assert only.status == "Provisioned" and only.schedule_info
    instances = await active(graph, group_id, user_id)
    assert [i.assignment_schedule_id for i in instances] == [made.target_schedule_id]
    assert instances[0].end_date_time and instances[0].start_date_time
    assert instances[0].end_date_time - instances[0].start_date_time == timedelta(hours=2)
    fetched = await pim.assignment_schedules.by_privileged_access_group_assignment_schedule_id(
        made.target_schedule_id
    ).get()
    assert fetched and fetched.principal_id == user_id
    as_owner = await pim.assignment_schedules.get(
        request_configuration=_query(
            AssignmentSchedulesRequestBuilder, filter=_scope(group_id, user_id, "owner")
        )
    )
    assert as_owner and as_owner.value == []

    twice = await graph_error(
        pim.assignment_schedule_requests.post(assignment(Action.AdminAssign, user_id, group_id))
    )
    assert twice.response_status_code == 400 and _code(twice) == "RoleAssignmentExists"

    removed = await pim.assignment_schedule_requests.post(
        assignment(Action.AdminRemove, user_id, group_id)
    )
    assert removed and removed.status == "Revoked"
    assert removed.target_schedule_id == made.target_schedule_id
    assert await members(graph, group_id) == []
    assert await active(graph, group_id, user_id) == []
    again = await graph_error(
        pim.assignment_schedule_requests.post(assignment(Action.AdminRemove, user_id, group_id))
    )
    assert again.response_status_code == 400 and _code(again) == "RoleAssignmentDoesNotExist"

    # The audit trail keeps both requests, scoped by group and principal.
    requests = await pim.assignment_schedule_requests.get(
        request_configuration=_query(
            AssignmentScheduleRequestsRequestBuilder, filter=_scope(group_id, user_id)
        )
    )
    assert requests and [r.action for r in requests.value or []] == [
        Action.AdminAssign,
        Action.AdminRemove,
    ]
    assert made.id
    one = await pim.assignment_schedule_requests.by_privileged_access_group_assignment_schedule_request_id(
        made.id
    ).get()
    assert one and one.justification == "break-glass drill"


async def test_owner_assignment(graph: GraphServiceClient) -> None:
    user_id, group_id = await new_user(graph), await new_group(graph)
    pim = graph.identity_governance.privileged_access.group
    made = await pim.assignment_schedule_requests.post(
        assignment(Action.AdminAssign, user_id, group_id, schedule(), Access.Owner)
    )
    assert made and made.target_schedule_id and f"{group_id}_owner_" in made.target_schedule_id
    assert await owners(graph, group_id) == [user_id]
    assert await members(graph, group_id) == []
    # Owner and member are separate relationships: both may be held at once.
    await pim.assignment_schedule_requests.post(
        assignment(Action.AdminAssign, user_id, group_id, schedule(), Access.Member)
    )
    assert await members(graph, group_id) == [user_id]
    assert len(await active(graph, group_id, user_id)) == 2

    await pim.assignment_schedule_requests.post(
        assignment(Action.AdminRemove, user_id, group_id, access=Access.Owner)
    )
    assert await owners(graph, group_id) == []
    assert await members(graph, group_id) == [user_id]


async def test_eligibility_then_self_activation_then_deactivation(
    graph: GraphServiceClient,
) -> None:
    user_id, group_id = await new_user(graph), await new_group(graph)
    pim = graph.identity_governance.privileged_access.group
    half_hour = schedule(ExpirationPatternType.AfterDuration, duration=timedelta(minutes=30))

    not_eligible = await graph_error(
        pim.assignment_schedule_requests.post(
            assignment(Action.SelfActivate, user_id, group_id, half_hour)
        )
    )
    assert not_eligible.response_status_code == 400
    assert _code(not_eligible) == "RoleAssignmentRequestPolicyValidationFailed"
    assert "EligibilityRule" in str(not_eligible.error.message if not_eligible.error else "")

    until = datetime.now(UTC) + timedelta(days=30)
    granted = await pim.eligibility_schedule_requests.post(
        eligibility(
            Action.AdminAssign,
            user_id,
            group_id,
            schedule(ExpirationPatternType.AfterDateTime, end=until),
        )
    )
    assert granted and granted.status == "Provisioned" and granted.target_schedule_id
    # Eligible is not a member.
    assert await members(graph, group_id) == []
    eligible = await pim.eligibility_schedules.get(
        request_configuration=_query(EligibilitySchedulesRequestBuilder, filter=_scope(group_id))
    )
    assert eligible and [e.principal_id for e in eligible.value or []] == [user_id]
    instances = await pim.eligibility_schedule_instances.get(
        request_configuration=_query(
            EligibilityScheduleInstancesRequestBuilder, filter=f"principalId eq '{user_id}'"
        )
    )
    assert instances and [i.eligibility_schedule_id for i in instances.value or []] == [
        granted.target_schedule_id
    ]
    self_eligible = await graph_error(
        pim.eligibility_schedule_requests.post(
            eligibility(Action.SelfActivate, user_id, group_id, half_hour)
        )
    )
    assert self_eligible.response_status_code == 400
    assert _code(self_eligible) == "InvalidRequestAction"

    unbounded = await graph_error(
        pim.assignment_schedule_requests.post(
            assignment(Action.SelfActivate, user_id, group_id, schedule())
        )
    )
    assert "ExpirationRule" in str(unbounded.error.message if unbounded.error else "")
    # Eligible as member only: an owner activation is refused.
    as_owner = await graph_error(
        pim.assignment_schedule_requests.post(
            assignment(Action.SelfActivate, user_id, group_id, half_hour, Access.Owner)
        )
    )
    assert _code(as_owner) == "RoleAssignmentRequestPolicyValidationFailed"

    activated = await pim.assignment_schedule_requests.post(
        assignment(Action.SelfActivate, user_id, group_id, half_hour)
    )
    assert activated and activated.status == "Provisioned"
    assert await members(graph, group_id) == [user_id]
    [instance] = await active(graph, group_id, user_id)
    assert instance.assignment_type == PrivilegedAccessGroupAssignmentType.Activated

    deactivated = await pim.assignment_schedule_requests.post(
        assignment(Action.SelfDeactivate, user_id, group_id)
    )
    assert deactivated and deactivated.status == "Revoked"
    assert await members(graph, group_id) == []
    # The eligibility outlives the activation.
    still = await pim.eligibility_schedules.get(
        request_configuration=_query(
            EligibilitySchedulesRequestBuilder, filter=_scope(group_id, user_id)
        )
    )
    assert still and len(still.value or []) == 1


async def test_errors_are_graph_shaped(graph: GraphServiceClient, http: httpx.AsyncClient) -> None:
    user_id, group_id = await new_user(graph), await new_group(graph)
    pim = graph.identity_governance.privileged_access.group

    no_group = await graph_error(
        pim.assignment_schedule_requests.post(
            assignment(Action.AdminAssign, user_id, str(uuid.uuid4()))
        )
    )
    assert no_group.response_status_code == 404 and _code(no_group) == "Request_ResourceNotFound"
    no_principal = await graph_error(
        pim.assignment_schedule_requests.post(
            assignment(Action.AdminAssign, str(uuid.uuid4()), group_id)
        )
    )
    assert no_principal.response_status_code == 404
    unsupported = await graph_error(
        pim.assignment_schedule_requests.post(assignment(Action.AdminRenew, user_id, group_id))
    )
    assert unsupported.response_status_code == 400 and _code(unsupported) == "InvalidRequestAction"
    no_end = await graph_error(
        pim.assignment_schedule_requests.post(
            assignment(
                Action.AdminAssign,
                user_id,
                group_id,
                schedule(ExpirationPatternType.AfterDateTime),
            )
        )
    )
    assert _code(no_end) == "InvalidScheduleInfo"
    backwards = await graph_error(
        pim.assignment_schedule_requests.post(
            assignment(
                Action.AdminAssign,
                user_id,
                group_id,
                schedule(
                    ExpirationPatternType.AfterDateTime,
                    end=datetime.now(UTC) - timedelta(hours=1),
                ),
            )
        )
    )
    assert _code(backwards) == "InvalidScheduleInfo"
    unscoped = await graph_error(pim.assignment_schedules.get())
    assert unscoped.response_status_code == 400
    only_access = await graph_error(
        pim.eligibility_schedule_instances.get(
            request_configuration=_query(
                EligibilityScheduleInstancesRequestBuilder, filter="accessId eq 'member'"
            )
        )
    )
    assert only_access.response_status_code == 400
    bad_property = await graph_error(
        pim.assignment_schedules.get(
            request_configuration=_query(
                AssignmentSchedulesRequestBuilder, filter=f"roleDefinitionId eq '{group_id}'"
            )
        )
    )
    assert _code(bad_property) == "Request_UnsupportedQuery"
    missing = await graph_error(
        pim.assignment_schedule_instances.by_privileged_access_group_assignment_schedule_instance_id(
            f"{group_id}_member_{uuid.uuid4()}"
        ).get()
    )
    assert missing.response_status_code == 404

    # What the SDK cannot send: an unknown relationship, or no groupId at all.
    wrong_access = await http.post(
        f"{PIM}/assignmentScheduleRequests",
        json={
            "accessId": "admin",
            "principalId": user_id,
            "groupId": group_id,
            "action": "adminAssign",
        },
    )
    assert wrong_access.status_code == 400
    assert "privilegedAccessGroupRelationships" in wrong_access.json()["error"]["message"]
    no_group_id = await http.post(
        f"{PIM}/eligibilityScheduleRequests",
        json={"accessId": "member", "principalId": user_id, "action": "adminAssign"},
    )
    assert no_group_id.status_code == 400
    assert "groupId" in no_group_id.json()["error"]["message"]
    nested = await http.post(
        f"{PIM}/assignmentScheduleRequests",
        json={
            "accessId": "member",
            "principalId": await new_group(graph),
            "groupId": group_id,
            "action": "adminAssign",
        },
    )
    assert nested.status_code == 400
    wrong_method = await http.delete(f"{PIM}/assignmentScheduleRequests")
    assert wrong_method.status_code == 405
    assert await members(graph, group_id) == []


async def test_scheduled_start_and_expiry_on_read(graph: GraphServiceClient) -> None:
    user_id, group_id = await new_user(graph), await new_group(graph)
    pim = graph.identity_governance.privileged_access.group
    start = datetime.now(UTC) + timedelta(seconds=1)
    made = await pim.assignment_schedule_requests.post(
        assignment(
            Action.AdminAssign,
            user_id,
            group_id,
            schedule(
                ExpirationPatternType.AfterDuration, duration=timedelta(seconds=3), start=start
            ),
        )
    )
    assert made and made.status == "Scheduled"
    # Granted, not yet in force: a schedule, no instance, no membership.
    assert await members(graph, group_id) == []
    assert await active(graph, group_id, user_id) == []
    schedules = await pim.assignment_schedules.get(
        request_configuration=_query(AssignmentSchedulesRequestBuilder, filter=_scope(group_id))
    )
    assert schedules and len(schedules.value or []) == 1

    await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.5)
    assert await members(graph, group_id) == [user_id]
    assert len(await active(graph, group_id, user_id)) == 1

    await asyncio.sleep(
        max(0.0, (start + timedelta(seconds=3) - datetime.now(UTC)).total_seconds())
    )
    await asyncio.sleep(0.3)
    # The first read after the end sees it gone, wherever it reads.
    assert await members(graph, group_id) == []
    member_of = await graph.users.by_user_id(user_id).member_of.get()
    assert member_of and member_of.value == []
    assert await active(graph, group_id, user_id) == []
    gone = await pim.assignment_schedules.get(
        request_configuration=_query(AssignmentSchedulesRequestBuilder, filter=_scope(group_id))
    )
    assert gone and gone.value == []
    # Ran out, so it can be granted again.
    again = await pim.assignment_schedule_requests.post(
        assignment(Action.AdminAssign, user_id, group_id)
    )
    assert again and again.status == "Provisioned"


async def test_a_direct_membership_survives_pim_removal(graph: GraphServiceClient) -> None:
    user_id, group_id = await new_user(graph), await new_group(graph)
    pim = graph.identity_governance.privileged_access.group
    await graph.groups.by_group_id(group_id).members.ref.post(
        ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}")
    )
    await pim.assignment_schedule_requests.post(
        assignment(Action.AdminAssign, user_id, group_id, schedule())
    )
    assert await members(graph, group_id) == [user_id]
    await pim.assignment_schedule_requests.post(assignment(Action.AdminRemove, user_id, group_id))
    # PIM takes away only what it gave.
    assert await members(graph, group_id) == [user_id]


async def test_group_deletion_drops_its_schedules(graph: GraphServiceClient) -> None:
    user_id, group_id = await new_user(graph), await new_group(graph)
    pim = graph.identity_governance.privileged_access.group
    await pim.eligibility_schedule_requests.post(
        eligibility(Action.AdminAssign, user_id, group_id, schedule())
    )
    await graph.groups.by_group_id(group_id).delete()
    left = await pim.eligibility_schedules.get(
        request_configuration=_query(
            EligibilitySchedulesRequestBuilder, filter=f"principalId eq '{user_id}'"
        )
    )
    assert left and left.value == []


async def test_reset_clears_pim_for_groups_and_state_survives_restart(tmp_path: Any) -> None:
    db = str(tmp_path / "graph.db")
    async with running_graph_emulator(db_path=db) as handle:
        graph = build_graph_client(GraphSettings(base_url=handle.base_url, token=handle.token))
        user_id, group_id = await new_user(graph), await new_group(graph)
        await graph.identity_governance.privileged_access.group.assignment_schedule_requests.post(
            assignment(Action.AdminAssign, user_id, group_id, schedule(), Access.Owner)
        )
    async with running_graph_emulator(db_path=db) as handle:
        graph = build_graph_client(GraphSettings(base_url=handle.base_url, token=handle.token))
        assert await owners(graph, group_id) == [user_id]
        assert len(await active(graph, group_id, user_id)) == 1
        async with httpx.AsyncClient(
            base_url=handle.root, headers={"Authorization": f"Bearer {handle.token}"}
        ) as http:
            assert (await http.delete("/_emulator/pim-groups")).status_code == 204
        assert await owners(graph, group_id) == []
        assert await active(graph, group_id, user_id) == []
