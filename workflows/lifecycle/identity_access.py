"""The identity entity's share of access requests: SoD reservations and who to tell when they leave.

Kept out of workflows/lifecycle/identity.py so the entity's event loop stays about HR events. Deterministic
bookkeeping on the entity's state only; the entity calls these from its update and signal handlers.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.access.sod import find_conflict
    from domain.holdings import GrantKind, ResourceKind
    from domain.lifecycle import ledger
    from domain.lifecycle.identity import (
        AccessRequestChanged,
        HeldPackage,
        IdentityState,
        LifecycleStage,
        ReserveAccessInput,
        ReserveAccessResult,
    )


def reserve_refusal(state: IdentityState) -> str | None:
    """Why no new request may be registered for this person now, or None."""
    if state.suspension is not None:
        return f"{state.employee_id} is suspended by incident {state.suspension.incident_id}"
    if state.stage is not LifecycleStage.ACTIVE:
        return f"{state.employee_id} is not active (stage {state.stage.value})"
    return None


def held_keys(state: IdentityState, except_request: str) -> set[str]:
    """Everything SoD counts as held: birthright groups, and packages pending or granted."""
    keys = {
        r.key
        for a in state.access
        for r in ledger.item_resources(a)
        if r.kind is ResourceKind.GRAPH_GROUP
    }
    for held in state.packages:
        if held.request_id != except_request:
            keys.update(held.keys)
    return keys


def reserve(state: IdentityState, request: ReserveAccessInput) -> ReserveAccessResult:
    """Register a request as pending unless it conflicts; the same request again gets the same
    answer (an activity retried after its first attempt succeeded)."""
    if any(h.request_id == request.request_id for h in state.packages):
        return ReserveAccessResult(accepted=True, reason="already registered")
    for held in state.packages:
        if held.package_id == request.package_id:
            verb = "holds" if held.status == "granted" else "has already requested"
            what = "this role" if held.grant_kind is GrantKind.PIM else "this package"
            return ReserveAccessResult(
                accepted=False,
                reason=f"{state.employee_id} {verb} {what} ({held.request_id}); "
                "ask for an extension instead",
            )
    conflict = find_conflict(request.sod_rules, request.keys, held_keys(state, request.request_id))
    if conflict is not None:
        return ReserveAccessResult(
            accepted=False,
            reason=f"separation of duties rule {conflict.rule!r}: {conflict.requested} "
            f"conflicts with {conflict.held}, which {state.employee_id} holds or has requested",
            conflict=conflict,
        )
    state.packages.append(
        HeldPackage(
            request_id=request.request_id,
            package_id=request.package_id,
            status="pending",
            keys=request.keys,
            groups=request.groups,
            apps=request.apps,
            resources=request.resources,
            grant_kind=request.grant_kind,
        )
    )
    return ReserveAccessResult(accepted=True)


def apply_change(state: IdentityState, change: AccessRequestChanged) -> None:
    for held in list(state.packages):
        if held.request_id != change.request_id:
            continue
        if change.status == "closed":
            state.packages.remove(held)
        elif held.status == "suspended" and state.suspension is not None:
            held.until = change.until  # an extension while set aside: still set aside
        else:
            held.status = change.status
            held.until = change.until
