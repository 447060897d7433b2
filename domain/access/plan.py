"""What a request for one package needs from the policy, resolved at the start of the request."""

from __future__ import annotations

from domain.access.request import AccessPlan
from domain.access.sod import package_keys, relevant_rules
from domain.policy.model import Policy


class UnknownPackage(LookupError):
    pass


def access_plan(policy: Policy, package_id: str) -> AccessPlan:
    access = policy.access
    package = access.packages.get(package_id)
    if package is None:
        known = ", ".join(sorted(access.packages)) or "none"
        raise UnknownPackage(f"unknown access package {package_id!r} (packages: {known})")
    catalog = access.catalogs[package.catalog]
    return AccessPlan(
        package_id=package_id,
        display_name=package.display_name,
        resources=package.resources,
        policy=package.policy,
        owners=package.owners or catalog.owners,
        administrators=access.administrators,
        sod_rules=relevant_rules(access.sod, package_keys(package_id, package.resources)),
        mail_sender=policy.tenant.mail_sender,
    )
