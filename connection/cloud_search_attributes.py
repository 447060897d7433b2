"""Register Tenure's search attributes on a Temporal Cloud namespace, through the Cloud Operations API.

Temporal Cloud namespaces are not changed through the OperatorService: the namespace's spec is read
(GetNamespace), the missing attributes are added to `spec.search_attributes`, and the whole spec is
sent back (UpdateNamespace) with the resource version it was read at, so a concurrent change is
refused rather than overwritten. The update is asynchronous; this waits for its operation to finish.

Settings: TEMPORAL_CLOUD_API_KEY (else TEMPORAL_API_KEY), an API key allowed to manage the
namespace; TEMPORAL_CLOUD_API_VERSION (default below) for the `temporal-cloud-api-version` header.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from temporalio.api.cloud.cloudservice.v1 import (
    GetAsyncOperationRequest,
    GetNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.api.cloud.namespace.v1 import NamespaceSpec
from temporalio.api.cloud.operation.v1 import AsyncOperation
from temporalio.client import CloudOperationsClient
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from connection.search_attributes_setup import (
    AttributeStatus,
    Keys,
    SearchAttributeSetupError,
    enum_type_name,
    missing_keys,
    statuses,
)
from domain import search_attributes

CLOUD_API_ADDRESS = "saas-api.tmprl.cloud:443"
# `spec.search_attributes` (typed) exists from v0.3.0 of the Cloud API; the server interprets every
# request by this version, so the spec read and the spec written agree.
CLOUD_API_VERSION = "v0.4.0"
RPC_TIMEOUT = timedelta(seconds=30)
OPERATION_TIMEOUT_S = 300.0
# Cloud namespace ids are `<name>.<account id>`, e.g. `tenure-prod.a1b2c`.
_NAMESPACE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9]+$")
_TYPE_PREFIX = "SEARCH_ATTRIBUTE_TYPE_"


class CloudService(Protocol):
    """The part of `CloudOperationsClient.cloud_service` this module calls."""

    async def get_namespace(self, req: GetNamespaceRequest, **kwargs: Any) -> Any: ...
    async def update_namespace(self, req: UpdateNamespaceRequest, **kwargs: Any) -> Any: ...
    async def get_async_operation(self, req: GetAsyncOperationRequest, **kwargs: Any) -> Any: ...


class CloudOps(Protocol):
    @property
    def cloud_service(self) -> CloudService: ...


@dataclass(frozen=True)
class CloudSettings:
    namespace_id: str
    api_key: str = field(repr=False)
    api_version: str = CLOUD_API_VERSION
    address: str = CLOUD_API_ADDRESS

    @classmethod
    def from_env(
        cls, namespace_id: str | None = None, environ: Mapping[str, str] | None = None
    ) -> CloudSettings:
        env = os.environ if environ is None else environ
        namespace_id = namespace_id or env.get("TEMPORAL_NAMESPACE") or ""
        if not _NAMESPACE_ID.match(namespace_id):
            raise SearchAttributeSetupError(
                f"Temporal Cloud namespace id {namespace_id!r}: expected <name>.<account id>, "
                "e.g. tenure-prod.a1b2c (set TEMPORAL_NAMESPACE or pass --namespace)"
            )
        api_key = env.get("TEMPORAL_CLOUD_API_KEY") or env.get("TEMPORAL_API_KEY")
        if not api_key:
            raise SearchAttributeSetupError(
                "--cloud needs an API key allowed to manage the namespace: set "
                "TEMPORAL_CLOUD_API_KEY (or TEMPORAL_API_KEY)"
            )
        return cls(
            namespace_id=namespace_id,
            api_key=api_key,
            api_version=env.get("TEMPORAL_CLOUD_API_VERSION") or CLOUD_API_VERSION,
        )


async def connect_cloud(settings: CloudSettings) -> CloudOperationsClient:
    return await CloudOperationsClient.connect(
        api_key=settings.api_key, version=settings.api_version, target_host=settings.address
    )


async def ensure_cloud_search_attributes(
    cloud: CloudOps,
    namespace_id: str,
    keys: Keys = search_attributes.ALL,
    *,
    check_only: bool = False,
    operation_timeout_s: float = OPERATION_TIMEOUT_S,
) -> list[AttributeStatus]:
    """Register whichever of `keys` the Cloud namespace lacks (with `check_only`, just report)."""
    service = cloud.cloud_service
    got = await _call(
        f"reading namespace {namespace_id!r}",
        service.get_namespace(GetNamespaceRequest(namespace=namespace_id), timeout=RPC_TIMEOUT),
    )
    namespace = got.namespace
    registered = {
        name: _cloud_type_name(value) for name, value in namespace.spec.search_attributes.items()
    }
    missing = missing_keys(namespace_id, keys, registered)
    if not missing or check_only:
        return statuses(keys, missing, added=False)

    spec = NamespaceSpec()
    spec.CopyFrom(namespace.spec)  # the update replaces the whole spec: send back what is there
    for key in missing:
        spec.search_attributes[key.name] = _cloud_type(key)
    updated = await _call(
        f"updating namespace {namespace_id!r}",
        service.update_namespace(
            UpdateNamespaceRequest(
                namespace=namespace_id,
                spec=spec,
                resource_version=namespace.resource_version,
                async_operation_id=f"tenure-setup-{uuid.uuid4()}",
            ),
            timeout=RPC_TIMEOUT,
        ),
    )
    await _until_done(service, namespace_id, updated.async_operation, operation_timeout_s)
    return statuses(keys, missing, added=True)


async def _until_done(
    service: CloudService, namespace_id: str, operation: AsyncOperation, within_s: float
) -> None:
    deadline = time.monotonic() + within_s
    while True:
        state = operation.state
        if state == AsyncOperation.STATE_FULFILLED:
            return
        if state in (
            AsyncOperation.STATE_FAILED,
            AsyncOperation.STATE_CANCELLED,
            AsyncOperation.STATE_REJECTED,
        ):
            reason = operation.failure_reason or "no reason given"
            raise SearchAttributeSetupError(
                f"updating namespace {namespace_id!r}: operation {operation.id} ended "
                f"{AsyncOperation.State.Name(state).removeprefix('STATE_').lower()}: {reason}"
            )
        if time.monotonic() >= deadline:
            raise SearchAttributeSetupError(
                f"updating namespace {namespace_id!r}: operation {operation.id} still "
                f"{AsyncOperation.State.Name(state).removeprefix('STATE_').lower()} after "
                f"{within_s:.0f}s; run `tenure temporal setup --cloud --check` later"
            )
        # The operation says when to look again; 2 s if it does not, never a busy loop.
        pause = operation.check_duration.ToTimedelta().total_seconds() or 2.0
        await asyncio.sleep(min(max(pause, 0.2), 10.0))
        answer = await _call(
            f"following operation {operation.id}",
            service.get_async_operation(
                GetAsyncOperationRequest(async_operation_id=operation.id), timeout=RPC_TIMEOUT
            ),
        )
        operation = answer.async_operation


async def _call(doing: str, call: Any) -> Any:
    try:
        return await call
    except RPCError as err:
        hint = {
            RPCStatusCode.NOT_FOUND: " (is the namespace id <name>.<account id> of this account?)",
            RPCStatusCode.PERMISSION_DENIED: " (the API key may not manage this namespace)",
            RPCStatusCode.UNAUTHENTICATED: " (check TEMPORAL_CLOUD_API_KEY)",
            RPCStatusCode.FAILED_PRECONDITION: " (the namespace changed meanwhile: run again)",
        }.get(err.status, "")
        raise SearchAttributeSetupError(
            f"{doing} failed: {err.status.name}: {err.message}{hint}"
        ) from err


def _cloud_type(key: SearchAttributeKey) -> int:
    return NamespaceSpec.SearchAttributeType.Value(_TYPE_PREFIX + key.indexed_value_type.name)


def _cloud_type_name(value: int) -> str:
    try:
        name = NamespaceSpec.SearchAttributeType.Name(value).removeprefix(_TYPE_PREFIX)
    except ValueError:
        return f"type {value}"
    return enum_type_name(name)
