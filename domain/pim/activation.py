"""One role activation's contract: `pim-activation-{employee}-{role}-{key}`.

The run validates the ask against the role's settings and the person's eligibility (read from
Graph), registers the activation in the person's holdings ledger (their identity entity, which
also checks separation of duties), waits for approval where the role needs it (the approval
engine, within the role's approval window), waits for a scheduled start, activates through Graph
with an expiration, and sleeps until the end; then it deactivates and checks the role is gone.
The person may end it early or extend it within the role's maximum; a leave or an incident ends
it at once. Its story is kept in the record as a request is (`package_id` = `pim:{role}`), so the
record's access changes, exports and "waiting for me" lists include activations.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field

from domain.access.policy import SodRule
from domain.access.request import Actor
from domain.pim.graph import RoleTarget
from domain.pim.roles import PrivilegedRole
from domain.pim.rules import ActivationAsk


class PimContract:
    WORKFLOW = "PimActivationWorkflow"
    ID_PREFIX = "pim-activation-"
    UPDATE_DECIDE = "decide"  # the approval engine's decision (as an access request's)
    UPDATE_DEACTIVATE = "deactivate"
    UPDATE_EXTEND = "extend"
    # Same names as an access request's, so the identity entity tells both alike.
    SIGNAL_BENEFICIARY_LEFT = "beneficiary_left"
    SIGNAL_SUSPENDED = "suspended"
    SIGNAL_REFUSED_ATTEMPT = "refused_attempt"
    QUERY_DETAILS = "details"


def package_key(role_id: str) -> str:
    """How an activation is named where a request names its package (record, ledger, SoD)."""
    return f"pim:{role_id}"


def activation_workflow_id(employee_id: str, role_id: str, key: str) -> str:
    """Readable, and the same for the same ask (`key` is the caller's idempotency key)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{PimContract.ID_PREFIX}{employee_id}-{role_id}-{digest}"


class ActivationInput(BaseModel):
    ask: ActivationAsk
    submitted_at: datetime
    record_search_attributes: bool = True


class PimActivityNames:
    RESOLVE_ROLE = "policy.resolve_pim_role"
    VERIFY_TICKET = "pim.verify_ticket"


class ResolveRoleInput(BaseModel):
    role_id: str


class ResolvedRole(BaseModel):
    """A role's settings as the policy has them, with what an activation needs around them."""

    role_id: str
    role: PrivilegedRole
    mail_sender: str
    # Employee ids allowed to act for anyone (end an activation, decide for the tenant).
    administrators: list[str] = Field(default_factory=list)
    # The SoD rules that name this role (pim:<role>), for the ledger's check.
    sod_rules: list[SodRule] = Field(default_factory=list)

    @property
    def target(self) -> RoleTarget:
        return RoleTarget.of(self.role)


class VerifyTicketInput(BaseModel):
    ticket: str
    role_id: str
    employee_id: str


class TicketVerdict(BaseModel):
    valid: bool
    reason: str = ""


class DeactivateInput(BaseModel):
    actor: Actor
    reason: str = Field("", max_length=2000)


class ExtendActivationInput(BaseModel):
    actor: Actor
    # The new length of the whole activation, from its start (within the role's maximum).
    duration: timedelta | None = None
    new_end: AwareDatetime | None = None
    justification: str = Field("", max_length=2000)


class Suspended(BaseModel):
    """The person's identity was suspended by an incident: every activation ends at once."""

    incident_id: str
    at: datetime


# ---- eligibility --------------------------------------------------------------------------------


class EligibilityContract:
    """`pim-eligibility-{employee}-{role}`: one run holds one person's eligibility for one role
    in Graph, until it expires, is removed, or the person leaves."""

    WORKFLOW = "PimEligibilityWorkflow"
    ID_PREFIX = "pim-eligibility-"
    # Taken by both kinds of PIM run (workflows/pim/core.py), under the same names.
    UPDATE_DECIDE = PimContract.UPDATE_DECIDE  # an extension's approval
    SIGNAL_BENEFICIARY_LEFT = PimContract.SIGNAL_BENEFICIARY_LEFT
    SIGNAL_SUSPENDED = PimContract.SIGNAL_SUSPENDED
    SIGNAL_REFUSED_ATTEMPT = PimContract.SIGNAL_REFUSED_ATTEMPT
    QUERY_DETAILS = PimContract.QUERY_DETAILS
    UPDATE_REMOVE = "remove"
    UPDATE_EXTEND = "request_extension"
    SIGNAL_RESTORED = "restored"


def eligibility_key(role_id: str) -> str:
    return f"pim-eligible:{role_id}"


def eligibility_workflow_id(employee_id: str, role_id: str) -> str:
    return f"{EligibilityContract.ID_PREFIX}{employee_id}-{role_id}"


class EligibilityAssignInput(BaseModel):
    employee_id: str
    role_id: str
    actor: Actor  # the administrator assigning it
    until: AwareDatetime | None = None  # absent: the role's default expiry
    permanent: bool = False
    justification: str = Field("", max_length=2000)
    submitted_at: datetime
    record_search_attributes: bool = True


class RemoveEligibilityAsk(BaseModel):
    actor: Actor
    reason: str = Field("", max_length=2000)


class ExtendEligibilityAsk(BaseModel):
    actor: Actor
    until: AwareDatetime | None = None
    permanent: bool = False
    justification: str = Field("", max_length=2000)


class Restored(BaseModel):
    incident_id: str
    by: str
    at: datetime
