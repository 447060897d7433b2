"""Orphan-sweep activities: read every directory's accounts and Tenure's identities; disable one.

Reads are paged and heartbeat per page; the two writes are idempotent (disabling an account that
is already disabled, or gone, succeeds), so a retry after a crash is harmless (docs/architecture.md, rule 3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from scim2_models import PatchOp, PatchOperation
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.graph.client import send_for_json
from activities.graph.errors import graph_call
from activities.scim.client import SCIM_NOT_FOUND, ScimAppClient, ScimUser, unknown_app
from domain.detective.sweep import (
    GRAPH,
    AccountInventory,
    DisableAccountInput,
    FoundAccount,
    ListScimAccountsInput,
    ManagedIdentities,
)
from domain.lifecycle.identity import IdentityContract
from domain.provisioning import ActivityNames
from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE

_GRAPH_SELECT = ["id", "employeeId", "userPrincipalName", "accountEnabled"]
# Running runs only: a continued-as-new identity leaves closed runs behind with stale stages.
MANAGED_QUERY = f"WorkflowType = '{IdentityContract.WORKFLOW}' AND ExecutionStatus = 'Running'"


class SweepActivities:
    """The sweep's I/O; the Graph client, SCIM app clients and Temporal client are injected."""

    def __init__(
        self,
        graph: GraphServiceClient,
        scim: Mapping[str, ScimAppClient],
        temporal: Client,
        *,
        graph_page_size: int = 999,
        scim_page_size: int = 100,
    ) -> None:
        self._graph = graph
        self._scim = dict(scim)
        self._temporal = temporal
        self._graph_page_size = graph_page_size
        self._scim_page_size = scim_page_size

    @activity.defn(name=ActivityNames.SWEEP_LIST_GRAPH_ACCOUNTS)
    async def list_graph_accounts(self) -> AccountInventory:
        # Every user, filtered here: `employeeId ne null` needs Graph's advanced queries (and
        # ConsistencyLevel: eventual), which the emulator does not offer.
        config = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                select=_GRAPH_SELECT, top=self._graph_page_size
            )
        )
        request = self._graph.users.to_get_request_information(request_configuration=config)
        accounts: list[FoundAccount] = []
        pages = 0
        while True:
            with graph_call("list users"):
                page = await send_for_json(self._graph.request_adapter, request)
            pages += 1
            accounts += [_graph_account(user) for user in page.get("value") or []]
            activity.heartbeat(pages)
            next_link = page.get("@odata.nextLink")
            if not next_link:
                break
            request = RequestInformation(Method.GET)
            request.url = next_link  # absolute, and already carries $select/$top/$skiptoken
        found = [a for a in accounts if a.employee_id]
        activity.logger.info("graph: %d users with an employeeId (%d pages)", len(found), pages)
        return AccountInventory(accounts=found)

    @activity.defn(name=ActivityNames.SWEEP_LIST_SCIM_ACCOUNTS)
    async def list_scim_accounts(self, input: ListScimAccountsInput) -> AccountInventory:
        client = self._client(input.app)
        accounts: list[FoundAccount] = []
        start = 1  # SCIM's startIndex is 1-based (RFC 7644 §3.4.2.4)
        while True:
            users, total = await client.list_users(start, self._scim_page_size)
            accounts += [a for u in users if (a := _scim_account(input.app, u)) is not None]
            start += len(users)
            activity.heartbeat(start)
            if not users or start > total:
                break
        activity.logger.info("%s: %d accounts with an employee id", input.app, len(accounts))
        return AccountInventory(accounts=accounts)

    @activity.defn(name=ActivityNames.SWEEP_LIST_MANAGED_IDENTITIES)
    async def list_managed_identities(self) -> ManagedIdentities:
        stages: dict[str, str] = {}
        async for execution in self._temporal.list_workflows(MANAGED_QUERY):
            attributes = execution.typed_search_attributes
            employee_id = attributes.get(EMPLOYEE_ID) or execution.id.removeprefix("identity-")
            stages[employee_id] = attributes.get(LIFECYCLE_STAGE) or "none"
            if len(stages) % 1000 == 0:
                activity.heartbeat(len(stages))
        return ManagedIdentities(stages=stages)

    @activity.defn(name=ActivityNames.SWEEP_DISABLE_GRAPH_ACCOUNT)
    async def disable_graph_account(self, input: DisableAccountInput) -> None:
        adapter = self._graph.request_adapter
        root = adapter.base_url.rstrip("/")
        request = RequestInformation(Method.PATCH, f"{root}/users/{quote(input.id)}")
        request.headers.try_add("Content-Type", "application/json")
        request.content = json.dumps({"accountEnabled": False}).encode()
        try:
            with graph_call(f"disable user {input.id}"):
                await adapter.send_no_response_content_async(request, {"XXX": ODataError})
        except ApplicationError as err:
            if err.type != "GraphNotFound":
                raise
            # Deleted since the inventory: nothing can sign in with it, which was the goal.

    @activity.defn(name=ActivityNames.SWEEP_DEACTIVATE_SCIM_ACCOUNT)
    async def deactivate_scim_account(self, input: DisableAccountInput) -> None:
        client = self._client(input.system)
        patch = PatchOp[ScimUser](
            operations=[
                PatchOperation[ScimUser](op=PatchOperation.Op.replace_, path="active", value=False)
            ]
        )
        try:
            await client.patch_user(input.id, patch, call="deactivate orphan")
        except ApplicationError as err:
            if err.type != SCIM_NOT_FOUND:
                raise  # a 404 means the account is gone: already what we wanted

    def _client(self, app: str) -> ScimAppClient:
        client = self._scim.get(app)
        if client is None:
            raise unknown_app(app)
        return client


def _graph_account(user: dict[str, Any]) -> FoundAccount:
    return FoundAccount(
        system=GRAPH,
        id=str(user.get("id") or ""),
        employee_id=str(user.get("employeeId") or ""),
        user_name=str(user.get("userPrincipalName") or ""),
        active=user.get("accountEnabled") is not False,
    )


def _scim_account(app: str, user: ScimUser) -> FoundAccount | None:
    # Tenure's accounts carry the employee id as externalId; accounts without one are not ours to
    # judge (local admins, service users), like Graph users without an employeeId.
    if not user.external_id or user.id is None:
        return None
    return FoundAccount(
        system=app,
        id=str(user.id),
        employee_id=user.external_id,
        user_name=user.user_name or "",
        # An absent `active` is an account that can be used.
        active=user.active is not False,
    )
