"""The Graph emulator's `roleManagement/directory` (directory roles and PIM), driven by msgraph-sdk:
built-in role definitions, eligibility, activation and deactivation, expiry, the errors Graph
answers, and the seed's planted assignments. Lists stay small: the SDK parses slowly."""

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
from msgraph.generated.models.expiration_pattern import ExpirationPattern
from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.request_schedule import RequestSchedule
from msgraph.generated.models.ticket_info import TicketInfo
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.unified_role_assignment_schedule_request import (
    UnifiedRoleAssignmentScheduleRequest,
)
from msgraph.generated.models.unified_role_eligibility_schedule_request import (
    UnifiedRoleEligibilityScheduleRequest,
)
from msgraph.generated.models.unified_role_schedule_request_actions import (
    UnifiedRoleScheduleRequestActions as Action,
)
from msgraph.generated.models.user import User
from msgraph.generated.role_management.directory.role_assignment_schedule_instances.role_assignment_schedule_instances_request_builder import (
    RoleAssignmentScheduleInstancesRequestBuilder,
)
from msgraph.generated.role_management.directory.role_assignment_schedule_requests.role_assignment_schedule_requests_request_builder import (
    RoleAssignmentScheduleRequestsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_assignment_schedules.role_assignment_schedules_request_builder import (
    RoleAssignmentSchedulesRequestBuilder,
)
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_definitions.role_definitions_request_builder import (
    RoleDefinitionsRequestBuilder,
)
from msgraph.generated.role_management.directory.role_eligibility_schedule_instances.role_eligibility_schedule_instances_request_builder import (
    RoleEligibilityScheduleInstancesRequestBuilder,
)
from msgraph.generated.role_management.directory.role_eligibility_schedules.role_eligibility_schedules_request_builder import (
    RoleEligibilitySchedulesRequestBuilder,
)

from activities.graph.client import GraphSettings, build_graph_client
from tests.support.graph_emulator import GraphEmulatorHandle, running_graph_emulator

DOMAIN = "roles.example.com"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
APPLICATION_ADMIN = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"


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


def _principal(principal_id: str, role_id: str | None = None) -> str:
    clause = f"principalId eq '{principal_id}'"
    return clause + (f" and roleDefinitionId eq '{role_id}'" if role_id else "")


async def new_user(graph: GraphServiceClient) -> str:
    nickname = f"r{uuid.uuid4().hex[:10]}"
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


def activation(
    action: Action, principal_id: str, role_id: str, info: RequestSchedule | None = None
) -> UnifiedRoleAssignmentScheduleRequest:
    return UnifiedRoleAssignmentScheduleRequest(
        action=action,
        principal_id=principal_id,
        role_definition_id=role_id,
        directory_scope_id="/",
        justification="incident follow-up",
        schedule_info=info,
        ticket_info=TicketInfo(ticket_number="CHG-1234", ticket_system="ServiceNow"),
    )


def eligibility(
    action: Action, principal_id: str, role_id: str, info: RequestSchedule | None = None
) -> UnifiedRoleEligibilityScheduleRequest:
    return UnifiedRoleEligibilityScheduleRequest(
        action=action,
        principal_id=principal_id,
        role_definition_id=role_id,
        directory_scope_id="/",
        justification="on-call rota",
        schedule_info=info,
    )


async def graph_error(call: Any) -> ODataError:
    with pytest.raises(ODataError) as caught:
        await call
    return caught.value


async def active_roles(graph: GraphServiceClient, principal_id: str) -> list[str]:
    page = await graph.role_management.directory.role_assignments.get(
        request_configuration=_query(RoleAssignmentsRequestBuilder, filter=_principal(principal_id))
    )
    return [a.role_definition_id or "" for a in (page.value if page else None) or []]


async def test_built_in_role_definitions(graph: GraphServiceClient) -> None:
    definitions = graph.role_management.directory.role_definitions
    page = await definitions.get()
    assert page and page.value
    by_template = {d.template_id: d for d in page.value}
    for template_id in (
        GLOBAL_ADMIN,
        USER_ADMIN,
        PRIVILEGED_ROLE_ADMIN,
        SECURITY_ADMIN,
        HELPDESK_ADMIN,
        EXCHANGE_ADMIN,
        APPLICATION_ADMIN,
    ):
        assert template_id in by_template
    ga = by_template[GLOBAL_ADMIN]
    assert ga.display_name == "Global Administrator" and ga.is_built_in and ga.is_enabled
    assert ga.id == GLOBAL_ADMIN and ga.role_permissions

    one = await definitions.by_unified_role_definition_id(USER_ADMIN).get()
    assert one and one.display_name == "User Administrator"
    named = await definitions.get(
        request_configuration=_query(
            RoleDefinitionsRequestBuilder, filter="displayName eq 'Helpdesk Administrator'"
        )
    )
    assert named and [d.template_id for d in named.value or []] == [HELPDESK_ADMIN]
    by_id = await definitions.get(
        request_configuration=_query(
            RoleDefinitionsRequestBuilder, filter=f"templateId eq '{EXCHANGE_ADMIN}'"
        )
    )
    assert by_id and [d.display_name for d in by_id.value or []] == ["Exchange Administrator"]
    custom = await definitions.get(
        request_configuration=_query(RoleDefinitionsRequestBuilder, filter="isBuiltIn eq false")
    )
    assert custom and custom.value == []
    missing = await graph_error(definitions.by_unified_role_definition_id(str(uuid.uuid4())).get())
    assert missing.response_status_code == 404


async def test_direct_role_assignments(graph: GraphServiceClient) -> None:
    user_id = await new_user(graph)
    assignments = graph.role_management.directory.role_assignments
    made = await assignments.post(
        UnifiedRoleAssignment(
            principal_id=user_id, role_definition_id=SECURITY_ADMIN, directory_scope_id="/"
        )
    )
    assert made and made.id and made.principal_id == user_id
    assert await active_roles(graph, user_id) == [SECURITY_ADMIN]
    fetched = await assignments.by_unified_role_assignment_id(made.id).get()
    assert fetched and fetched.role_definition_id == SECURITY_ADMIN
    by_role = await assignments.get(
        request_configuration=_query(
            RoleAssignmentsRequestBuilder, filter=_principal(user_id, SECURITY_ADMIN)
        )
    )
    assert by_role and [a.id for a in by_role.value or []] == [made.id]
    # A permanent direct assignment is also a schedule with no end.
    schedules = await graph.role_management.directory.role_assignment_schedules.get(
        request_configuration=_query(
            RoleAssignmentSchedulesRequestBuilder, filter=_principal(user_id)
        )
    )
    only = (schedules.value or [None])[0] if schedules else None
    assert only and only.assignment_type == "Assigned" and only.schedule_info
    assert only.schedule_info.expiration and only.schedule_info.expiration.type == (
        ExpirationPatternType.NoExpiration
    )
    twice = await graph_error(
        assignments.post(
            UnifiedRoleAssignment(principal_id=user_id, role_definition_id=SECURITY_ADMIN)
        )
    )
    assert twice.response_status_code == 400

    await assignments.by_unified_role_assignment_id(made.id).delete()
    assert await active_roles(graph, user_id) == []
    gone = await graph_error(assignments.by_unified_role_assignment_id(made.id).get())
    assert gone.response_status_code == 404


async def test_eligibility_then_activation_then_deactivation(graph: GraphServiceClient) -> None:
    user_id = await new_user(graph)
    directory = graph.role_management.directory
    until = datetime.now(UTC) + timedelta(days=30)
    granted = await directory.role_eligibility_schedule_requests.post(
        eligibility(
            Action.AdminAssign,
            user_id,
            USER_ADMIN,
            schedule(ExpirationPatternType.AfterDateTime, end=until),
        )
    )
    assert granted and granted.id and granted.status == "Provisioned"
    assert granted.action == Action.AdminAssign and granted.target_schedule_id
    again = await directory.role_eligibility_schedule_requests.by_unified_role_eligibility_schedule_request_id(
        granted.id
    ).get()
    assert again and again.principal_id == user_id

    schedules = await directory.role_eligibility_schedules.get(
        request_configuration=_query(
            RoleEligibilitySchedulesRequestBuilder, filter=_principal(user_id)
        )
    )
    assert schedules and len(schedules.value or []) == 1
    eligible = (schedules.value or [])[0]
    assert eligible.role_definition_id == USER_ADMIN and eligible.status == "Provisioned"
    assert eligible.schedule_info and eligible.schedule_info.expiration
    assert eligible.schedule_info.expiration.type == ExpirationPatternType.AfterDateTime
    end = eligible.schedule_info.expiration.end_date_time
    assert end and abs((end - until).total_seconds()) < 1
    instances = await directory.role_eligibility_schedule_instances.get(
        request_configuration=_query(
            RoleEligibilityScheduleInstancesRequestBuilder,
            filter=f"roleDefinitionId eq '{USER_ADMIN}' and principalId eq '{user_id}'",
        )
    )
    assert instances and [i.role_eligibility_schedule_id for i in instances.value or []] == [
        eligible.id
    ]
    # Eligible is not active.
    assert await active_roles(graph, user_id) == []

    activated = await directory.role_assignment_schedule_requests.post(
        activation(
            Action.SelfActivate,
            user_id,
            USER_ADMIN,
            schedule(ExpirationPatternType.AfterDuration, duration=timedelta(hours=2)),
        )
    )
    assert activated and activated.status == "Provisioned"
    assert activated.justification == "incident follow-up"
    assert activated.ticket_info and activated.ticket_info.ticket_number == "CHG-1234"
    assert activated.schedule_info and activated.schedule_info.expiration
    assert activated.schedule_info.expiration.duration == timedelta(hours=2)
    assert await active_roles(graph, user_id) == [USER_ADMIN]
    instances_now = await directory.role_assignment_schedule_instances.get(
        request_configuration=_query(
            RoleAssignmentScheduleInstancesRequestBuilder, filter=_principal(user_id)
        )
    )
    instance = (instances_now.value or [None])[0] if instances_now else None
    assert instance and instance.assignment_type == "Activated"
    assert instance.start_date_time and instance.end_date_time
    assert abs((instance.end_date_time - instance.start_date_time) - timedelta(hours=2)) < (
        timedelta(seconds=1)
    )
    twice = await graph_error(
        directory.role_assignment_schedule_requests.post(
            activation(
                Action.SelfActivate,
                user_id,
                USER_ADMIN,
                schedule(ExpirationPatternType.AfterDuration, duration=timedelta(hours=1)),
            )
        )
    )
    assert twice.response_status_code == 400
    assert twice.error and twice.error.code == "RoleAssignmentExists"

    deactivated = await directory.role_assignment_schedule_requests.post(
        activation(Action.SelfDeactivate, user_id, USER_ADMIN)
    )
    assert deactivated and deactivated.status == "Revoked"
    assert await active_roles(graph, user_id) == []
    not_active = await graph_error(
        directory.role_assignment_schedule_requests.post(
            activation(Action.SelfDeactivate, user_id, USER_ADMIN)
        )
    )
    assert not_active.error and not_active.error.code == "RoleAssignmentDoesNotExist"

    removed = await directory.role_eligibility_schedule_requests.post(
        eligibility(Action.AdminRemove, user_id, USER_ADMIN)
    )
    assert removed and removed.status == "Revoked"
    left = await directory.role_eligibility_schedules.get(
        request_configuration=_query(
            RoleEligibilitySchedulesRequestBuilder, filter=_principal(user_id)
        )
    )
    assert left and left.value == []
    # Without an eligibility, activation fails the way PIM's policy check does.
    refused = await graph_error(
        directory.role_assignment_schedule_requests.post(
            activation(
                Action.SelfActivate,
                user_id,
                USER_ADMIN,
                schedule(ExpirationPatternType.AfterDuration, duration=timedelta(hours=1)),
            )
        )
    )
    assert refused.response_status_code == 400
    assert refused.error and refused.error.code == "RoleAssignmentRequestPolicyValidationFailed"
    assert "EligibilityRule" in (refused.error.message or "")


async def test_admin_assign_remove_duplicate_and_scheduled_start(
    graph: GraphServiceClient,
) -> None:
    user_id = await new_user(graph)
    requests = graph.role_management.directory.role_assignment_schedule_requests
    made = await requests.post(activation(Action.AdminAssign, user_id, EXCHANGE_ADMIN, schedule()))
    assert made and made.status == "Provisioned"
    assert await active_roles(graph, user_id) == [EXCHANGE_ADMIN]
    duplicate = await graph_error(
        requests.post(activation(Action.AdminAssign, user_id, EXCHANGE_ADMIN, schedule()))
    )
    assert duplicate.response_status_code == 400
    assert duplicate.error and duplicate.error.code == "RoleAssignmentExists"

    removed = await requests.post(activation(Action.AdminRemove, user_id, EXCHANGE_ADMIN))
    assert removed and removed.status == "Revoked"
    assert await active_roles(graph, user_id) == []
    nothing = await graph_error(
        requests.post(activation(Action.AdminRemove, user_id, EXCHANGE_ADMIN))
    )
    assert nothing.response_status_code == 400
    assert nothing.error and nothing.error.code == "RoleAssignmentDoesNotExist"

    # A future start: granted now, scheduled, and not active until it begins.
    later = datetime.now(UTC) + timedelta(hours=1)
    future = await requests.post(
        activation(
            Action.AdminAssign,
            user_id,
            HELPDESK_ADMIN,
            schedule(ExpirationPatternType.AfterDuration, duration=timedelta(hours=4), start=later),
        )
    )
    assert future and future.status == "Scheduled"
    assert await active_roles(graph, user_id) == []
    planned = await graph.role_management.directory.role_assignment_schedules.get(
        request_configuration=_query(
            RoleAssignmentSchedulesRequestBuilder, filter=_principal(user_id, HELPDESK_ADMIN)
        )
    )
    assert planned and len(planned.value or []) == 1

    listed = await requests.get(
        request_configuration=_query(
            RoleAssignmentScheduleRequestsRequestBuilder, filter=f"principalId eq '{user_id}'"
        )
    )
    assert listed and [r.action for r in listed.value or []] == [
        Action.AdminAssign,
        Action.AdminRemove,
        Action.AdminAssign,
    ]


async def test_unknown_role_and_principal(graph: GraphServiceClient) -> None:
    user_id = await new_user(graph)
    requests = graph.role_management.directory.role_assignment_schedule_requests
    bad_role = await graph_error(
        requests.post(activation(Action.AdminAssign, user_id, str(uuid.uuid4()), schedule()))
    )
    assert bad_role.response_status_code == 404
    assert bad_role.error and bad_role.error.code == "Request_ResourceNotFound"
    bad_principal = await graph_error(
        requests.post(activation(Action.AdminAssign, str(uuid.uuid4()), GLOBAL_ADMIN, schedule()))
    )
    assert bad_principal.response_status_code == 404
    # Eligibility is granted by admins only.
    self_eligible = await graph_error(
        graph.role_management.directory.role_eligibility_schedule_requests.post(
            eligibility(Action.SelfActivate, user_id, GLOBAL_ADMIN, schedule())
        )
    )
    assert self_eligible.response_status_code == 400


async def test_short_activation_expires(graph: GraphServiceClient) -> None:
    user_id = await new_user(graph)
    directory = graph.role_management.directory
    await directory.role_eligibility_schedule_requests.post(
        eligibility(Action.AdminAssign, user_id, APPLICATION_ADMIN, schedule())
    )
    await directory.role_assignment_schedule_requests.post(
        activation(
            Action.SelfActivate,
            user_id,
            APPLICATION_ADMIN,
            schedule(ExpirationPatternType.AfterDuration, duration=timedelta(seconds=2)),
        )
    )
    assert await active_roles(graph, user_id) == [APPLICATION_ADMIN]
    await asyncio.sleep(2.5)
    assert await active_roles(graph, user_id) == []
    instances = await directory.role_assignment_schedule_instances.get(
        request_configuration=_query(
            RoleAssignmentScheduleInstancesRequestBuilder, filter=_principal(user_id)
        )
    )
    assert instances and instances.value == []
    # The eligibility outlives the activation, so the person can activate again.
    again = await directory.role_assignment_schedule_requests.post(
        activation(
            Action.SelfActivate,
            user_id,
            APPLICATION_ADMIN,
            schedule(ExpirationPatternType.AfterDuration, duration=timedelta(minutes=30)),
        )
    )
    assert again and again.status == "Provisioned"


async def test_seed_plants_roles_and_user_deletion_drops_them(
    graph: GraphServiceClient, http: httpx.AsyncClient
) -> None:
    upn = f"planted-{uuid.uuid4().hex[:6]}@{DOMAIN}"
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    answer = await http.post(
        "/_emulator/seed",
        json={
            "users": [{"userPrincipalName": upn}],
            "roleAssignments": [
                {"principal": upn, "role": "Global Administrator", "permanent": True},
                {"principal": upn, "role": PRIVILEGED_ROLE_ADMIN, "endDateTime": past},
                {"principal": upn, "role": "Security Administrator", "eligible": True},
            ],
        },
    )
    assert answer.status_code == 200, answer.text
    seeded = answer.json()
    user_id = seeded["users"][upn]
    assert len(seeded["roleAssignments"]) == 3
    # The lapsed one is not active; the eligible one is not active either.
    assert await active_roles(graph, user_id) == [GLOBAL_ADMIN]
    # Idempotent, like the rest of the seed (the lapsed one is planted again, being gone).
    again = (
        await http.post(
            "/_emulator/seed",
            json={"roleAssignments": [{"principal": upn, "role": GLOBAL_ADMIN, "permanent": True}]},
        )
    ).json()
    assert again["roleAssignments"] == [seeded["roleAssignments"][0]]
    unknown = await http.post(
        "/_emulator/seed",
        json={"roleAssignments": [{"principal": upn, "role": "Chief Wizard"}]},
    )
    assert unknown.status_code == 400

    await graph.users.by_user_id(user_id).delete()
    gone = await graph.role_management.directory.role_eligibility_schedules.get(
        request_configuration=_query(
            RoleEligibilitySchedulesRequestBuilder, filter=_principal(user_id)
        )
    )
    assert gone and gone.value == []
    assert await active_roles(graph, user_id) == []


async def test_reset_clears_roles_and_state_survives_restart(tmp_path: Any) -> None:
    db = str(tmp_path / "graph.db")
    async with running_graph_emulator(db_path=db) as handle:
        graph = build_graph_client(GraphSettings(base_url=handle.base_url, token=handle.token))
        user_id = await new_user(graph)
        await graph.role_management.directory.role_assignment_schedule_requests.post(
            activation(Action.AdminAssign, user_id, GLOBAL_ADMIN, schedule())
        )
    async with running_graph_emulator(db_path=db) as handle:
        graph = build_graph_client(GraphSettings(base_url=handle.base_url, token=handle.token))
        assert await active_roles(graph, user_id) == [GLOBAL_ADMIN]
        async with httpx.AsyncClient(
            base_url=handle.root, headers={"Authorization": f"Bearer {handle.token}"}
        ) as http:
            assert (await http.delete("/_emulator/roles")).status_code == 204
        assert await active_roles(graph, user_id) == []
