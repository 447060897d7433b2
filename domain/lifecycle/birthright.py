"""Birthright: which groups and apps a worker's HR attributes imply. Pure functions, no I/O."""

from __future__ import annotations

from domain.lifecycle.events import WorkerRecord
from domain.policy.model import BirthrightRule, Policy
from domain.provisioning import GrantedApp, GrantedGroup, JoinerPlan, LeaverPlan, MoverPlan


def _worker_value(worker: WorkerRecord, field: str) -> str | None:
    if field.startswith("attributes."):
        return worker.attributes.get(field.removeprefix("attributes."))
    value = getattr(worker, field)
    return None if value is None else str(value)


def rule_matches(rule: BirthrightRule, worker: WorkerRecord) -> bool:
    return conditions_match(rule.when, worker)


def conditions_match(when: dict[str, str | list[str]], worker: WorkerRecord) -> bool:
    """Every condition holds; a list is any of its values; case is ignored. Empty: matches."""
    for field, expected in when.items():
        actual = _worker_value(worker, field)
        if actual is None:
            return False
        options = [expected] if isinstance(expected, str) else expected
        if actual.casefold() not in {o.casefold() for o in options}:
            return False
    return True


def birthright_for(
    policy: Policy, worker: WorkerRecord
) -> tuple[list[GrantedGroup], list[GrantedApp]]:
    """Groups and apps in policy order; each granted once, credited to the first rule granting it.

    Roles of one app granted by several rules are merged, so the result is the same whatever the order
    in which rules are listed.
    """
    groups: dict[str, GrantedGroup] = {}
    apps: dict[str, GrantedApp] = {}
    for rule in policy.birthright:
        if not rule_matches(rule, worker):
            continue
        for group in rule.groups:
            groups.setdefault(group, GrantedGroup(group=group, rule=rule.name))
        for grant in rule.apps:
            held = apps.setdefault(grant.app, GrantedApp(app=grant.app, rule=rule.name))
            held.roles = sorted(set(held.roles) | set(grant.roles))
    return list(groups.values()), list(apps.values())


def joiner_plan(policy: Policy, worker: WorkerRecord) -> JoinerPlan:
    groups, apps = birthright_for(policy, worker)
    return JoinerPlan(
        upn_domain=policy.tenant.domain,
        pre_hire_days=policy.joiner.pre_hire_days,
        groups=groups,
        apps=apps,
        mail_sender=policy.tenant.mail_sender,
        tap_lifetime_minutes=policy.joiner.tap_lifetime_minutes,
    )


def leaver_plan(policy: Policy) -> LeaverPlan:
    return LeaverPlan(
        retention_days=policy.leaver.retention_days, mail_sender=policy.tenant.mail_sender
    )


def mover_plan(policy: Policy, worker: WorkerRecord) -> MoverPlan:
    groups, apps = birthright_for(policy, worker)
    return MoverPlan(
        upn_domain=policy.tenant.domain,
        groups=groups,
        apps=apps,
        remove_after={r.name: r.remove_after for r in policy.birthright if r.remove_after},
        mail_sender=policy.tenant.mail_sender,
    )
