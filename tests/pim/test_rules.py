"""Activation rules: each refusal with its reason, and the role settings' own validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.pim.roles import PimSettings, PrivilegedRole
from domain.pim.rules import (
    ActivationAsk,
    Eligibility,
    Refusal,
    activation_refusal,
    activation_window,
)

NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def role(**fields: Any) -> PrivilegedRole:
    base: dict[str, Any] = {
        "kind": "directory_role",
        "display_name": "Global Administrator",
        "template_id": GLOBAL_ADMIN,
        "max_activation": "4h",
        "default_activation": "1h",
        "ticket": {"required": True, "pattern": "INC-[0-9]{4,}"},
    }
    return PrivilegedRole.model_validate({**base, **fields})


def ask(**fields: Any) -> ActivationAsk:
    base: dict[str, Any] = {
        "employee_id": "E1",
        "role_id": "global-admin",
        "justification": "incident 42",
        "ticket": "INC-0042",
        "mfa": True,
    }
    return ActivationAsk.model_validate({**base, **fields})


ELIGIBLE = Eligibility(
    employee_id="E1", role_id="global-admin", starts_at=NOW - timedelta(days=1), ends_at=None
)


def refusal(**fields: Any) -> Refusal | None:
    found = activation_refusal(role(), ask(**fields), ELIGIBLE, NOW)
    return found.code if found else None


def test_an_activation_within_the_settings_goes_ahead_for_the_default_duration() -> None:
    assert activation_refusal(role(), ask(), ELIGIBLE, NOW) is None
    assert activation_window(role(), ask(), NOW) == (NOW, NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"mfa": False}, Refusal.MFA_REQUIRED),
        ({"justification": "  "}, Refusal.JUSTIFICATION_REQUIRED),
        ({"ticket": None}, Refusal.TICKET_REQUIRED),
        ({"ticket": "CHG-1"}, Refusal.TICKET_FORMAT),
        ({"duration": timedelta(hours=5)}, Refusal.TOO_LONG),
        ({"start": NOW - timedelta(hours=1)}, Refusal.BAD_START),
        ({"start": NOW + timedelta(days=31)}, Refusal.NOT_ELIGIBLE),
    ],
)
def test_each_refusal_names_its_reason(fields: dict[str, Any], expected: Refusal) -> None:
    ending = Eligibility(
        employee_id="E1",
        role_id="global-admin",
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=30),
    )
    found = activation_refusal(role(), ask(**fields), ending, NOW)
    assert found is not None and found.code is expected, found
    assert found.reason


def test_without_eligibility_nothing_activates_and_it_may_not_outlast_it() -> None:
    assert activation_refusal(role(), ask(), None, NOW).code is Refusal.NOT_ELIGIBLE  # type: ignore[union-attr]
    short = Eligibility(
        employee_id="E1",
        role_id="global-admin",
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(minutes=30),
    )
    found = activation_refusal(role(), ask(), short, NOW)
    assert found is not None and "outlast the eligibility" in found.reason


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"default_activation": "5h"}, "longer than max_activation"),
        ({"max_activation": "8d"}, "must end by itself"),
        ({"ticket": {"required": True, "pattern": "INC-[0-9"}}, "does not compile"),
        ({"ticket": {"pattern": "INC-.*"}}, "needs required: true"),
        ({"template_id": None}, "names its template_id"),
        ({"eligibility_expiry": {"kind": "never"}}, "allow_permanent_eligible"),
        ({"approval": {"stages": []}}, "at least 1"),
    ],
)
def test_role_settings_are_validated_with_the_reason(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        role(**fields)


def test_two_roles_may_not_name_the_same_target() -> None:
    with pytest.raises(ValidationError, match="both name directory role"):
        PimSettings.model_validate({"roles": {"a": role().model_dump(), "b": role().model_dump()}})


def test_the_policy_checks_what_privileged_roles_name() -> None:
    from domain.policy.model import Policy

    base = {"tenant": {"domain": "example.com", "mail_sender": "t@example.com"}, "groups": ["Ops"]}
    group_role = {"kind": "privileged_group", "display_name": "Ops admins", "group": "Admins"}
    with pytest.raises(ValidationError, match="group 'Admins' is not declared under groups"):
        Policy.model_validate({**base, "pim": {"roles": {"ops": group_role}}})
    ok = Policy.model_validate(
        {
            **base,
            "pim": {"roles": {"ops": {**group_role, "group": "Ops"}, "ga": role().model_dump()}},
        }
    )
    assert set(ok.pim.roles) == {"ops", "ga"}
