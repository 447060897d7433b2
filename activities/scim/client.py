"""A small SCIM 2.0 client for target applications: settings, requests, and Temporal-shaped errors.

Payloads are built and parsed with scim2-models; requests go out on one shared `httpx.AsyncClient`.
HTTP failures become `ApplicationError`s so Temporal owns every retry (docs/architecture.md, rule 4): throttling
and outages are retryable (honouring `Retry-After`), requests that can never succeed are not.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from scim2_models import (
    Context,
    EnterpriseUser,
    Group,
    ListResponse,
    PatchOp,
    PatchOperation,
    SearchRequest,
    User,
)
from temporalio.exceptions import ApplicationError

from activities.http_failures import SCIM
from activities.unsendable import UNSENDABLE

ScimUser = User[EnterpriseUser]
SCIM_MEDIA_TYPE = "application/scim+json"

# Error types workflows and tests match on (the rest: activities/http_failures.py).
SCIM_APP_UNKNOWN = SCIM.error_type("AppUnknown")
SCIM_CONFLICT = SCIM.error_type("Conflict")
SCIM_NOT_FOUND = SCIM.error_type("NotFound")
SCIM_UNSENDABLE = SCIM.error_type("UnsendableRequest")


# ---- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScimAppSettings:
    name: str
    base_url: str  # the SCIM root, e.g. https://crm.example.com/scim/v2
    token: str = field(repr=False)  # never in logs or reprs


class ScimSettingsError(LookupError):
    """A SCIM app is named (e.g. by the policy) but its settings are not in the environment."""


def env_prefix(app: str) -> str:
    """`TENURE_SCIM_<NAME>`: the app name upper-cased, every non-alphanumeric turned into `_`."""
    return "TENURE_SCIM_" + re.sub(r"[^A-Za-z0-9]", "_", app).upper()


def scim_apps_from_env(
    names: Iterable[str], environ: Mapping[str, str] | None = None
) -> dict[str, ScimAppSettings]:
    """Read `TENURE_SCIM_<NAME>_URL` and `TENURE_SCIM_<NAME>_TOKEN` for each app name."""
    env = os.environ if environ is None else environ
    apps: dict[str, ScimAppSettings] = {}
    missing: list[str] = []
    for name in names:
        url_var, token_var = f"{env_prefix(name)}_URL", f"{env_prefix(name)}_TOKEN"
        url, token = env.get(url_var), env.get(token_var)
        missing += [var for var, value in ((url_var, url), (token_var, token)) if not value]
        if url and token:
            apps[name] = ScimAppSettings(name=name, base_url=url.rstrip("/"), token=token)
    if missing:
        raise ScimSettingsError(
            f"SCIM app settings missing from the environment: {', '.join(missing)}"
        )
    return apps


def new_http_client(timeout: float = 15.0) -> httpx.AsyncClient:
    """The one HTTP client the worker shares between all SCIM apps (connection pooling)."""
    return httpx.AsyncClient(timeout=timeout, headers={"Accept": SCIM_MEDIA_TYPE})


def scim_app_clients(
    apps: Mapping[str, ScimAppSettings], http: httpx.AsyncClient
) -> dict[str, ScimAppClient]:
    return {name: ScimAppClient(settings, http) for name, settings in apps.items()}


def unknown_app(app: str) -> ApplicationError:
    return ApplicationError(
        f"SCIM app {app!r} is not configured on this worker (set {env_prefix(app)}_URL/_TOKEN)",
        type=SCIM_APP_UNKNOWN,
        non_retryable=True,
    )


@functools.cache
def _search_models(model: Any) -> tuple[Any, Any]:
    # scim2-models builds a new class for every SearchRequest[X] / ListResponse[X] subscript:
    # about 0.2 ms of CPU each, on every search. Build each pair once.
    return SearchRequest[model], ListResponse[model]


# ---- client -------------------------------------------------------------------------------------


class ScimAppClient:
    """The SCIM calls Tenure makes to one target application."""

    def __init__(self, settings: ScimAppSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.app = settings.name
        self._http = http

    # Users

    async def find_user(self, scim_filter: str) -> ScimUser | None:
        found = await self._search("Users", ScimUser, scim_filter, call="find user")
        return found[0] if found else None

    async def list_users(self, start_index: int, count: int) -> tuple[list[ScimUser], int]:
        """One page of all users (1-based `start_index`), and the target's total count."""
        return await self._list("Users", ScimUser, start_index, count)

    async def list_groups(self, start_index: int, count: int) -> tuple[list[Group], int]:
        """One page of all groups (an app's roles) with their members, and the total count."""
        return await self._list("Groups", Group, start_index, count)

    async def _list(
        self, endpoint: str, model: Any, start_index: int, count: int
    ) -> tuple[list[Any], int]:
        _, list_response = _search_models(model)
        body = await self._send(
            f"list {endpoint.lower()}",
            "GET",
            endpoint,
            params={"startIndex": start_index, "count": count},
        )
        listed = list_response.model_validate(body, scim_ctx=Context.SEARCH_RESPONSE)
        return list(listed.resources or []), int(listed.total_results or 0)

    async def create_user(self, user: ScimUser) -> ScimUser:
        body = await self._send(
            "create user",
            "POST",
            "Users",
            user.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST),
        )
        return ScimUser.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_RESPONSE)

    async def patch_user(self, user_id: str, patch: PatchOp[ScimUser], call: str) -> None:
        await self._send(
            call,
            "PATCH",
            f"Users/{_segment(user_id)}",
            patch.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST),
        )

    async def deactivate(self, user_id: str, call: str) -> bool:
        """Set an account inactive by its SCIM id; False when it is gone (what was wanted)."""
        patch = PatchOp[ScimUser](
            operations=[
                PatchOperation[ScimUser](op=PatchOperation.Op.replace_, path="active", value=False)
            ]
        )
        try:
            await self.patch_user(user_id, patch, call=call)
        except ApplicationError as err:
            if err.type != SCIM_NOT_FOUND:
                raise
            return False
        return True

    async def delete_user(self, user_id: str) -> None:
        """Delete a user; one already gone (404) counts as deleted."""
        await self._send("delete user", "DELETE", f"Users/{_segment(user_id)}", missing_ok=True)

    # Groups

    async def find_groups(self, scim_filter: str) -> list[Group]:
        return await self._search("Groups", Group, scim_filter, call="find group")

    async def create_group(self, group: Group) -> Group:
        body = await self._send(
            "create group",
            "POST",
            "Groups",
            group.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST),
        )
        return Group.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_RESPONSE)

    async def add_group_member(self, group_id: str, user_id: str) -> None:
        patch = PatchOp[Group](
            operations=[
                PatchOperation[Group](
                    op=PatchOperation.Op.add, path="members", value=[{"value": user_id}]
                )
            ]
        )
        await self._send(
            "add group member",
            "PATCH",
            f"Groups/{_segment(group_id)}",
            patch.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST),
        )

    async def remove_group_member(self, group_id: str, user_id: str) -> None:
        patch = PatchOp[Group](
            operations=[
                PatchOperation[Group](
                    op=PatchOperation.Op.remove, path=f"members[value eq {filter_literal(user_id)}]"
                )
            ]
        )
        await self._send(
            "remove group member",
            "PATCH",
            f"Groups/{_segment(group_id)}",
            patch.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST),
        )

    # Transport

    async def _search(self, endpoint: str, model: Any, scim_filter: str, call: str) -> list[Any]:
        # Built through SearchRequest so a malformed filter fails here, not at the target;
        # sent as GET query parameters, which every SCIM target supports (unlike POST .search).
        search_request, list_response = _search_models(model)
        request = search_request(filter=scim_filter, count=50)
        params = request.model_dump(scim_ctx=Context.SEARCH_REQUEST)
        params.pop("schemas", None)
        body = await self._send(call, "GET", endpoint, params=params)
        listed = list_response.model_validate(body, scim_ctx=Context.SEARCH_RESPONSE)
        return list(listed.resources or [])

    async def _send(
        self,
        call: str,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """Send one request; return its JSON body (None for 204, or for a 404 when missing_ok)."""
        headers = {"Authorization": f"Bearer {self.settings.token}", "Accept": SCIM_MEDIA_TYPE}
        content = None
        if payload is not None:
            headers["Content-Type"] = SCIM_MEDIA_TYPE
            content = json.dumps(payload)
        try:
            response = await self._http.request(
                method,
                f"{self.settings.base_url}/{path}",
                params=params,
                content=content,
                headers=headers,
            )
        except UNSENDABLE as err:
            raise SCIM.unsendable(f"{self.app}: {call}", err) from None
        except httpx.TransportError as err:
            raise SCIM.unreachable(f"{self.app}: {call}", err) from err
        if response.status_code == 404 and missing_ok:
            return None
        if response.is_error:
            raise self._error(call, response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _error(self, call: str, response: httpx.Response) -> ApplicationError:
        status = response.status_code
        message = f"{self.app}: {call}: HTTP {status}{_scim_detail(response)}"
        return SCIM.for_status(message, status, response.headers)


def filter_literal(value: str) -> str:
    """A SCIM filter's string literal: a JSON string (RFC 7644 §3.4.2.2), quotes and backslashes
    escaped, other characters as they are (targets read UTF-8 more reliably than \\u escapes)."""
    return json.dumps(value, ensure_ascii=False)


def _segment(value: str) -> str:
    # A resource id as one path segment: never a second segment, a query or a fragment.
    return quote(value, safe="")


def _scim_detail(response: httpx.Response) -> str:
    """The SCIM error's scimType/detail (RFC 7644 §3.12), when the body has one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k]) for k in ("scimType", "detail") if body.get(k)]
    return f" ({': '.join(parts)[:300]})" if parts else ""
