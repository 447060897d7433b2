"""The PIM alert rules (domain/pim/alert_rules.py) and their settings (pim.alerts): each kind of
alert from a typed inventory, its threshold, and nothing raised when all is well."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.pim.alert_rules import (
    PRIVILEGED_BUILT_IN,
    ActivationFact,
    AlertInventory,
    EligibilityFact,
    RoleHolding,
    find_alerts,
    scanned_roles,
)
from domain.pim.alerts import AlertKind
from domain.pim.roles import PimAlertSettings, PimSettings

AT = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"


def settings(**alerts: Any) -> PimSettings:
    return PimSettings.model_validate(
        {
            "roles": {
                "ga": {
                    "kind": "directory_role",
                    "display_name": "Global Administrator",
                    "template_id": GLOBAL_ADMIN,
                },
                "exchange": {
                    "kind": "directory_role",
                    "display_name": "Exchange Administrator",
                    "template_id": EXCHANGE_ADMIN,
                    "allow_permanent_active": True,
                },
            },
            "alerts": alerts,
        }
    )


def holding(
    employee: str | None,
    role: str | None = "ga",
    template: str = GLOBAL_ADMIN,
    *,
    end: datetime | None = AT + timedelta(hours=1),
    principal: str | None = None,
    scope: str = "/",
) -> RoleHolding:
    return RoleHolding(
        principal_id=principal or f"oid-{employee}",
        employee_id=employee,
        template_id=template,
        role_id=role,
        start=AT - timedelta(minutes=5),
        end=end,
        scope=scope,
    )


def held(employee: str, role: str = "ga") -> ActivationFact:
    return ActivationFact(
        employee_id=employee, role_id=role, granted_at=AT - timedelta(minutes=5), held=True
    )


def ids(inventory: AlertInventory, pim: PimSettings | None = None) -> list[str]:
    return [f.alert_id for f in find_alerts(inventory, pim or settings(), AT)]


# ---- nothing wrong -------------------------------------------------------------------------------


def test_activations_tenure_holds_raise_nothing() -> None:
    inventory = AlertInventory(
        holdings=[holding("E1"), holding("E2")],
        activations=[held("E1"), held("E2")],
        eligibilities=[EligibilityFact(employee_id="E1", role_id="ga", since=AT - timedelta(90))],
    )
    assert ids(inventory) == []


def test_an_empty_inventory_raises_nothing() -> None:
    assert ids(AlertInventory()) == []


# ---- outside Tenure ------------------------------------------------------------------------------


def test_a_role_held_without_a_held_activation_is_outside_tenure() -> None:
    ended = ActivationFact(employee_id="E1", role_id="ga", granted_at=AT - timedelta(hours=3))
    findings = find_alerts(
        AlertInventory(holdings=[holding("E1")], activations=[ended]), settings(), AT
    )
    assert [(f.kind, f.role_id, f.subject) for f in findings] == [
        (AlertKind.OUTSIDE_TENURE, "ga", "E1")
    ]
    assert "Global Administrator (ga)" in findings[0].text
    assert findings[0].detail["principal_id"] == "oid-E1"


def test_being_granted_counts_as_held_by_tenure() -> None:
    granting = ActivationFact(employee_id="E1", role_id="ga", held=True)
    assert ids(AlertInventory(holdings=[holding("E1")], activations=[granting])) == []


def test_an_activation_of_another_role_or_person_does_not_cover_the_holding() -> None:
    inventory = AlertInventory(
        holdings=[holding("E1")], activations=[held("E2"), held("E1", role="exchange")]
    )
    assert ids(inventory) == ["outside_tenure:ga:E1"]


def test_a_principal_without_an_employee_id_is_named_by_principal_id() -> None:
    sp = holding(None, principal="sp-object-id")
    findings = find_alerts(AlertInventory(holdings=[sp]), settings(), AT)
    assert [f.alert_id for f in findings] == ["outside_tenure:ga:sp-object-id"]
    assert "principal sp-object-id" in findings[0].text


def test_a_scoped_assignment_is_outside_tenure_even_with_an_activation() -> None:
    scoped = holding("E1", scope="/administrativeUnits/au-1")
    assert ids(AlertInventory(holdings=[scoped], activations=[held("E1")])) == [
        "outside_tenure:ga:E1"
    ]


def test_a_built_in_privileged_role_the_policy_does_not_name_is_always_outside() -> None:
    findings = find_alerts(
        AlertInventory(holdings=[holding("E1", role=None, template=USER_ADMIN)]), settings(), AT
    )
    assert [f.alert_id for f in findings] == [f"outside_tenure:{USER_ADMIN}:E1"]
    assert "User Administrator" in findings[0].text


def test_two_scopes_of_one_person_and_role_are_one_alert() -> None:
    inventory = AlertInventory(
        holdings=[holding("E1", scope="/"), holding("E1", scope="/administrativeUnits/au-1")]
    )
    findings = find_alerts(inventory, settings(), AT)
    assert [f.alert_id for f in findings] == ["outside_tenure:ga:E1"]
    assert findings[0].detail["scopes"] == ["/", "/administrativeUnits/au-1"]


# ---- permanent active ----------------------------------------------------------------------------


def test_a_permanent_assignment_is_an_alert_where_the_role_forbids_it() -> None:
    inventory = AlertInventory(holdings=[holding("E1", end=None)], activations=[held("E1")])
    assert ids(inventory) == ["permanent_active:ga:E1"]


def test_a_role_that_allows_permanent_active_raises_no_permanent_alert() -> None:
    permanent = holding("E1", role="exchange", template=EXCHANGE_ADMIN, end=None)
    assert ids(AlertInventory(holdings=[permanent], activations=[held("E1", "exchange")])) == []


def test_a_role_the_policy_does_not_name_allows_no_permanent_assignment() -> None:
    permanent = holding(None, role=None, template=SECURITY_ADMIN, end=None, principal="oid-x")
    assert ids(AlertInventory(holdings=[permanent])) == [
        f"outside_tenure:{SECURITY_ADMIN}:oid-x",
        f"permanent_active:{SECURITY_ADMIN}:oid-x",
    ]


def test_an_assignment_with_an_end_is_not_permanent() -> None:
    assert ids(AlertInventory(holdings=[holding("E1")], activations=[held("E1")])) == []


# ---- too many holders ----------------------------------------------------------------------------


def test_more_holders_than_the_limit_is_one_role_wide_alert() -> None:
    people = [f"E{i}" for i in range(1, 7)]
    inventory = AlertInventory(
        holdings=[holding(p) for p in people], activations=[held(p) for p in people]
    )
    findings = find_alerts(inventory, settings(), AT)  # the default: 5 for Global Administrator
    assert [(f.kind, f.role_id, f.subject) for f in findings] == [
        (AlertKind.TOO_MANY_HOLDERS, "ga", "")
    ]
    assert findings[0].detail["holders"] == 6 and findings[0].detail["limit"] == 5


def test_holders_at_the_limit_raise_nothing() -> None:
    people = [f"E{i}" for i in range(1, 6)]
    inventory = AlertInventory(
        holdings=[holding(p) for p in people], activations=[held(p) for p in people]
    )
    assert ids(inventory) == []


def test_a_limit_by_role_id_and_holders_counted_once_each() -> None:
    pim = settings(max_holders={"ga": 1})
    inventory = AlertInventory(
        holdings=[holding("E1"), holding("E1", scope="/administrativeUnits/au-1"), holding("E2")],
        activations=[held("E1"), held("E2")],
    )
    findings = [f for f in find_alerts(inventory, pim, AT) if f.kind is AlertKind.TOO_MANY_HOLDERS]
    assert [f.alert_id for f in findings] == ["too_many_holders:ga:"]
    assert findings[0].detail["holders_listed"] == ["E1", "E2"]


def test_a_limit_by_template_id_of_a_role_the_policy_does_not_name() -> None:
    pim = settings(max_holders={USER_ADMIN.upper(): 0})
    findings = find_alerts(
        AlertInventory(holdings=[holding("E1", role=None, template=USER_ADMIN)]), pim, AT
    )
    assert f"too_many_holders:{USER_ADMIN}:" in [f.alert_id for f in findings]


# ---- frequent activation -------------------------------------------------------------------------


def activations(employee: str, count: int, spacing: timedelta) -> list[ActivationFact]:
    return [
        ActivationFact(employee_id=employee, role_id="ga", granted_at=AT - i * spacing)
        for i in range(count)
    ]


def test_more_activations_than_allowed_in_the_window_is_an_alert() -> None:
    pim = settings(max_activations=3, activation_window="7d")
    findings = find_alerts(
        AlertInventory(activations=activations("E1", 4, timedelta(days=1))), pim, AT
    )
    assert [(f.kind, f.subject) for f in findings] == [(AlertKind.FREQUENT_ACTIVATION, "E1")]
    assert findings[0].detail["activations"] == 4
    assert "4 times in 7d" in findings[0].text


def test_activations_at_the_limit_or_outside_the_window_raise_nothing() -> None:
    pim = settings(max_activations=3, activation_window="7d")
    at_limit = activations("E1", 3, timedelta(days=1))
    spread = activations("E2", 6, timedelta(days=3))  # three in the window, three before
    assert ids(AlertInventory(activations=[*at_limit, *spread]), pim) == []


def test_activations_never_granted_are_not_counted() -> None:
    pim = settings(max_activations=1)
    denied = [ActivationFact(employee_id="E1", role_id="ga") for _ in range(5)]
    assert ids(AlertInventory(activations=denied), pim) == []


def test_activations_are_counted_per_role() -> None:
    pim = settings(max_activations=2)
    mixed = [
        *activations("E1", 2, timedelta(hours=5)),
        ActivationFact(employee_id="E1", role_id="exchange", granted_at=AT - timedelta(hours=1)),
    ]
    assert ids(AlertInventory(activations=mixed), pim) == []


# ---- never activated -----------------------------------------------------------------------------


def eligible(employee: str, days: float, role: str = "ga") -> EligibilityFact:
    return EligibilityFact(employee_id=employee, role_id=role, since=AT - timedelta(days=days))


def test_eligible_for_n_days_without_activating_is_an_alert() -> None:
    findings = find_alerts(AlertInventory(eligibilities=[eligible("E1", 31)]), settings(), AT)
    assert [(f.kind, f.role_id, f.subject) for f in findings] == [
        (AlertKind.NEVER_ACTIVATED, "ga", "E1")
    ]
    assert "30 days" in findings[0].text


def test_eligible_for_less_than_n_days_raises_nothing() -> None:
    assert ids(AlertInventory(eligibilities=[eligible("E1", 29)])) == []


def test_an_activation_within_the_days_or_a_role_held_now_counts() -> None:
    recent = ActivationFact(employee_id="E1", role_id="ga", granted_at=AT - timedelta(days=10))
    inventory = AlertInventory(
        eligibilities=[eligible("E1", 90), eligible("E2", 90)],
        activations=[recent, held("E2")],
        holdings=[holding("E2")],
    )
    assert ids(inventory) == []


def test_an_activation_before_the_days_does_not_count() -> None:
    old = ActivationFact(employee_id="E1", role_id="ga", granted_at=AT - timedelta(days=45))
    pim = settings(never_activated_days=30)
    assert ids(AlertInventory(eligibilities=[eligible("E1", 90)], activations=[old]), pim) == [
        "never_activated:ga:E1"
    ]


def test_the_earliest_eligibility_of_a_person_and_role_counts() -> None:
    # Graph moves its start when an eligibility is extended; the record keeps the first grant.
    inventory = AlertInventory(eligibilities=[eligible("E1", 2), eligible("E1", 40)])
    assert ids(inventory) == ["never_activated:ga:E1"]


# ---- roles and settings --------------------------------------------------------------------------


def test_scanned_roles_are_the_policys_then_the_privileged_built_ins() -> None:
    roles = scanned_roles(settings())
    by_template = {r.template_id: r for r in roles}
    assert by_template[GLOBAL_ADMIN].role_id == "ga"
    assert by_template[EXCHANGE_ADMIN].role_id == "exchange"
    assert by_template[USER_ADMIN].role_id is None
    assert set(PRIVILEGED_BUILT_IN) <= set(by_template)
    assert len(roles) == len(by_template)


def test_alert_settings_defaults() -> None:
    alerts = PimAlertSettings()
    assert alerts.enabled and alerts.every_seconds == 3600
    assert alerts.max_holders == {GLOBAL_ADMIN: 5}
    assert (alerts.max_activations, alerts.activation_window) == (10, timedelta(days=7))
    assert alerts.never_activated_days == 30 and alerts.notify == []


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"every": "30s"}, "at least 1m"),
        ({"every": "hourly"}, "expected e.g. 30m"),
        ({"max_holders": {"Not A Role": 1}}, "expected a role id or a template id"),
        ({"max_holders": {"ga": -1}}, "below 0"),
        ({"max_holders": {"nosuch": 1}}, "'nosuch' is not a role under pim.roles"),
        ({"max_holders": {"ga": 2, GLOBAL_ADMIN: 3}}, "both name directory role"),
        ({"max_activations": 0}, "greater than or equal to 1"),
        ({"notify": ["not an id"]}, "String should match pattern"),
    ],
)
def test_alert_settings_are_checked_at_load(alerts: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**alerts)


def group_settings(**alerts: Any) -> PimSettings:
    return PimSettings.model_validate(
        {
            "roles": {
                "ops": {
                    "kind": "privileged_group",
                    "display_name": "Ops",
                    "group": "Ops Admins",
                    "access": "owner",
                }
            },
            "alerts": alerts,
        }
    )


def test_a_privileged_group_is_scanned_by_its_group_and_access() -> None:
    roles = {r.role_id: r for r in scanned_roles(group_settings())}
    ops = roles["ops"]
    assert (ops.template_id, ops.group, ops.access) == (
        "group:ops admins:owner",
        "Ops Admins",
        "owner",
    )


def test_a_holder_limit_on_a_privileged_group_counts_its_holders() -> None:
    pim = group_settings(max_holders={"ops": 1})
    key = "group:ops admins:owner"
    inventory = AlertInventory(
        holdings=[holding("E1", "ops", key), holding("E2", "ops", key)],
        activations=[held("E1", "ops"), held("E2", "ops")],
    )
    assert ids(inventory, pim) == ["too_many_holders:ops:"]
