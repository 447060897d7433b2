"""The identity entity's share of security incidents: suspending and restoring the person.

Deterministic bookkeeping on the entity's state, called from its update handlers, so a
suspension is serialised with everything else about the person. The incident's own run does
the side effects (sign-in, sessions, telling each grant). While suspended, HR events still
apply underneath (a leave stays a leave); the entity only shows the stage `suspended` and
refuses new grants. Package grants are set aside (the ledger no longer counts them), nothing is
deleted, and each request's own expiry keeps running: a grant that expires meanwhile is gone
at the restore.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.holdings import GrantKind
    from domain.lifecycle.identity import (
        IdentityState,
        LifecycleStage,
        RestoreIdentityInput,
        RestoreIdentityResult,
        SuspendIdentityInput,
        SuspendIdentityResult,
        Suspension,
    )

SET_ASIDE = "suspended"  # HeldPackage.status of a package grant an incident set aside


def suspend_refusal(state: IdentityState) -> str | None:
    if state.stage is LifecycleStage.NONE:
        return f"{state.employee_id} was never hired: there is nothing to suspend"
    return None


def shown_stage(state: IdentityState) -> LifecycleStage:
    """The stage people and other workflows see: `suspended` over an active person."""
    if state.suspension is not None and state.stage is LifecycleStage.ACTIVE:
        return LifecycleStage.SUSPENDED
    return state.stage


def suspend(state: IdentityState, ask: SuspendIdentityInput) -> SuspendIdentityResult:
    """Hold the person for this incident. Asked again (a retried activity, another incident
    while held) it changes nothing and says who holds them."""
    worker = state.worker
    result = SuspendIdentityResult(
        employee_id=state.employee_id,
        graph_user_id=state.graph_user_id,
        stage=state.stage,
        manager_id=worker.manager_id if worker else None,
        activations=[h.request_id for h in state.packages if h.grant_kind is GrantKind.PIM],
        roles=[
            r
            for h in state.packages
            if h.grant_kind is GrantKind.PIM and h.status == "granted"
            for r in h.resources
        ],
        eligibilities=[
            h.request_id for h in state.packages if h.grant_kind is GrantKind.PIM_ELIGIBILITY
        ],
    )
    if state.suspension is not None:
        result.already = True
        result.held_by = state.suspension.incident_id
        result.packages = [h.request_id for h in state.packages if h.status == SET_ASIDE]
        return result
    for held in state.packages:
        if held.grant_kind is GrantKind.PACKAGE and held.status == "granted":
            held.status = SET_ASIDE
            result.packages.append(held.request_id)
    state.suspension = Suspension(
        incident_id=ask.incident_id,
        at=ask.at,
        grants=[*result.packages, *result.eligibilities],
    )
    result.held_by = ask.incident_id
    return result


def restore(state: IdentityState, ask: RestoreIdentityInput) -> RestoreIdentityResult:
    """Lift the suspension: grants still held come back; what ended meanwhile stays gone."""
    result = RestoreIdentityResult(
        employee_id=state.employee_id, graph_user_id=state.graph_user_id, stage=state.stage
    )
    suspension = state.suspension
    if suspension is None:
        return result  # already restored (a retried activity)
    for held in state.packages:
        if held.status == SET_ASIDE:
            held.status = "granted"
            result.packages.append(held.request_id)
        elif held.grant_kind is GrantKind.PIM_ELIGIBILITY and held.request_id in suspension.grants:
            result.eligibilities.append(held.request_id)
    state.suspension = None
    return result
