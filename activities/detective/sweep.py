"""Orphan-sweep activities: scan each directory against Tenure's identities; disable one account.

`scan_graph_accounts` and `scan_scim_accounts` page through one directory each (Graph by
`@odata.nextLink`, SCIM by startIndex/count) and fold every page into a `SweepScan` against the
identities Tenure manages, which they read from visibility here: neither the accounts nor the
identity map (tens of thousands of entries each) ever reach the workflow, which gets one bounded
`SweepTally` per directory (domain/detective/sweep.py). After each page the scan heartbeats its
cursor and its tally so far, so a retry (a crash, a timeout) resumes at that page instead of
reading the directory again; a cursor the directory no longer accepts restarts the scan.

The identity map is loaded once per sweep run and worker, shared by that run's concurrent scans.

The two writes are idempotent (disabling an account that is already disabled, or gone, succeeds),
so a retry after a crash is harmless (docs/architecture.md, rule 3).

`list_graph_accounts`, `list_scim_accounts` and `list_managed_identities` return whole inventories:
they serve only runs started before the `sweep-paged-scan` patch (workflows/detective/orphan_sweep.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.graph.client import send_for_json
from activities.graph.errors import graph_call
from activities.scim.client import ScimAppClient, ScimUser, unknown_app
from domain.detective.sweep import (
    GRAPH,
    AccountInventory,
    DisableAccountInput,
    FoundAccount,
    ListScimAccountsInput,
    ManagedIdentities,
    ScanGraphInput,
    ScanScimInput,
    SweepActivityNames,
    SweepScan,
    SweepTally,
)
from domain.lifecycle.identity import IdentityContract
from domain.provisioning import ActivityNames
from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE

_GRAPH_SELECT = ["id", "employeeId", "userPrincipalName", "accountEnabled"]
# Running runs only: a continued-as-new identity leaves closed runs behind with stale stages.
MANAGED_QUERY = f"WorkflowType = '{IdentityContract.WORKFLOW}' AND ExecutionStatus = 'Running'"
# Identity maps kept for this many recent sweep runs (a run's scans usually share a worker).
_MANAGED_RUNS = 2
# How often a scan waiting for another's identity load heartbeats, well inside heartbeat_timeout.
_WAIT_HEARTBEAT_S = 5.0


class ScanProgress(BaseModel):
    """A scan's heartbeat: where its next page starts (None: at the top), and what came before."""

    cursor: str | None = None  # Graph: the nextLink; SCIM: the next startIndex
    tally: SweepTally = Field(default_factory=SweepTally)


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
        self._managed_by_run: dict[str, asyncio.Task[dict[str, str]]] = {}

    @activity.defn(name=SweepActivityNames.SCAN_GRAPH_ACCOUNTS)
    async def scan_graph_accounts(self, input: ScanGraphInput) -> SweepTally:
        progress = _resumed()
        managed = await self._managed(progress)
        if progress.cursor is not None:
            try:
                return await self._scan_graph(input, managed, progress)
            except ApplicationError as err:
                if err.retryable:
                    raise
                # A nextLink Graph no longer takes (skip tokens expire): read it all again.
                activity.logger.warning("graph: resuming failed (%s), scanning from the top", err)
        return await self._scan_graph(input, managed, ScanProgress())

    async def _scan_graph(
        self, input: ScanGraphInput, managed: Mapping[str, str], progress: ScanProgress
    ) -> SweepTally:
        scan = SweepScan(managed, input.settings, progress.tally)
        cursor = progress.cursor
        pages = 0
        while True:
            page = await self._graph_page(cursor)
            pages += 1
            for user in page.get("value") or []:
                if account := _graph_account(user):
                    scan.add(account)
            cursor = page.get("@odata.nextLink") or None
            # The tally is a snapshot: the SDK encodes heartbeats later, after more pages.
            activity.heartbeat(ScanProgress(cursor=cursor, tally=scan.tally()))
            if cursor is None:
                break
        tally = scan.tally()
        activity.logger.info(
            "graph: %d users with an employeeId, %d pages this attempt", tally.accounts_seen, pages
        )
        return tally

    async def _graph_page(self, next_link: str | None) -> dict[str, Any]:
        if next_link is None:
            # Every user, filtered here: `employeeId ne null` needs Graph's advanced queries (and
            # ConsistencyLevel: eventual), which the emulator does not offer.
            config = RequestConfiguration(
                query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                    select=_GRAPH_SELECT, top=self._graph_page_size
                )
            )
            request = self._graph.users.to_get_request_information(request_configuration=config)
        else:
            request = RequestInformation(Method.GET)
            request.url = next_link  # absolute, and already carries $select/$top/$skiptoken
        with graph_call("list users"):
            return await send_for_json(self._graph.request_adapter, request)

    @activity.defn(name=SweepActivityNames.SCAN_SCIM_ACCOUNTS)
    async def scan_scim_accounts(self, input: ScanScimInput) -> SweepTally:
        client = self._client(input.app)
        progress = _resumed()
        managed = await self._managed(progress)
        scan = SweepScan(managed, input.settings, progress.tally)
        # SCIM's startIndex is 1-based (RFC 7644 §3.4.2.4); an index past the end is an empty page.
        start = int(progress.cursor or 1)
        while True:
            users, total = await client.list_users(start, self._scim_page_size)
            for user in users:
                if account := _scim_account(input.app, user):
                    scan.add(account)
            start += len(users)
            done = not users or start > total
            activity.heartbeat(
                ScanProgress(cursor=None if done else str(start), tally=scan.tally())
            )
            if done:
                break
        tally = scan.tally()
        activity.logger.info("%s: %d accounts with an employee id", input.app, tally.accounts_seen)
        return tally

    @activity.defn(name=ActivityNames.SWEEP_LIST_GRAPH_ACCOUNTS)
    async def list_graph_accounts(self) -> AccountInventory:
        """Every Graph user with an employeeId (runs before `sweep-paged-scan` only)."""
        accounts: list[FoundAccount] = []
        next_link: str | None = None
        pages = 0
        while True:
            page = await self._graph_page(next_link)
            pages += 1
            accounts += [a for user in page.get("value") or [] if (a := _graph_account(user))]
            activity.heartbeat(pages)
            next_link = page.get("@odata.nextLink") or None
            if next_link is None:
                break
        activity.logger.info("graph: %d users with an employeeId (%d pages)", len(accounts), pages)
        return AccountInventory(accounts=accounts)

    @activity.defn(name=ActivityNames.SWEEP_LIST_SCIM_ACCOUNTS)
    async def list_scim_accounts(self, input: ListScimAccountsInput) -> AccountInventory:
        """Every account of one SCIM app with an externalId (runs before `sweep-paged-scan`)."""
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
        """Every managed identity's stage (runs before `sweep-paged-scan` only)."""
        stages: dict[str, str] = {}
        async for employee_id, stage in self._managed_identities():
            stages[employee_id] = stage
            if len(stages) % 1000 == 0:
                activity.heartbeat(len(stages))
        return ManagedIdentities(stages=stages)

    async def _managed_identities(self) -> AsyncIterator[tuple[str, str]]:
        async for execution in self._temporal.list_workflows(MANAGED_QUERY):
            attributes = execution.typed_search_attributes
            employee_id = attributes.get(EMPLOYEE_ID) or execution.id.removeprefix("identity-")
            yield employee_id, attributes.get(LIFECYCLE_STAGE) or "none"

    async def _load_managed(self) -> dict[str, str]:
        return {employee_id: stage async for employee_id, stage in self._managed_identities()}

    async def _managed(self, progress: ScanProgress) -> dict[str, str]:
        """Employee id -> stage, loaded once for all of this run's scans on this worker.

        Every waiting scan heartbeats `progress` (its own resume point) while the load runs.
        """
        run_id = activity.info().workflow_run_id
        load = self._managed_by_run.get(run_id)
        if load is None:
            load = asyncio.ensure_future(self._load_managed())
            self._managed_by_run[run_id] = load
            while len(self._managed_by_run) > _MANAGED_RUNS:  # oldest first (insertion order)
                self._managed_by_run.pop(next(iter(self._managed_by_run)))
        while not load.done():
            # Not cancelled with this scan: the run's other scans may be waiting for it too.
            await asyncio.wait({load}, timeout=_WAIT_HEARTBEAT_S)
            activity.heartbeat(progress)
        error = load.exception()
        if error is not None:
            if self._managed_by_run.get(run_id) is load:
                del self._managed_by_run[run_id]  # the retry loads afresh
            raise error
        return load.result()

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
        # A 404 means the account is gone: already what we wanted.
        await self._client(input.system).deactivate(input.id, call="deactivate orphan")

    def _client(self, app: str) -> ScimAppClient:
        client = self._scim.get(app)
        if client is None:
            raise unknown_app(app)
        return client


def _resumed() -> ScanProgress:
    """Where the last attempt's heartbeat left the scan (or the top, on a first attempt)."""
    details = activity.info().heartbeat_details
    return ScanProgress.model_validate(details[0]) if details else ScanProgress()


def _graph_account(user: dict[str, Any]) -> FoundAccount | None:
    # Users without an employeeId are not ours to judge (room mailboxes, guests, admins).
    if not user.get("employeeId"):
        return None
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
