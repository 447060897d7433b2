"""The orphan sweep's activities (implemented by activities/detective/sweep.py).

Sweeps scan each directory with `scan_graph_accounts` / `scan_scim_accounts`, which return bounded
tallies. `list_graph_accounts`, `list_scim_accounts` and `list_managed_identities` (whole
inventories) stay registered for runs started before the `sweep-paged-scan` patch.
"""

from __future__ import annotations

from temporalio import activity

from domain.detective.sweep import (
    AccountInventory,
    DisableAccountInput,
    ListScimAccountsInput,
    ManagedIdentities,
    ScanGraphInput,
    ScanScimInput,
    SweepActivityNames,
    SweepTally,
)
from domain.provisioning import ActivityNames

__all__ = [
    "deactivate_scim_account",
    "disable_graph_account",
    "list_graph_accounts",
    "list_managed_identities",
    "list_scim_accounts",
    "scan_graph_accounts",
    "scan_scim_accounts",
]


@activity.defn(name=SweepActivityNames.SCAN_GRAPH_ACCOUNTS)
async def scan_graph_accounts(input: ScanGraphInput) -> SweepTally:
    raise NotImplementedError


@activity.defn(name=SweepActivityNames.SCAN_SCIM_ACCOUNTS)
async def scan_scim_accounts(input: ScanScimInput) -> SweepTally:
    raise NotImplementedError


@activity.defn(name=ActivityNames.SWEEP_LIST_GRAPH_ACCOUNTS)
async def list_graph_accounts() -> AccountInventory:
    raise NotImplementedError


@activity.defn(name=ActivityNames.SWEEP_LIST_SCIM_ACCOUNTS)
async def list_scim_accounts(input: ListScimAccountsInput) -> AccountInventory:
    raise NotImplementedError


@activity.defn(name=ActivityNames.SWEEP_LIST_MANAGED_IDENTITIES)
async def list_managed_identities() -> ManagedIdentities:
    raise NotImplementedError


@activity.defn(name=ActivityNames.SWEEP_DISABLE_GRAPH_ACCOUNT)
async def disable_graph_account(input: DisableAccountInput) -> None:
    raise NotImplementedError


@activity.defn(name=ActivityNames.SWEEP_DEACTIVATE_SCIM_ACCOUNT)
async def deactivate_scim_account(input: DisableAccountInput) -> None:
    raise NotImplementedError
