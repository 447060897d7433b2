"""What the PIM alert scan finds wrong, decided from a typed inventory (pure: no I/O, no clock).

The activity (activities/pim/alerts.py) reads the inventory: the active assignments Graph holds of
the roles scanned (every directory role the policy names, and Entra's built-in privileged roles
whether or not it names them), the activations and eligibilities the record keeps, and Graph's
eligibilities. `find_alerts` turns it into one `AlertFinding` per cause; the record then raises,
keeps open or resolves the alerts (audit/privileged.py).

Privileged groups the policy names are scanned too: their holders are the group's members (or
owners), each with the window of the PIM assignment that gives it, and a direct member or owner
with none is held outside Tenure, permanently. A role is counted by its scan key
(`PrivilegedRole.scan_key`): a directory role's template id, or `group:<name>:<member|owner>`.

A finding names its role by the policy's role id, or by the template id for a role the policy does
not name, and its person by employee id, or by Graph principal id for a principal without one (a
service principal, a role-assignable group, a user with no employeeId).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from domain.pim.alerts import AlertFinding, AlertKind
from domain.pim.roles import PimAlertSettings, PimSettings, RoleKind
from domain.policy.values import describe_duration

TENANT_SCOPE = "/"
# Every kind the scan looks for: the record resolves an open alert of these kinds it no longer sees.
ALL_KINDS: tuple[AlertKind, ...] = tuple(AlertKind)
# Holders named in a role-wide finding's detail; the count says how many there are in all.
HOLDERS_LISTED = 20

# Entra's built-in roles Microsoft labels privileged (template ids are the same in every tenant):
# held outside Tenure, or permanently, they are alerts even when the policy does not name them.
PRIVILEGED_BUILT_IN: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
}


class ScannedRole(BaseModel):
    """A directory role or a privileged group the scan reads from Graph."""

    template_id: str  # the scan key (lower case, as compared): see PrivilegedRole.scan_key
    role_id: str | None = None  # the policy's role id; None for a built-in it does not name
    display_name: str
    group: str | None = None  # a privileged group's display name
    access: str = "member"  # a privileged group's: member or owner

    @property
    def alert_role(self) -> str:
        return self.role_id or self.template_id


class RoleHolding(BaseModel):
    """An active assignment of a scanned role, as Graph reports it now."""

    principal_id: str
    employee_id: str | None = None  # the user's employeeId; None for other principals
    template_id: str  # the role's scan key
    role_id: str | None = None  # the policy's role id, where the policy names the role
    start: datetime | None = None
    end: datetime | None = None  # None: permanent
    scope: str = TENANT_SCOPE  # directoryScopeId: Tenure activates at the tenant ("/") only
    assignment_type: str = "Assigned"  # Assigned | Activated

    @property
    def subject(self) -> str:
        return self.employee_id or self.principal_id

    @property
    def alert_role(self) -> str:
        return self.role_id or self.template_id


class ActivationFact(BaseModel):
    """One of the record's role activations (a `pim:<role>` request)."""

    employee_id: str
    role_id: str
    granted_at: datetime | None = None  # None: not granted (yet, or ever)
    # Tenure holds it now: granted, or being granted (its Graph assignment may already be there
    # while the record still says `granting`).
    held: bool = False


class EligibilityFact(BaseModel):
    """A person eligible for a role: the record's granted `pim-eligible:<role>`, or Graph's."""

    employee_id: str  # or the Graph principal id of a principal without an employee id
    role_id: str  # the policy's role id, or the template id of a role it does not name
    since: datetime


class AlertInventory(BaseModel):
    holdings: list[RoleHolding] = Field(default_factory=list)
    activations: list[ActivationFact] = Field(default_factory=list)
    eligibilities: list[EligibilityFact] = Field(default_factory=list)


def scanned_roles(pim: PimSettings) -> list[ScannedRole]:
    """The policy's directory roles and privileged groups, then the built-in privileged roles
    it does not name."""
    found: dict[str, ScannedRole] = {}
    for rid, role in sorted(pim.roles.items()):
        found[role.scan_key] = ScannedRole(
            template_id=role.scan_key,
            role_id=rid,
            display_name=role.display_name,
            group=role.group if role.kind is RoleKind.PRIVILEGED_GROUP else None,
            access=role.access.value,
        )
    for template, name in PRIVILEGED_BUILT_IN.items():
        found.setdefault(template, ScannedRole(template_id=template, display_name=name))
    return list(found.values())


def find_alerts(inventory: AlertInventory, pim: PimSettings, at: datetime) -> list[AlertFinding]:
    """Every cause the inventory shows at `at`, one finding each, in alert-id order."""
    names = _names(pim)
    settings = pim.alerts
    findings = [
        *outside_tenure(inventory.holdings, inventory.activations, names),
        *permanent_active(inventory.holdings, pim, names),
        *too_many_holders(inventory.holdings, pim, names),
        *frequent_activation(inventory.activations, settings, at, names),
        *never_activated(
            inventory.eligibilities, inventory.activations, inventory.holdings, settings, at, names
        ),
    ]
    return sorted(findings, key=lambda f: f.alert_id)


def outside_tenure(
    holdings: Iterable[RoleHolding],
    activations: Iterable[ActivationFact],
    names: dict[str, str] | None = None,
) -> list[AlertFinding]:
    """Held roles that are no activation Tenure holds now: a role the policy does not name, a
    principal with no employee id, another scope than the tenant's, or no held activation."""
    names = names or {}
    held = {(a.employee_id, a.role_id) for a in activations if a.held}
    outside: dict[tuple[str, str], list[RoleHolding]] = defaultdict(list)
    for h in holdings:
        ours = (
            h.role_id is not None
            and h.employee_id is not None
            and h.scope == TENANT_SCOPE
            and (h.employee_id, h.role_id) in held
        )
        if not ours:
            outside[(h.alert_role, h.subject)].append(h)
    return [
        AlertFinding(
            kind=AlertKind.OUTSIDE_TENURE,
            role_id=role,
            subject=subject,
            text=f"{_who(found[0])} holds {_role(role, names)} outside Tenure: no activation "
            "Tenure holds now grants it",
            detail=_holding_detail(found),
        )
        for (role, subject), found in sorted(outside.items())
    ]


def permanent_active(
    holdings: Iterable[RoleHolding], pim: PimSettings, names: dict[str, str] | None = None
) -> list[AlertFinding]:
    """Active assignments without an end, of roles whose settings do not allow them (a role the
    policy does not name allows none)."""
    names = names or {}
    permanent: dict[tuple[str, str], list[RoleHolding]] = defaultdict(list)
    for h in holdings:
        role = pim.roles.get(h.role_id) if h.role_id is not None else None
        if h.end is None and not (role is not None and role.allow_permanent_active):
            permanent[(h.alert_role, h.subject)].append(h)
    return [
        AlertFinding(
            kind=AlertKind.PERMANENT_ACTIVE,
            role_id=role,
            subject=subject,
            text=f"{_who(found[0])} holds {_role(role, names)} permanently: an active assignment "
            "without an end",
            detail=_holding_detail(found),
        )
        for (role, subject), found in sorted(permanent.items())
    ]


def too_many_holders(
    holdings: Iterable[RoleHolding], pim: PimSettings, names: dict[str, str] | None = None
) -> list[AlertFinding]:
    """Roles with more distinct active holders than their `max_holders` limit."""
    names = names or {}
    limits: dict[str, tuple[str, int]] = {}  # template id -> (alert role, limit)
    for key, limit in pim.alerts.max_holders.items():
        role = pim.roles.get(key)
        if role is not None:
            limits[role.scan_key] = (key, limit)
        else:
            limits[key.lower()] = (_policy_role_of(key, pim) or key, limit)
    holders: dict[str, set[str]] = defaultdict(set)
    for h in holdings:
        holders[h.template_id.lower()].add(h.subject)
    findings = []
    for template, (role, limit) in sorted(limits.items()):
        held_by = sorted(holders.get(template, set()))
        if len(held_by) <= limit:
            continue
        findings.append(
            AlertFinding(
                kind=AlertKind.TOO_MANY_HOLDERS,
                role_id=role,
                text=f"{_role(role, names)} has {len(held_by)} active holders, more than the "
                f"{limit} allowed",
                detail={
                    "holders": len(held_by),
                    "limit": limit,
                    "template_id": template,
                    "holders_listed": held_by[:HOLDERS_LISTED],
                },
            )
        )
    return findings


def frequent_activation(
    activations: Iterable[ActivationFact],
    settings: PimAlertSettings,
    at: datetime,
    names: dict[str, str] | None = None,
) -> list[AlertFinding]:
    """People who activated one role more than `max_activations` times within the window
    ending at `at`."""
    names = names or {}
    since = at - settings.activation_window
    granted: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for a in activations:
        if a.granted_at is not None and since < a.granted_at <= at:
            granted[(a.role_id, a.employee_id)].append(a.granted_at)
    window = describe_duration(settings.activation_window)
    return [
        AlertFinding(
            kind=AlertKind.FREQUENT_ACTIVATION,
            role_id=role,
            subject=employee,
            text=f"{employee} activated {_role(role, names)} {len(times)} times in {window}, "
            f"more than the {settings.max_activations} allowed",
            detail={
                "activations": len(times),
                "limit": settings.max_activations,
                "window": window,
                "first": min(times).isoformat(),
                "last": max(times).isoformat(),
            },
        )
        for (role, employee), times in sorted(granted.items())
        if len(times) > settings.max_activations
    ]


def never_activated(
    eligibilities: Iterable[EligibilityFact],
    activations: Iterable[ActivationFact],
    holdings: Iterable[RoleHolding],
    settings: PimAlertSettings,
    at: datetime,
    names: dict[str, str] | None = None,
) -> list[AlertFinding]:
    """People eligible for a role for `never_activated_days` or more who have not activated it in
    that time (an activation granted within it, or one held now, counts)."""
    names = names or {}
    days = settings.never_activated_days
    cutoff = at - timedelta(days=days)
    active = {
        (a.employee_id, a.role_id)
        for a in activations
        if a.held or (a.granted_at is not None and a.granted_at >= cutoff)
    }
    active |= {(h.subject, h.alert_role) for h in holdings}
    # One fact per person and role: the earliest `since` (the record and Graph may both know it,
    # and Graph moves its start when an eligibility is extended).
    since: dict[tuple[str, str], datetime] = {}
    for e in eligibilities:
        key = (e.role_id, e.employee_id)
        since[key] = min(since.get(key, e.since), e.since)
    return [
        AlertFinding(
            kind=AlertKind.NEVER_ACTIVATED,
            role_id=role,
            subject=employee,
            text=f"{employee} has been eligible for {_role(role, names)} since "
            f"{start:%Y-%m-%d} and has not activated it in {days} days",
            detail={"eligible_since": start.isoformat(), "days": days},
        )
        for (role, employee), start in sorted(since.items())
        if start <= cutoff and (employee, role) not in active
    ]


# ---- helpers -------------------------------------------------------------------------------------


def _names(pim: PimSettings) -> dict[str, str]:
    """Alert role (role id or template id) -> display name, for the findings' text."""
    return {r.alert_role: r.display_name for r in scanned_roles(pim)}


def _policy_role_of(template_id: str, pim: PimSettings) -> str | None:
    for rid, role in pim.roles.items():
        if role.template_id and role.template_id.lower() == template_id.lower():
            return rid
    return None


def _role(role: str, names: dict[str, str]) -> str:
    name = names.get(role)
    return f"{name} ({role})" if name else f"role {role}"


def _who(h: RoleHolding) -> str:
    return h.employee_id or f"principal {h.principal_id}"


def _holding_detail(found: Sequence[RoleHolding]) -> dict[str, object]:
    first = found[0]
    return {
        "principal_id": first.principal_id,
        "employee_id": first.employee_id,
        "template_id": first.template_id,
        "scopes": sorted({h.scope for h in found}),
        "assignment_type": first.assignment_type,
        "start": first.start.isoformat() if first.start else None,
        "end": _latest_end(found),
    }


def _latest_end(found: Sequence[RoleHolding]) -> str | None:
    """The end of the longest-lasting holding (None: one of them is permanent)."""
    if any(h.end is None for h in found):
        return None
    return max(h.end for h in found if h.end is not None).isoformat()
