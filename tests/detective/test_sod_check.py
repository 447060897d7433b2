"""Detective SoD as plain functions: what a person holds through any mix of grants, which rules
that breaks, which grant a remediation would end, and what the record already has in hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.access.policy import SodRemediation, SodRule
from domain.detective.sod_check import (
    FoundViolation,
    PersonCheck,
    held_keys,
    plan_check,
    violations,
)
from domain.detective.sod_violations import SodViolation, ViolationStatus
from domain.holdings import GrantKind, ResourceKind, ResourceRef, app_role, group
from domain.lifecycle.identity import AccessItem, HeldPackage, IdentityState, PendingRemoval

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DIRECTORY_ROLE = ResourceRef(kind=ResourceKind.DIRECTORY_ROLE, target="fe930be7")
BREAK_GLASS = ResourceRef(kind=ResourceKind.PRIVILEGED_GROUP, target="Break Glass", role="member")


def birthright(rule: str, target: str, *roles: str) -> AccessItem:
    kind = ResourceKind.SCIM_ACCOUNT if roles else ResourceKind.GRAPH_GROUP
    return AccessItem(kind=kind, target=target, rule=rule, roles=list(roles))


def package(request_id: str, package_id: str, *resources: ResourceRef, status: str = "granted"):
    return HeldPackage(
        request_id=request_id,
        package_id=package_id,
        status=status,
        resources=list(resources),
    )


def activation(request_id: str, role: str, resource: ResourceRef, status: str = "granted"):
    return HeldPackage(
        request_id=request_id,
        package_id=f"pim:{role}",
        status=status,
        resources=[resource],
        grant_kind=GrantKind.PIM,
    )


def person(*, access=(), packages=(), pending=()) -> IdentityState:
    return IdentityState(
        employee_id="E1",
        access=list(access),
        packages=list(packages),
        pending_removals=list(pending),
    )


def rule(name: str, *keys: str, **settings: object) -> SodRule:
    return SodRule.model_validate({"name": name, "incompatible": list(keys), **settings})


# ---- what is held ------------------------------------------------------------------------------


def test_every_kind_of_grant_is_held_under_its_keys() -> None:
    state = person(
        access=[birthright("finance", "Payables"), birthright("finance", "ledger", "reader")],
        packages=[
            package("req-1", "reports", group("Reports"), app_role("crm", "viewer")),
            activation("pim-1", "user-admin", DIRECTORY_ROLE),
            activation("pim-2", "break-glass", BREAK_GLASS),
        ],
    )
    held = held_keys(state)
    assert sorted(held) == [
        "app:crm",
        "app:crm:viewer",
        "app:ledger",
        "app:ledger:reader",
        "directory_role:fe930be7",
        "group:Break Glass",  # membership of a privileged group is membership of the group
        "group:Payables",
        "group:Reports",
        "package:reports",
        "pim:break-glass",
        "pim:user-admin",
        "privileged_group:Break Glass:member",
    ]
    assert [g.kind for g in held["group:Payables"]] == [GrantKind.BIRTHRIGHT]
    assert [g.id for g in held["pim:user-admin"]] == ["pim-1"]
    assert [g.label for g in held["group:Reports"]] == ["reports"]


def test_only_what_holds_access_now_counts() -> None:
    eligible = HeldPackage(
        request_id="elig-1",
        package_id="pim-eligible:user-admin",
        status="granted",
        grant_kind=GrantKind.PIM_ELIGIBILITY,
    )
    state = person(
        access=[birthright("finance", "Payables"), birthright("old-dept", "Receivables")],
        packages=[
            package("req-1", "a", group("A"), status="pending"),
            package("req-2", "b", group("B"), status="suspended"),
            package("req-3", "c", group("C"), status="releasing"),
            activation("pim-1", "user-admin", DIRECTORY_ROLE, status="pending"),
            eligible,
        ],
        # A move took Receivables away; the grace period keeps it for now, and it is going.
        pending=[
            PendingRemoval(
                kind=ResourceKind.GRAPH_GROUP,
                target="Receivables",
                rule="old-dept",
                due_at=NOW,
                event_id="E1-move",
            )
        ],
    )
    assert sorted(held_keys(state)) == ["group:Payables"]


def test_the_same_resource_from_two_grants_lists_both() -> None:
    state = person(
        access=[birthright("finance", "Payables")],
        packages=[package("req-1", "payables", group("Payables"))],
    )
    assert [g.kind for g in held_keys(state)["group:Payables"]] == [
        GrantKind.BIRTHRIGHT,
        GrantKind.PACKAGE,
    ]


# ---- which rules are broken, and what would mend them -------------------------------------------


def test_a_move_into_birthright_against_a_package_names_the_package() -> None:
    state = person(
        access=[birthright("treasury", "Treasury Ops")],
        packages=[package("req-1", "payables", group("Payables"))],
    )
    found = violations([rule("pay", "group:Treasury Ops", "package:payables")], state)
    assert len(found) == 1
    assert found[0].violation_id == "pay:E1"
    assert found[0].side_keys == ["group:Treasury Ops", "package:payables"]
    assert found[0].newest is not None and found[0].newest.id == "req-1"


def test_rules_held_on_one_side_only_are_not_broken() -> None:
    state = person(packages=[package("req-1", "payables", group("Payables"))])
    assert violations([rule("pay", "package:payables", "pim:user-admin")], state) == []


def test_birthright_on_both_sides_cannot_be_removed() -> None:
    state = person(access=[birthright("a", "Payables"), birthright("b", "Receivables")])
    (found,) = violations([rule("pay", "group:Payables", "group:Receivables")], state)
    assert found.newest is None
    assert "birthright" in found.not_removable


def test_the_latest_grant_goes_by_its_date_then_its_registration() -> None:
    state = person(
        packages=[
            package("req-old", "payables", group("Payables")),
            package("req-new", "receivables", group("Receivables")),
        ]
    )
    rules = [rule("pay", "package:payables", "package:receivables")]
    # Undated: the later registration.
    assert violations(rules, state)[0].newest.id == "req-new"  # type: ignore[union-attr]
    dated = {"req-old": NOW, "req-new": NOW - timedelta(days=3)}
    assert violations(rules, state, dated)[0].newest.id == "req-old"  # type: ignore[union-attr]
    # A dated grant counts as newer than one the record has no date for.
    assert violations(rules, state, {"req-old": NOW})[0].newest.id == "req-old"  # type: ignore[union-attr]


def test_a_grant_whose_end_would_not_mend_it_is_passed_over() -> None:
    # Payables is held by birthright and by the newer package: ending the package leaves
    # Payables, so the older role activation is what goes.
    state = person(
        access=[birthright("finance", "Payables")],
        packages=[
            activation("pim-1", "user-admin", DIRECTORY_ROLE),
            package("req-2", "payables-extra", group("Payables")),
        ],
    )
    (found,) = violations([rule("pay", "group:Payables", "pim:user-admin")], state)
    assert found.newest is not None and found.newest.id == "pim-1"
    assert found.newest.kind is GrantKind.PIM


def test_no_single_grant_mends_it_when_two_packages_hold_a_side() -> None:
    state = person(
        access=[birthright("treasury", "Treasury Ops")],
        packages=[
            package("req-1", "a", group("Payables")),
            package("req-2", "b", group("Payables")),
        ],
    )
    (found,) = violations([rule("pay", "group:Treasury Ops", "group:Payables")], state)
    assert found.newest is None
    assert "alone" in found.not_removable


def test_a_rule_of_three_names_every_side_held() -> None:
    state = person(
        access=[birthright("a", "A")],
        packages=[package("req-b", "b", group("B")), package("req-c", "c", group("C"))],
    )
    (found,) = violations([rule("abc", "group:A", "group:B", "group:C")], state)
    assert found.side_keys == ["group:A", "group:B", "group:C"]
    # No single end leaves fewer than two sides.
    assert found.newest is None


def test_app_roles_and_accounts_are_sides() -> None:
    state = person(
        access=[birthright("finance", "ledger", "approver")],
        packages=[package("req-1", "ledger-post", app_role("ledger", "poster"))],
    )
    found = violations([rule("post", "app:ledger:approver", "app:ledger:poster")], state)
    assert [f.newest.id for f in found] == ["req-1"]  # type: ignore[union-attr]


# ---- what the record already has ---------------------------------------------------------------


def _found(state: IdentityState, rules: list[SodRule]) -> PersonCheck:
    return PersonCheck(employee_id="E1", found=violations(rules, state))


def _recorded(status: ViolationStatus, sides: list[str], until: datetime | None = None):
    return SodViolation(
        violation_id="pay:E1",
        rule="pay",
        employee_id="E1",
        sides=[{"key": k, "grants": []} for k in sides],
        status=status,
        remediation="notify",
        detected_at=NOW - timedelta(days=10),
        updated_at=NOW - timedelta(days=10),
        exception_until=until,
    )


HELD = person(
    access=[birthright("treasury", "Treasury Ops")],
    packages=[package("req-1", "payables", group("Payables"))],
)
RULES = [rule("pay", "group:Treasury Ops", "package:payables")]
SIDES = ["group:Treasury Ops", "package:payables"]


@pytest.mark.parametrize(
    ("before", "remediate"),
    [
        (None, True),
        (_recorded(ViolationStatus.NOTIFIED, SIDES), False),  # the owners know
        (_recorded(ViolationStatus.NOTIFIED, ["group:Treasury Ops", "group:Payables"]), True),
        (_recorded(ViolationStatus.REMOVED, SIDES), True),  # back after a removal
        (_recorded(ViolationStatus.RESOLVED, SIDES), True),
        (_recorded(ViolationStatus.OPEN, SIDES), False),  # its run is on it
        (_recorded(ViolationStatus.EXCEPTION_PENDING, SIDES), False),
        (_recorded(ViolationStatus.EXCEPTED, SIDES, NOW + timedelta(days=1)), False),
        (_recorded(ViolationStatus.EXCEPTED, SIDES, NOW - timedelta(days=1)), True),  # run gone
    ],
)
def test_a_remediation_starts_once_per_occurrence(
    before: SodViolation | None, remediate: bool
) -> None:
    planned = plan_check(_found(HELD, RULES), [before] if before else [], NOW)
    assert [f.violation_id for f in planned.remediate] == (["pay:E1"] if remediate else [])
    assert planned.resolve == []


def test_a_notified_violation_no_longer_held_is_resolved() -> None:
    notified = _recorded(ViolationStatus.NOTIFIED, SIDES)
    excepted = _recorded(ViolationStatus.EXCEPTED, SIDES, NOW + timedelta(days=1))
    excepted = excepted.model_copy(update={"violation_id": "other:E1", "rule": "other"})
    planned = plan_check(_found(person(), RULES), [notified, excepted], NOW)
    assert planned.remediate == []
    # The exception's own run checks again at its end; the notified one is settled here.
    assert [(v.violation_id, v.status, v.updated_at) for v in planned.resolve] == [
        ("pay:E1", ViolationStatus.RESOLVED, NOW)
    ]


def test_found_violations_travel_as_json() -> None:
    (found,) = violations(RULES, HELD, {"req-1": NOW})
    again = FoundViolation.model_validate_json(found.model_dump_json())
    assert again == found
    assert again.newest is not None and again.newest.granted_at == NOW


# ---- the rule's remediation settings ------------------------------------------------------------


def test_a_rule_notifies_its_administrators_by_default() -> None:
    plain = rule("pay", "package:a", "package:b")
    assert plain.remediation is SodRemediation.NOTIFY
    assert plain.owners == []
    policy = plain.exception_policy
    assert policy.duration == timedelta(days=90)
    assert [s.approvers[0].kind.value for s in policy.stages] == ["owner"]


def test_an_exception_rule_takes_its_stages_and_duration() -> None:
    strict = rule(
        "pay",
        "package:a",
        "package:b",
        remediation="exception",
        owners=["O1"],
        exception={"duration": "30d", "stages": [{"approvers": [{"people": ["CISO"]}]}]},
    )
    assert strict.exception_policy.duration == timedelta(days=30)
    assert strict.exception_policy.stages[0].approvers[0].people == ["CISO"]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"remediation": "delete"}, "remediation"),
        ({"exception": {"duration": "30d"}}, "only to remediation: exception"),
        ({"remediation": "exception", "exception": {"stages": []}}, "at least 1"),
        ({"remediation": "exception", "exception": {"duration": "30s"}}, "duration"),
        ({"owners": ["O1", "O1"]}, "owner is listed twice"),
        ({"owners": ["not an id"]}, "owners"),
    ],
)
def test_remediation_settings_are_validated(settings: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        rule("pay", "package:a", "package:b", **settings)
