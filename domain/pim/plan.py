"""What an activation needs from the policy, resolved when it starts (rule 6: workflows get the
policy through an activity result)."""

from __future__ import annotations

from domain.access.sod import relevant_rules
from domain.pim.activation import ResolvedRole, package_key
from domain.pim.graph import RoleTarget
from domain.policy.model import Policy


class UnknownRole(LookupError):
    pass


def resolved_role(policy: Policy, role_id: str) -> ResolvedRole:
    role = policy.pim.roles.get(role_id)
    if role is None:
        known = ", ".join(sorted(policy.pim.roles)) or "none"
        raise UnknownRole(f"unknown privileged role {role_id!r} (roles: {known})")
    target = RoleTarget.of(role)
    return ResolvedRole(
        role_id=role_id,
        role=role,
        mail_sender=policy.tenant.mail_sender,
        administrators=policy.access.administrators,
        sod_rules=relevant_rules(policy.access.sod, [package_key(role_id), target.resource.key]),
    )
