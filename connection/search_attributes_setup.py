"""Register the search attributes Tenure writes on a namespace (`tenure temporal setup`).

A self-hosted cluster or dev server is changed through the OperatorService; Temporal Cloud through
the Cloud Operations API (connection/cloud_search_attributes.py). Both compare the namespace with
`domain.search_attributes.ALL` first: a name already registered with another type stops the setup
before anything is changed, and what is there already is left alone, so running it twice is safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes

RPC_TIMEOUT = timedelta(seconds=10)
# The dev server (and a cluster's search-attribute cache) may list a new attribute a little late.
SETTLE_WITHIN_S = 10.0
SETTLE_POLL_S = 0.2

Keys = Sequence[SearchAttributeKey]


class Outcome(StrEnum):
    REGISTERED = "registered"  # added by this run
    ALREADY_REGISTERED = "already registered"
    MISSING = "missing"  # --check: not there, nothing changed


@dataclass(frozen=True)
class AttributeStatus:
    name: str
    type_name: str  # as the Temporal CLI spells it: Keyword, Text, Int, KeywordList...
    outcome: Outcome


class SearchAttributeSetupError(Exception):
    """The namespace could not be checked or changed; the message says what and why."""


class SearchAttributeTypeClashError(SearchAttributeSetupError):
    """A name Tenure writes is registered with another type; nothing was changed."""

    def __init__(self, namespace: str, clashes: Sequence[tuple[str, str, str]]) -> None:
        self.clashes = list(clashes)  # (name, type Tenure writes, type registered)
        found = "; ".join(
            f"{name} is registered as {registered}, Tenure writes it as {wanted}"
            for name, wanted, registered in clashes
        )
        super().__init__(
            f"namespace {namespace!r}: {found}. Nothing was changed: Temporal cannot change a search "
            "attribute's type, so remove that attribute (or use another namespace) and run again"
        )


def type_name(key: SearchAttributeKey) -> str:
    return enum_type_name(key.indexed_value_type.name)


def enum_type_name(enum_name: str) -> str:
    # KEYWORD_LIST -> KeywordList, as in `temporal operator search-attribute create --type`.
    return "".join(part.capitalize() for part in enum_name.split("_"))


def missing_keys(
    namespace: str, wanted: Keys, registered: Mapping[str, str]
) -> list[SearchAttributeKey]:
    """The keys `registered` (name -> type name) lacks; every clash at once if any type differs."""
    clashes = [
        (key.name, type_name(key), registered[key.name])
        for key in wanted
        if key.name in registered and registered[key.name] != type_name(key)
    ]
    if clashes:
        raise SearchAttributeTypeClashError(namespace, clashes)
    return [key for key in wanted if key.name not in registered]


def statuses(wanted: Keys, missing: Keys, *, added: bool) -> list[AttributeStatus]:
    absent = {key.name for key in missing}
    outcome = Outcome.REGISTERED if added else Outcome.MISSING
    return [
        AttributeStatus(
            key.name, type_name(key), outcome if key.name in absent else Outcome.ALREADY_REGISTERED
        )
        for key in wanted
    ]


# --- self-hosted cluster or dev server: the OperatorService ----------------------------------------


async def ensure_search_attributes(
    client: Client,
    namespace: str | None = None,
    keys: Keys = search_attributes.ALL,
    *,
    check_only: bool = False,
    settle_within_s: float = SETTLE_WITHIN_S,
) -> list[AttributeStatus]:
    """Register whichever of `keys` the namespace lacks (with `check_only`, just report them)."""
    namespace = namespace or client.namespace
    missing = missing_keys(namespace, keys, await _registered(client, namespace))
    if not missing or check_only:
        return statuses(keys, missing, added=False)
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={key.name: key.indexed_value_type.value for key in missing},
            ),
            timeout=RPC_TIMEOUT,
        )
    except RPCError as err:
        # Another setup got there between our list and our add: the settling check below tells
        # whether it registered the same types.
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise _rpc_failure(f"adding search attributes to namespace {namespace!r}", err) from err
    await _until_listed(client, namespace, keys, settle_within_s)
    return statuses(keys, missing, added=True)


async def _registered(client: Client, namespace: str) -> dict[str, str]:
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace), timeout=RPC_TIMEOUT
        )
    except RPCError as err:
        raise _rpc_failure(
            f"listing the search attributes of namespace {namespace!r}", err
        ) from err
    return {name: _indexed_type_name(value) for name, value in listed.custom_attributes.items()}


async def _until_listed(client: Client, namespace: str, keys: Keys, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while True:
        # Raises if another setup registered one of them with another type meanwhile.
        still = missing_keys(namespace, keys, await _registered(client, namespace))
        if not still:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(key.name for key in still)
            raise SearchAttributeSetupError(
                f"namespace {namespace!r} accepted {names} but still does not list them after "
                f"{within_s:.0f}s; run `tenure temporal setup --check` again in a moment"
            )
        await asyncio.sleep(SETTLE_POLL_S)


def _indexed_type_name(value: int) -> str:
    try:
        return enum_type_name(IndexedValueType.Name(value).removeprefix("INDEXED_VALUE_TYPE_"))
    except ValueError:
        return f"type {value}"


def _rpc_failure(doing: str, err: RPCError) -> SearchAttributeSetupError:
    hint = {
        RPCStatusCode.NOT_FOUND: " (does the namespace exist? TEMPORAL_NAMESPACE names it)",
        RPCStatusCode.PERMISSION_DENIED: (
            " (these credentials may not change the namespace; on Temporal Cloud, use --cloud)"
        ),
        RPCStatusCode.UNAUTHENTICATED: " (check TEMPORAL_API_KEY or the client certificate)",
        RPCStatusCode.UNIMPLEMENTED: " (on Temporal Cloud, use --cloud)",
    }.get(err.status, "")
    return SearchAttributeSetupError(f"{doing} failed: {err.status.name}: {err.message}{hint}")
