"""Separation of duties: which held access a request would conflict with. Pure functions."""

from __future__ import annotations

from pydantic import BaseModel

from domain.access.policy import PackageResource, SodRule


class SodConflict(BaseModel):
    rule: str
    description: str
    requested: str  # the requested package's key the rule names (package:X or group:Y)
    held: str  # what the person holds or has pending that it conflicts with


def package_keys(package_id: str, resources: list[PackageResource]) -> list[str]:
    """What holding a package means to SoD: the package itself and each group it grants."""
    keys = [f"package:{package_id}"]
    keys += [f"group:{r.group}" for r in resources if r.group is not None]
    return keys


def relevant_rules(rules: list[SodRule], keys: list[str]) -> list[SodRule]:
    wanted = set(keys)
    return [rule for rule in rules if any(ref.key in wanted for ref in rule.incompatible)]


def find_conflict(rules: list[SodRule], requested: list[str], held: set[str]) -> SodConflict | None:
    """The first rule under which a requested key and a held key are incompatible.

    Rules are symmetric: holding A and asking for B conflicts exactly as holding B and asking for A.
    A key both requested and held (asking again for a group one holds) is not a conflict with itself.
    """
    asked = set(requested)
    for rule in rules:
        keys = [ref.key for ref in rule.incompatible]
        mine = [k for k in keys if k in asked]
        if not mine:
            continue
        for key in keys:
            if key in held and key not in asked:
                return SodConflict(
                    rule=rule.name, description=rule.description, requested=mine[0], held=key
                )
    return None
