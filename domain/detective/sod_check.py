"""Detective separation of duties: which SoD rules a person breaks now, through any mix of grants.

A request is checked for SoD when it is made (domain/access/sod.py), but a person can still come
to hold both sides of a rule without asking for either: a move brings birthright that conflicts
with a package they kept, an app role comes with an account, a rule is added to the policy after
the grants. These pure functions read what a person holds off their identity's state and name
every rule broken, its sides, and the grant whose end would mend it. Activities call them where
the state is (one person, or a page of people); workflows decide what to do with the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from domain.access.policy import SodRule
from domain.detective.sod_violations import SodViolation, ViolationStatus
from domain.holdings import GrantKind, ResourceKind, ResourceRef
from domain.lifecycle import ledger
from domain.lifecycle.identity import IdentityState

# Grants a detective remediation can end: a package's request is revoked, a PIM activation ended.
# Birthright follows the HR record, so only another move can take it away.
REMOVABLE = (GrantKind.PACKAGE, GrantKind.PIM)


class HeldGrant(BaseModel):
    """One grant that holds an SoD key, as a remediation names it."""

    kind: GrantKind
    id: str  # the birthright rule, or the request's (activation's) workflow id
    label: str  # the birthright rule, the package id, or pim:<role>
    # When it was granted, from the record; None where the record does not say (birthright).
    granted_at: datetime | None = None
    # Its place in the identity's registrations: a later one was registered after.
    order: int = 0

    @property
    def removable(self) -> bool:
        return self.kind in REMOVABLE

    def describe(self) -> str:
        if self.kind is GrantKind.BIRTHRIGHT:
            return f"birthright rule {self.id}"
        if self.kind is GrantKind.PIM:
            return f"role activation {self.label} ({self.id})"
        return f"package {self.label} ({self.id})"


class SodSide(BaseModel):
    """One of a rule's entries the person holds, and every grant that holds it."""

    key: str
    grants: list[HeldGrant]


class FoundViolation(BaseModel):
    """A rule the person breaks now: the rule as the policy has it, the sides held, and the grant
    a remediation removes (None when ending no single package or role grant would mend it)."""

    rule: SodRule
    employee_id: str
    sides: list[SodSide] = Field(min_length=2)
    newest: HeldGrant | None = None
    # Why `newest` is None, in people's words.
    not_removable: str = ""

    @property
    def violation_id(self) -> str:
        return violation_id(self.rule.name, self.employee_id)

    @property
    def side_keys(self) -> list[str]:
        return [s.key for s in self.sides]


def violation_id(rule: str, employee_id: str) -> str:
    return f"{rule}:{employee_id}"


def held_keys(
    state: IdentityState, granted_at: Mapping[str, datetime] | None = None
) -> dict[str, list[HeldGrant]]:
    """Every SoD key the person holds now (`group:X`, `app:X`, `app:X:role`, `package:<id>`,
    `pim:<role>`, and the resource keys of PIM targets), each with the grants that hold it.

    Counted: birthright items, except those a move took away and a grace period keeps (they are
    going already, and counting them would have a remediation remove a grant the person keeps);
    packages and PIM activations that are granted. Not counted: pending requests (they hold
    nothing yet; the request-time check covers them), grants set aside by an incident, ones being
    released, and PIM eligibilities (they hold nothing until activated).

    `granted_at` (request id -> when granted, from the record) dates the package and PIM grants.
    """
    dates = granted_at or {}
    found: dict[str, list[HeldGrant]] = {}

    def add(key: str, grant: HeldGrant) -> None:
        grants = found.setdefault(key, [])
        if grant not in grants:
            grants.append(grant)

    leaving = {(p.kind, p.target) for p in state.pending_removals}
    order = 0
    for item in state.access:
        if (item.kind, item.target) in leaving:
            continue
        grant = HeldGrant(kind=GrantKind.BIRTHRIGHT, id=item.rule, label=item.rule, order=order)
        for resource in ledger.item_resources(item):
            for key in _resource_keys(resource):
                add(key, grant)
    for held in state.packages:
        order += 1
        if held.status != "granted" or held.grant_kind not in REMOVABLE:
            continue
        grant = HeldGrant(
            kind=held.grant_kind,
            id=held.request_id,
            label=held.package_id,
            granted_at=dates.get(held.request_id),
            order=order,
        )
        # A PIM activation's package_id is already pim:<role>.
        own = held.package_id if held.grant_kind is GrantKind.PIM else f"package:{held.package_id}"
        add(own, grant)
        for resource in ledger.package_resources(held):
            for key in _resource_keys(resource):
                add(key, grant)
    return found


def _resource_keys(resource: ResourceRef) -> list[str]:
    """The keys one resource answers to: its own, its app account's (an app role comes with the
    account), and for membership of a privileged group the group's (`group:X` names a Graph
    group however it is held)."""
    keys = [resource.key]
    if resource.account is not None:
        keys.append(resource.account.key)
    if resource.kind is ResourceKind.PRIVILEGED_GROUP and resource.role == "member":
        keys.append(f"group:{resource.target}")
    return keys


def violations(
    rules: list[SodRule],
    state: IdentityState,
    granted_at: Mapping[str, datetime] | None = None,
) -> list[FoundViolation]:
    """Every rule of which the person holds two or more entries, in the policy's order."""
    held = held_keys(state, granted_at)
    found = []
    for rule in rules:
        sides = [
            SodSide(key=ref.key, grants=list(held[ref.key]))
            for ref in rule.incompatible
            if ref.key in held
        ]
        if len(sides) < 2:
            continue
        newest, why = _newest(sides)
        found.append(
            FoundViolation(
                rule=rule,
                employee_id=state.employee_id,
                sides=sides,
                newest=newest,
                not_removable=why,
            )
        )
    return found


def _newest(sides: list[SodSide]) -> tuple[HeldGrant | None, str]:
    """The latest removable grant whose end alone leaves fewer than two sides held.

    Birthright never qualifies. A grant holding a side that another grant also holds does not
    mend the violation by ending, so it is passed over for one that does.
    """
    grants = {g.id: g for side in sides for g in side.grants}
    removable = [g for g in grants.values() if g.removable]
    if not removable:
        return None, "birthright holds every side: only a move (or the policy) can change it"
    mending = [
        g for g in removable if sum(1 for s in sides if any(o.id != g.id for o in s.grants)) < 2
    ]
    if not mending:
        return None, "no single package or role grant holds a side alone"
    return max(mending, key=_recency), ""


def _recency(grant: HeldGrant) -> tuple[bool, datetime, int]:
    # Dated grants by date; a grant the record has no date for counts as older than a dated one
    # (registered by an earlier release), and registration order breaks ties.
    return (grant.granted_at is not None, grant.granted_at or _EARLIEST, grant.order)


_EARLIEST = datetime.min.replace(tzinfo=UTC)


# ---- what the record already says ------------------------------------------------------------------


class PersonCheck(BaseModel):
    """One person's check against the record: what to remediate, and what is mended."""

    employee_id: str
    known: bool = True  # Tenure has an identity for them
    manager_id: str | None = None
    found: list[FoundViolation] = Field(default_factory=list)
    # Found, and no remediation has it in hand (new, back after a removal, or its sides changed).
    remediate: list[FoundViolation] = Field(default_factory=list)
    # In the record as notified (or an exception long past), and no longer held.
    resolve: list[SodViolation] = Field(default_factory=list)


def plan_check(check: PersonCheck, recorded: list[SodViolation], now: datetime) -> PersonCheck:
    """Compare what is found with what the record says of the same person.

    A remediation runs once per occurrence: a violation already notified with the same sides is
    left alone (the owners know), one whose remediation is under way (open, an exception pending
    or holding) belongs to that run, which checks again when the exception ends. One removed or
    resolved before and found again is a new occurrence. An exception still recorded as holding
    past its end (its run was stopped) is remediated again.
    """
    by_id = {v.violation_id: v for v in recorded}
    remediate = []
    for found in check.found:
        before = by_id.get(found.violation_id)
        if before is None or _needs_remediation(before, found, now):
            remediate.append(found)
    held = {f.violation_id for f in check.found}
    resolve = [
        v.model_copy(update={"status": ViolationStatus.RESOLVED, "updated_at": now})
        for v in recorded
        if v.violation_id not in held and v.status is ViolationStatus.NOTIFIED
    ]
    return check.model_copy(update={"remediate": remediate, "resolve": resolve})


def _needs_remediation(before: SodViolation, found: FoundViolation, now: datetime) -> bool:
    status = before.status
    if status in (ViolationStatus.REMOVED, ViolationStatus.RESOLVED):
        return True
    if status is ViolationStatus.NOTIFIED:
        return sorted(s.get("key", "") for s in before.sides) != sorted(found.side_keys)
    if status is ViolationStatus.EXCEPTED:
        return before.exception_until is not None and before.exception_until < now
    return False  # open or exception_pending: a remediation run has it
