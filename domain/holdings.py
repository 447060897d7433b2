"""The holdings ledger: every resource a person holds, and every grant that holds it.

A resource (a Graph group, a SCIM app account, a SCIM app role; later a directory role or a
privileged group) may be held for several reasons at once: a birthright rule, one or more access
packages, and later a PIM activation or a review exception. It is removed only when the last of
them ends, so ending one grant never takes away access another still gives.

The identity entity owns the ledger (it serialises everything about one person), and derives it
from what it already keeps: birthright items (`IdentityState.access`) and the packages it has
registered (`IdentityState.packages`). Pure functions only: the workflows decide with them.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ResourceKind(StrEnum):
    # The first two values are the `AccessItem.kind` strings earlier releases stored in history.
    GRAPH_GROUP = "graph_group"
    SCIM_ACCOUNT = "scim_app"
    SCIM_ROLE = "scim_role"
    DIRECTORY_ROLE = "directory_role"
    PRIVILEGED_GROUP = "privileged_group"


class ResourceRef(BaseModel):
    """One thing a person can hold, the same wherever it is named (ledger, plans, the record)."""

    model_config = ConfigDict(frozen=True)

    kind: ResourceKind
    # Group display name, app name, or role template id.
    target: str
    # The app role (SCIM_ROLE), or member/owner (PRIVILEGED_GROUP); None otherwise.
    role: str | None = None

    @property
    def key(self) -> str:
        """The resource as the access record and SoD rules name it (`group:Finance`,
        `app:ledger`, `app:ledger:reader`): stable text, kept by earlier releases."""
        if self.kind is ResourceKind.GRAPH_GROUP:
            return f"group:{self.target}"
        if self.kind is ResourceKind.SCIM_ACCOUNT:
            return f"app:{self.target}"
        if self.kind is ResourceKind.SCIM_ROLE:
            return f"app:{self.target}:{self.role}"
        if self.kind is ResourceKind.DIRECTORY_ROLE:
            return f"directory_role:{self.target}"
        return f"privileged_group:{self.target}:{self.role}"

    @property
    def account(self) -> ResourceRef | None:
        """The app account an app role lives in (removing the role never removes the account)."""
        if self.kind is ResourceKind.SCIM_ROLE:
            return app_account(self.target)
        return None


def group(name: str) -> ResourceRef:
    return ResourceRef(kind=ResourceKind.GRAPH_GROUP, target=name)


def app_account(app: str) -> ResourceRef:
    return ResourceRef(kind=ResourceKind.SCIM_ACCOUNT, target=app)


def app_role(app: str, role: str) -> ResourceRef:
    return ResourceRef(kind=ResourceKind.SCIM_ROLE, target=app, role=role)


def app_resources(app: str, roles: list[str]) -> list[ResourceRef]:
    """An app account and each of its roles are separate resources."""
    return [app_account(app), *(app_role(app, r) for r in roles)]


class GrantKind(StrEnum):
    BIRTHRIGHT = "birthright"
    PACKAGE = "package"
    PIM = "pim"
    # Eligible for a privileged role: holds nothing, but the identity knows it (a leave or an
    # incident reaches it like any grant).
    PIM_ELIGIBILITY = "pim_eligibility"
    REVIEW_EXCEPTION = "review_exception"


class GrantRef(BaseModel):
    """Why a resource is held: a birthright rule (by name), a package (by its request id), ..."""

    model_config = ConfigDict(frozen=True)

    kind: GrantKind
    id: str
    # Shown to people: the rule name, or the package id for a request.
    label: str = ""

    def describe(self) -> str:
        if self.kind is GrantKind.BIRTHRIGHT:
            return f"birthright rule {self.id}"
        if self.kind is GrantKind.PACKAGE:
            return f"package {self.label or '?'} ({self.id})"
        return f"{self.kind.value} {self.label or self.id}"


class Holding(BaseModel):
    """A resource and every grant that holds it now."""

    resource: ResourceRef
    grants: list[GrantRef]


class Grant(BaseModel):
    """One grant and the resources it holds: the ledger's input."""

    grant: GrantRef
    resources: list[ResourceRef]


def holdings(grants: list[Grant]) -> list[Holding]:
    """Every resource held, with all its grants, in a stable order (by resource key). An app
    account is held by every grant of one of its roles, as well as by grants of the account."""
    by_resource: dict[ResourceRef, list[GrantRef]] = {}
    for g in grants:
        for resource in g.resources:
            for held in (resource, resource.account):
                if held is None:
                    continue
                held_by = by_resource.setdefault(held, [])
                if g.grant not in held_by:
                    held_by.append(g.grant)
    return [Holding(resource=r, grants=gs) for r, gs in sorted(by_resource.items(), key=_by_key)]


class Release(BaseModel):
    """What ending one grant means: resources to remove, and those another grant keeps."""

    remove: list[ResourceRef]
    kept: list[Holding]


def release(grants: list[Grant], ending: GrantRef) -> Release:
    """Resources of `ending` that no other grant holds go; the rest stay, with what holds them.

    An app account counts as held by any grant of one of its roles, so ending a role grant never
    takes the account from someone another grant gives a role in it.
    """
    ended = next((g for g in grants if g.grant == ending), None)
    if ended is None:
        return Release(remove=[], kept=[])
    held = {h.resource: h.grants for h in holdings([g for g in grants if g.grant != ending])}
    remove: list[ResourceRef] = []
    kept: list[Holding] = []
    for resource in sorted(set(ended.resources), key=lambda r: r.key):
        if resource in held:
            kept.append(Holding(resource=resource, grants=held[resource]))
        else:
            remove.append(resource)
    return Release(remove=remove, kept=kept)


def _by_key(item: tuple[ResourceRef, list[GrantRef]]) -> str:
    return item[0].key
