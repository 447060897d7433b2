"""Shared Graph state and lookups: the client and adapter, user search by filter or employeeId,
the manager cache (single-flight), hand-built $batch calls and the group-name cache."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from temporalio.exceptions import ApplicationError

from activities.graph.client import send_for_json
from activities.graph.errors import graph_call
from activities.graph.odata import (
    BATCH_LIMIT,
    chunks,
    filter_url,
    odata_quote,
    sub_response_error,
)

MANAGER_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class ManagerRef:
    user_id: str
    address: str
    display_name: str


class GraphDirectory:
    """The state every Graph activity shares: the role mixins (graph_users, graph_groups,
    graph_mail) derive from it, and GraphActivities combines them into one instance."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client
        self._adapter = client.request_adapter
        # Group display name -> id. Groups live long; a stale id shows up as a 404 and is evicted.
        self._group_ids: dict[str, str] = {}
        # Manager employee id -> (expiry, reference). Every report of a manager needs the same
        # lookup twice (manager reference, TAP mail); a short cache spares Graph both. A stale id
        # (manager deleted and rehired) answers 404 on use and is evicted before the retry.
        self._managers: dict[str, tuple[float, ManagerRef]] = {}
        self._manager_lookups: dict[str, asyncio.Future[ManagerRef]] = {}

    @property
    def _root(self) -> str:
        return self._adapter.base_url.rstrip("/")

    # ---- lookups -------------------------------------------------------------------------------

    async def _find_users(self, filter: str, select: list[str], call: str) -> list[dict[str, Any]]:
        """Users matching a filter, as Graph's JSON (only the $selected properties)."""
        config = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter=filter, select=select, top=2
            )
        )
        request = self._client.users.to_get_request_information(request_configuration=config)
        with graph_call(call):
            page = await self._send_for_json(request)
        return list(page.get("value") or [])

    async def _user_by_employee_id(
        self, employee_id: str, select: list[str]
    ) -> dict[str, Any] | None:
        users = await self._find_users(
            f"employeeId eq {odata_quote(employee_id)}",
            ["id", "userPrincipalName", *select],
            f"look up user by employeeId {employee_id}",
        )
        return users[0] if users else None

    async def _manager(self, employee_id: str) -> ManagerRef:
        cached = self._managers.get(employee_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        # Many reports of one manager start together: one lookup serves them all.
        lookup = self._manager_lookups.get(employee_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up_manager(employee_id))
            self._manager_lookups[employee_id] = lookup
            lookup.add_done_callback(lambda _: self._manager_lookups.pop(employee_id, None))
        return await asyncio.shield(lookup)

    async def _look_up_manager(self, employee_id: str) -> ManagerRef:
        manager = await self._user_by_employee_id(employee_id, ["mail", "displayName"])
        if manager is None or not manager.get("id"):
            # The manager's own joiner may still be running: worth retrying.
            raise ApplicationError(
                f"manager {employee_id} is not provisioned in Graph yet",
                type="ManagerNotProvisioned",
            )
        ref = ManagerRef(
            user_id=manager["id"],
            address=manager.get("mail") or manager.get("userPrincipalName") or "",
            display_name=manager.get("displayName") or "",
        )
        self._managers[employee_id] = (time.monotonic() + MANAGER_CACHE_SECONDS, ref)
        return ref

    # ---- low-level calls -----------------------------------------------------------------------

    @staticmethod
    def _get(url: str) -> RequestInformation:
        """A GET of a complete URL (a nextLink, a hand-built query). Given as `.url`, not as the
        constructor's URL template, whose RFC 6570 expansion drops the commas of `$select`."""
        request = RequestInformation(Method.GET)
        request.url = url
        return request

    async def _send_for_json(self, request: RequestInformation) -> dict[str, Any]:
        return await send_for_json(self._adapter, request)

    async def _all_pages(self, url: str, call: str) -> list[dict[str, Any]]:
        """Every item of a listing, following `@odata.nextLink`; `call` names it in errors."""
        found: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            with graph_call(call):
                page = await self._send_for_json(self._get(next_url))
            found += page.get("value") or []
            next_url = page.get("@odata.nextLink")
        return found

    async def _batch(self, requests: list[dict[str, Any]], call: str) -> dict[str, dict[str, Any]]:
        """POST one $batch (built by hand: the SDK's batch helpers mangle URLs and bodies)."""
        request = RequestInformation(Method.POST, f"{self._root}/$batch")
        request.headers.try_add("Content-Type", "application/json")
        request.content = json.dumps({"requests": requests}).encode()
        with graph_call(call):
            raw = await self._adapter.send_primitive_async(request, "bytes", {"XXX": ODataError})
        responses = json.loads(raw or b"{}").get("responses") or []
        return {str(r.get("id")): r for r in responses}

    # ---- groups --------------------------------------------------------------------------------

    async def _resolve_groups(self, names: list[str]) -> dict[str, str]:
        missing = [n for n in dict.fromkeys(names) if n not in self._group_ids]
        for chunk in chunks(missing, BATCH_LIMIT):
            requests = [
                {
                    "id": str(i),
                    "method": "GET",
                    "url": filter_url("/groups", f"displayName eq {odata_quote(name)}", "id"),
                }
                for i, name in enumerate(chunk)
            ]
            answers = await self._batch(requests, "resolve groups by displayName")
            failed: list[dict[str, Any]] = []
            for i, name in enumerate(chunk):
                answer = answers.get(str(i), {})
                if int(answer.get("status", 0)) != 200:
                    failed.append(answer)
                    continue
                found = (answer.get("body") or {}).get("value") or []
                if not found:
                    raise ApplicationError(
                        f"group {name!r} does not exist in Graph",
                        type="GroupNotFound",
                        non_retryable=True,
                    )
                if len(found) > 1:
                    raise ApplicationError(
                        f"{len(found)} groups are named {name!r}; refusing to guess",
                        type="GroupAmbiguous",
                        non_retryable=True,
                    )
                self._group_ids[name] = found[0]["id"]
            if failed:
                raise sub_response_error("resolve groups by displayName", failed)
        return {name: self._group_ids[name] for name in names}
