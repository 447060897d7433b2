"""The identity entity's holdings ledger: grants derived from its birthright items and packages.

`domain/holdings.py` says what a resource and a grant are and how a grant's end is worked out;
this module reads them off an identity's state, which is where they are kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.holdings import (
    Grant,
    GrantKind,
    GrantRef,
    Holding,
    Release,
    ResourceKind,
    ResourceRef,
    app_account,
    app_resources,
    group,
    holdings,
    release,
)
from domain.lifecycle.identity import (
    AccessItem,
    HeldPackage,
    IdentityState,
    PendingRemoval,
    ReleaseAccessInput,
)


def item_resources(item: AccessItem) -> list[ResourceRef]:
    """What one birthright item holds: a group, or an app account and each of its roles."""
    if item.kind == ResourceKind.GRAPH_GROUP:
        return [group(item.target)]
    return app_resources(item.target, item.roles)


def package_resources(held: HeldPackage) -> list[ResourceRef]:
    if held.resources:
        return list(held.resources)
    # Registered by an earlier release, which kept only group names and app names.
    return [group(g) for g in held.groups] + [app_account(a) for a in held.apps]


def package_grant(held: HeldPackage) -> GrantRef:
    return GrantRef(kind=held.grant_kind, id=held.request_id, label=held.package_id)


def identity_grants(state: IdentityState) -> list[Grant]:
    """Every grant that holds something now: birthright rules (including access a move keeps for
    its grace period) and granted packages. Pending packages hold nothing yet, and a package
    whose end is being applied holds nothing any more."""
    by_rule: dict[str, list[ResourceRef]] = {}
    for item in state.access:
        by_rule.setdefault(item.rule, []).extend(item_resources(item))
    grants = [
        Grant(grant=GrantRef(kind=GrantKind.BIRTHRIGHT, id=rule, label=rule), resources=resources)
        for rule, resources in by_rule.items()
    ]
    grants += [
        Grant(grant=package_grant(h), resources=package_resources(h))
        for h in state.packages
        if h.status == "granted"
    ]
    return grants


def identity_holdings(state: IdentityState) -> list[Holding]:
    return holdings(identity_grants(state))


def package_held(state: IdentityState) -> set[ResourceRef]:
    """Everything granted packages hold, app accounts included through their roles."""
    packages = [g for g in identity_grants(state) if g.grant.kind is GrantKind.PACKAGE]
    return {h.resource for h in holdings(packages)}


def pending_resource(removal: PendingRemoval) -> ResourceRef:
    """The group or app account a move's grace period keeps for now."""
    if removal.kind == ResourceKind.GRAPH_GROUP:
        return group(removal.target)
    return app_account(removal.target)


def mover_package_holdings(state: IdentityState) -> dict[str, Any]:
    """What the mover must leave alone because a package holds it: groups, app accounts, and
    the app roles within an account birthright also grants (MoverInput's fields)."""
    held = package_held(state)
    roles: dict[str, list[str]] = {}
    for r in sorted(held, key=lambda r: r.key):
        if r.kind is ResourceKind.SCIM_ROLE and r.role is not None:
            roles.setdefault(r.target, []).append(r.role)
    return {
        "package_groups": sorted(r.target for r in held if r.kind is ResourceKind.GRAPH_GROUP),
        "package_apps": sorted(r.target for r in held if r.kind is ResourceKind.SCIM_ACCOUNT),
        "package_roles": roles,
    }


# How long the identity's transitions wait for a request that is removing access to say it closed.
RELEASE_HOLD = timedelta(minutes=10)


def release_hold_until(state: IdentityState, now: datetime) -> datetime | None:
    """The end of the wait for packages being released, or None when none is (or it is over)."""
    ends = [
        h.releasing_since + RELEASE_HOLD
        for h in state.packages
        if h.status == "releasing" and h.releasing_since is not None
    ]
    end = max(ends, default=None)
    return end if end is not None and end > now else None


def release_package(state: IdentityState, ask: ReleaseAccessInput, now: datetime) -> Release:
    """End the grant of one request: mark its package releasing and say what may be removed.

    The same request asking again gets the same answer (an activity retried after its first
    attempt succeeded): its package is already marked, and the others are unchanged.
    """
    held = next((h for h in state.packages if h.request_id == ask.request_id), None)
    ending = (
        package_grant(held)
        if held is not None
        else GrantRef(kind=GrantKind.PACKAGE, id=ask.request_id)
    )
    if held is not None and held.status != "releasing":
        held.status = "releasing"
        held.releasing_since = now
    resources = package_resources(held) if held is not None and held.resources else ask.resources
    # This package is releasing now, so it is not among the grants that may keep something.
    others = identity_grants(state)
    return release([*others, Grant(grant=ending, resources=resources)], ending)


def held_targets(state: IdentityState, kind: ResourceKind) -> list[str]:
    """Targets of one kind the person holds through any grant (e.g. every group)."""
    return sorted({h.resource.target for h in identity_holdings(state) if h.resource.kind is kind})


def all_app_accounts(state: IdentityState) -> list[str]:
    """Every app account Tenure made for the person: those grants hold now, and those whose
    grant ended (an account outlives its package's end until retention deletes it)."""
    return sorted(set(state.app_accounts) | set(granted_app_accounts(state)))


def remember_app_accounts(state: IdentityState) -> None:
    """Note every app account the person's grants hold now in `state.app_accounts`, so it is
    still known (and deleted at retention) after the grant that made it ends."""
    state.app_accounts = all_app_accounts(state)


def granted_app_accounts(state: IdentityState) -> list[str]:
    """App accounts the person's grants hold now (birthright and granted packages)."""
    return held_targets(state, ResourceKind.SCIM_ACCOUNT)
