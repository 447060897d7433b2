"""Separation of duties: a request conflicts with what the person holds, whichever came first."""

from __future__ import annotations

from domain.access.policy import PackageResource, SodRule
from domain.access.sod import find_conflict, package_keys, relevant_rules
from domain.policy.model import Policy

PAY_VS_RECEIVE = SodRule.model_validate(
    {
        "name": "pay-vs-receive",
        "description": "No one both pays and books receivables.",
        "incompatible": ["package:payables", "package:receivables"],
    }
)
CONTROLLER_VS_PAYABLES = SodRule.model_validate(
    {"name": "controller-vs-payables", "incompatible": ["package:controller", "group:AP"]}
)
RULES = [PAY_VS_RECEIVE, CONTROLLER_VS_PAYABLES]


def _keys(package_id: str, *groups: str) -> list[str]:
    return package_keys(package_id, [PackageResource(group=g) for g in groups])


def test_a_package_means_itself_and_each_group_it_grants_but_not_app_roles() -> None:
    resources = [PackageResource(group="AP"), PackageResource(app="ledger", role="ap-clerk")]
    assert package_keys("payables", resources) == ["package:payables", "group:AP"]


def test_asking_for_one_side_while_holding_the_other_conflicts() -> None:
    conflict = find_conflict(RULES, _keys("receivables"), {"package:payables"})
    assert conflict is not None
    assert (conflict.rule, conflict.requested, conflict.held) == (
        "pay-vs-receive",
        "package:receivables",
        "package:payables",
    )
    assert conflict.description == "No one both pays and books receivables."


def test_the_rule_works_in_both_directions() -> None:
    conflict = find_conflict(RULES, _keys("payables"), {"package:receivables"})
    assert conflict is not None and conflict.held == "package:receivables"


def test_a_group_rule_catches_a_package_granting_that_group() -> None:
    conflict = find_conflict(RULES, _keys("payables", "AP"), {"package:controller"})
    assert conflict is not None
    assert (conflict.rule, conflict.requested) == ("controller-vs-payables", "group:AP")


def test_a_group_held_any_way_conflicts_with_the_package_on_the_other_side() -> None:
    conflict = find_conflict(RULES, _keys("controller"), {"group:AP", "group:All Staff"})
    assert conflict is not None and (conflict.requested, conflict.held) == (
        "package:controller",
        "group:AP",
    )


def test_a_person_holding_nothing_has_no_conflict() -> None:
    assert find_conflict(RULES, _keys("payables", "AP"), set()) is None


def test_asking_again_for_a_group_already_held_is_no_conflict() -> None:
    rule = SodRule.model_validate({"name": "r", "incompatible": ["group:AP", "group:AR"]})
    assert find_conflict([rule], _keys("payables", "AP"), {"group:AP"}) is None


def test_unrelated_holdings_do_not_conflict() -> None:
    assert find_conflict(RULES, _keys("receivables"), {"package:controller", "group:AR"}) is None


def test_relevant_rules_are_those_naming_the_package_or_one_of_its_groups() -> None:
    assert relevant_rules(RULES, _keys("payables", "AP")) == RULES
    assert relevant_rules(RULES, _keys("receivables", "AR")) == [PAY_VS_RECEIVE]
    assert relevant_rules(RULES, _keys("other", "AR")) == []


def test_demo_controller_conflicts_with_holding_accounts_payable(demo_policy: Policy) -> None:
    access = demo_policy.access
    package = access.packages["finance-controller"]
    keys = package_keys("finance-controller", package.resources)
    conflict = find_conflict(access.sod, keys, {"group:Accounts Payable"})
    assert conflict is not None and conflict.rule == "controller-vs-payables"
