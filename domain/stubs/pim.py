"""PIM activities that are not Graph calls (implemented by activities/policy.py and
activities/pim/tickets.py); the Graph ones are in pim_graph."""

from __future__ import annotations

from temporalio import activity

from domain.pim.activation import (
    PimActivityNames,
    ResolvedRole,
    ResolveRoleInput,
    TicketVerdict,
    VerifyTicketInput,
)

__all__ = ["resolve_pim_role", "verify_ticket"]


@activity.defn(name=PimActivityNames.RESOLVE_ROLE)
async def resolve_pim_role(input: ResolveRoleInput) -> ResolvedRole:
    raise NotImplementedError


@activity.defn(name=PimActivityNames.VERIFY_TICKET)
async def verify_ticket(input: VerifyTicketInput) -> TicketVerdict:
    raise NotImplementedError
