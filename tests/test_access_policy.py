"""The policy file's `access` section: what loads, and what fails at load with its path and reason."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.access.policy import ExpiryKind
from domain.approval.stages import ApproverKind, Require, TimeoutOutcome
from domain.policy.file import PolicyFileError, load_policy
from domain.policy.model import Policy

PKG = "access.packages.x"
STAGE = f"{PKG}.policy.stages[0]"


def _base() -> dict[str, Any]:
    return {
        "tenant": {"domain": "example.com", "mail_sender": "hr@example.com"},
        "groups": ["Payables", "Receivables", "Approvers"],
        "apps": {"ledger": {"display_name": "Ledger"}},
        "access": {
            "catalogs": {"fin": {"display_name": "Finance", "owners": ["E9"]}},
            "packages": {
                "x": {
                    "display_name": "Payables",
                    "catalog": "fin",
                    "resources": [{"group": "Payables"}],
                    "policy": {
                        "who_may_request": {"everyone": True},
                        "stages": [{"approvers": ["manager"]}],
                    },
                },
                "y": {
                    "display_name": "Receivables",
                    "catalog": "fin",
                    "resources": [{"group": "Receivables"}],
                    "policy": {"who_may_request": {"everyone": True}},
                },
            },
        },
    }


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _with(**changes: Any) -> dict[str, Any]:
    """The base policy changed: `stage=` (package x's only stage), `policy__<field>=`,
    `package__<field>=` (package x), or any other name as a field of `access`."""
    raw = copy.deepcopy(_base())
    package = raw["access"]["packages"]["x"]
    for key, value in changes.items():
        if key == "stage":
            package["policy"]["stages"] = [value]
        elif key.startswith("policy__"):
            package["policy"][key.removeprefix("policy__")] = value
        elif key.startswith("package__"):
            package[key.removeprefix("package__")] = value
        else:
            raw["access"][key] = value
    return raw


def _load(tmp_path: Path, raw: dict[str, Any]) -> Policy:
    return load_policy(_write(tmp_path, raw))


def _refusal(tmp_path: Path, raw: dict[str, Any]) -> str:
    path = _write(tmp_path, raw)
    with pytest.raises(PolicyFileError) as err:
        load_policy(path)
    message = str(err.value)
    assert str(path) in message
    return message


def _stage(**fields: Any) -> dict[str, Any]:
    return {"approvers": ["manager"], **fields}


# ---- what loads ---------------------------------------------------------------------------------


def test_demo_policy_has_its_four_packages_and_two_sod_rules(demo_policy: Policy) -> None:
    access = demo_policy.access
    assert sorted(access.packages) == [
        "accounts-payable",
        "accounts-receivable",
        "finance-controller",
        "production-db-read",
    ]
    assert [rule.name for rule in access.sod] == [
        "payables-vs-receivables",
        "controller-vs-payables",
    ]
    assert [r.key for r in access.sod[1].incompatible] == [
        "package:finance-controller",
        "group:Accounts Payable",
    ]


def test_demo_data_owner_stage_is_a_two_of_three_quorum_with_owner_fallback(
    demo_policy: Policy,
) -> None:
    package = demo_policy.access.packages["production-db-read"]
    manager, owners = package.policy.stages
    assert manager.reminders == [timedelta(days=1), timedelta(hours=4)]
    assert owners.require == 2 and owners.approvers[0].people == ["E0003", "E0010", "E0013"]
    assert owners.on_timeout is TimeoutOutcome.ESCALATE
    assert owners.fallback[0].kind is ApproverKind.OWNER
    assert owners.fallback_deadline == timedelta(days=1)
    assert package.policy.expiry.kind is ExpiryKind.REQUESTER_CHOOSES
    assert package.policy.expiry.max == timedelta(days=30)
    assert package.policy.who_may_request.managers_for_reports


def test_stage_defaults_first_decision_a_week_and_one_reminder(tmp_path: Path) -> None:
    stage = _load(tmp_path, _with()).access.packages["x"].policy.stages[0]
    assert stage.require is Require.FIRST
    assert stage.deadline == timedelta(days=7)
    assert stage.reminders == [timedelta(days=1)]
    assert stage.on_timeout is TimeoutOutcome.DENY


def test_a_deadline_of_a_day_or_less_drops_the_default_reminder(tmp_path: Path) -> None:
    for deadline in ("1d", "12h"):
        stage = _load(tmp_path, _with(stage=_stage(deadline=deadline)))
        assert stage.access.packages["x"].policy.stages[0].reminders == []


def test_require_written_as_text_is_a_quorum(tmp_path: Path) -> None:
    stage = _stage(approvers=[{"people": ["E1", "E2", "E3"]}], require="2")
    assert _load(tmp_path, _with(stage=stage)).access.packages["x"].policy.stages[0].require == 2


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("3d", timedelta(days=3)),
        ("PT4H", timedelta(hours=4)),
        ("36h", timedelta(hours=36)),
        ("1d12h", timedelta(hours=36)),
        ("P14D", timedelta(days=14)),
        (2, timedelta(days=2)),
        (1.5, timedelta(hours=36)),
    ],
)
def test_duration_formats(tmp_path: Path, written: object, expected: timedelta) -> None:
    stage = _stage(deadline=written, reminders=["1m"])
    loaded = _load(tmp_path, _with(stage=stage)).access.packages["x"].policy.stages[0]
    assert loaded.deadline == expected


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("0d", "greater than or equal to"),
        (0, "greater than or equal to"),
        ("4000d", "less than or equal to"),
        ("soon", "valid timedelta"),
    ],
)
def test_duration_out_of_range_or_unreadable_is_refused(
    tmp_path: Path, written: object, reason: str
) -> None:
    message = _refusal(tmp_path, _with(stage=_stage(deadline=written, reminders=[])))
    assert f"{STAGE}.deadline: " in message and reason in message


def test_expiry_date_without_time_is_midnight_utc(tmp_path: Path) -> None:
    raw = _with(policy__expiry={"kind": "date", "date": "2027-01-31"})
    expiry = _load(tmp_path, raw).access.packages["x"].policy.expiry
    assert expiry.date == datetime(2027, 1, 31, tzinfo=UTC)


def test_sod_entries_in_mapping_form(tmp_path: Path) -> None:
    rule = {"name": "r", "incompatible": [{"package": "x"}, {"group": "Receivables"}]}
    sod = _load(tmp_path, _with(sod=[rule])).access.sod
    assert [r.key for r in sod[0].incompatible] == ["package:x", "group:Receivables"]


# ---- what is refused at load, with the path and the reason --------------------------------------

REFUSED = [
    pytest.param(
        {"stage": {"approvers": []}},
        rf"{STAGE}.approvers: List should have at least 1 item",
        id="stage-without-approvers",
    ),
    pytest.param(
        {"stage": {"deadline": "3d"}},
        rf"{STAGE}.approvers: Field required",
        id="stage-approvers-missing",
    ),
    pytest.param(
        {"stage": _stage(approvers=[{"people": []}])},
        rf"{STAGE}.approvers[0]: Value error, people: name at least one employee id",
        id="people-empty",
    ),
    pytest.param(
        {"stage": _stage(approvers=[{"people": ["E1", "E2"]}], require=3)},
        rf"{STAGE}: Value error, require 3 is more approvers than this stage can ever have (2)",
        id="quorum-larger-than-approvers",
    ),
    pytest.param(
        {
            "stage": _stage(
                approvers=[{"people": ["E1", "E2"]}],
                require=3,
                escalations=[{"after": "2d", "approvers": [{"people": ["E2", "E1"]}]}],
            )
        },
        rf"{STAGE}: Value error, require 3 is more approvers than this stage can ever have (2)",
        id="quorum-counting-a-person-twice",
    ),
    pytest.param(
        {"stage": _stage(approvers=["manager", "manager"], require=2)},
        rf"{STAGE}: Value error, require 2 is more approvers than this stage can ever have (1)",
        id="quorum-counting-the-manager-twice",
    ),
    pytest.param(
        {"sod": [{"name": "r", "incompatible": ["package:x", "package:nope"]}]},
        r"access: Value error, sod[0] (r): unknown package 'nope'",
        id="sod-unknown-package",
    ),
    pytest.param(
        {"sod": [{"name": "r", "incompatible": ["package:x"]}]},
        r"access.sod[0].incompatible: List should have at least 2 items",
        id="sod-one-entry",
    ),
    pytest.param(
        {"sod": [{"name": "r", "incompatible": ["package:x", "package:x"]}]},
        r"access.sod[0]: Value error, sod rule 'r': an entry is listed twice",
        id="sod-entry-twice",
    ),
    pytest.param(
        {"sod": [{"name": "r", "incompatible": ["package:x", "Receivables"]}]},
        r"access.sod[0].incompatible[1]: Value error, 'Receivables': write package:<id>, "
        "group:<name>, pim:<role> or app:<app>[:<role>]",
        id="sod-entry-without-kind",
    ),
    pytest.param(
        {"sod": [{"name": "r", "incompatible": ["package:x", "pim:nobody"]}]},
        "access.sod[0] (r): pim role 'nobody' is not declared under pim.roles",
        id="sod-unknown-pim-role",
    ),
    pytest.param(
        {"sod": [{"name": "r", "incompatible": ["package:x", "group:Nope"]}]},
        r"access.sod[0] (r): group 'Nope' is not declared under groups",
        id="sod-unknown-group",
    ),
    pytest.param(
        {"package__catalog": "hr"},
        r"access: Value error, packages.x: catalog 'hr' is not declared under catalogs",
        id="unknown-catalog",
    ),
    pytest.param(
        {"package__resources": [{"group": "Nope"}]},
        rf"{PKG}: group 'Nope' is not declared under groups",
        id="resource-group-undeclared",
    ),
    pytest.param(
        {"package__resources": [{"app": "erp", "role": "clerk"}]},
        rf"{PKG}: app 'erp' is not declared under apps",
        id="resource-app-undeclared",
    ),
    pytest.param(
        {"package__resources": [{"app": "ledger"}]},
        rf"{PKG}.resources[0]: Value error, resource app 'ledger': name the role it grants",
        id="app-resource-without-role",
    ),
    pytest.param(
        {"package__resources": [{"group": "Payables", "role": "x"}]},
        rf"{PKG}.resources[0]: Value error, a group resource takes no role",
        id="group-resource-with-role",
    ),
    pytest.param(
        {"package__resources": []},
        rf"{PKG}.resources: List should have at least 1 item",
        id="package-grants-nothing",
    ),
    pytest.param(
        {"stage": _stage(approvers=[{"group": "Nope"}])},
        rf"{STAGE}: approver group 'Nope' is not declared under groups",
        id="approver-group-undeclared",
    ),
    pytest.param(
        {
            "stage": _stage(
                escalations=[{"after": "1d", "approvers": [{"group": "Nope"}]}],
            )
        },
        rf"{STAGE}: approver group 'Nope' is not declared under groups",
        id="escalation-group-undeclared",
    ),
    pytest.param(
        {"stage": _stage(deadline="3d", reminders=["3d"])},
        rf"{STAGE}: Value error, reminder 3d before the deadline is not inside the stage's "
        "deadline of 3d",
        id="reminder-not-inside-deadline",
    ),
    pytest.param(
        {"stage": _stage(deadline="1d", reminders=["1d"])},
        rf"{STAGE}: Value error, reminder 1d before the deadline",
        id="explicit-reminder-on-one-day-deadline",
    ),
    pytest.param(
        {
            "stage": _stage(
                deadline="5d",
                escalations=[
                    {"after": "3d", "approvers": ["second_level_manager"]},
                    {"after": "2d", "approvers": [{"people": ["E5"]}]},
                ],
            )
        },
        rf"{STAGE}: Value error, escalations[1]: each level must come after the one before",
        id="escalations-out-of-order",
    ),
    pytest.param(
        {
            "stage": _stage(
                deadline="3d",
                escalations=[{"after": "3d", "approvers": ["second_level_manager"]}],
            )
        },
        rf"{STAGE}: Value error, escalations[0]: after 3d is not before the deadline (3d)",
        id="escalation-at-the-deadline",
    ),
    pytest.param(
        {"stage": _stage(on_timeout="escalate")},
        rf"{STAGE}: Value error, on_timeout escalate: name the fallback approvers",
        id="escalate-without-fallback",
    ),
    pytest.param(
        {"stage": _stage(fallback=[{"people": ["E5"]}])},
        rf"{STAGE}: Value error, fallback approvers are used only with on_timeout: escalate",
        id="fallback-without-escalate",
    ),
    pytest.param(
        {"policy__expiry": {"kind": "duration"}},
        rf"{PKG}.policy.expiry: Value error, expiry duration: give duration",
        id="expiry-duration-missing",
    ),
    pytest.param(
        {"policy__expiry": {"kind": "never", "duration": "30d"}},
        rf"{PKG}.policy.expiry: Value error, expiry never: takes no duration",
        id="expiry-never-with-duration",
    ),
    pytest.param(
        {"policy__expiry": {"kind": "requester_chooses"}},
        rf"{PKG}.policy.expiry: Value error, expiry requester_chooses: give max",
        id="expiry-requester-chooses-without-max",
    ),
    pytest.param(
        {"policy__expiry": {"kind": "date", "max": "30d"}},
        rf"{PKG}.policy.expiry: Value error, expiry date: give date",
        id="expiry-date-without-date",
    ),
    pytest.param(
        {
            "policy__questions": [
                {"id": "env", "text": "Region", "kind": "choice", "choices": ["eu"]}
            ]
        },
        rf"{PKG}.policy.questions[0]: Value error, question 'env': a choice needs at least two "
        "choices",
        id="choice-with-one-choice",
    ),
    pytest.param(
        {"policy__questions": [{"id": "t", "text": "Ticket", "choices": ["a", "b"]}]},
        rf"{PKG}.policy.questions[0]: Value error, question 't': a text question takes no choices",
        id="text-question-with-choices",
    ),
    pytest.param(
        {
            "policy__questions": [
                {"id": "t", "text": "Ticket"},
                {"id": "t", "text": "Ticket again"},
            ]
        },
        rf"{PKG}.policy: Value error, questions: two questions share an id",
        id="questions-sharing-an-id",
    ),
    pytest.param(
        {"policy__who_may_request": {}},
        rf"{PKG}.policy.who_may_request: Value error, nobody may request",
        id="nobody-may-request",
    ),
    pytest.param(
        {"policy__who_may_request": {"when": [{}]}},
        rf"{PKG}.policy.who_may_request.when: Value error, an empty condition set would match "
        "everyone",
        id="empty-condition-set",
    ),
    pytest.param(
        {"policy__who_may_request": {"when": {"shoe_size": 9}}},
        rf"{PKG}.policy.who_may_request.when: Value error, unknown condition field 'shoe_size'",
        id="unknown-condition-field",
    ),
    pytest.param(
        {"stage": _stage(approvers=["owner"]), "catalogs": {"fin": {"display_name": "Fin"}}},
        r"access: Value error, packages.x: an approver stage names the owner, but neither the "
        "package nor its catalog has owners",
        id="owner-without-owners",
    ),
    pytest.param(
        {"stage": _stage(approvers=["manager"], people=["E1"])},
        rf"{STAGE}.people: Extra inputs are not permitted",
        id="people-beside-a-stage",
    ),
    pytest.param(
        {"stage": _stage(approvers=[{"kind": "manager", "people": ["E1"]}])},
        rf"{STAGE}.approvers[0]: Value error, manager: takes no people",
        id="manager-with-people",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), REFUSED)
def test_invalid_access_policy_fails_at_load_with_path_and_reason(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    message = _refusal(tmp_path, _with(**changes))
    assert expected in message, message


def test_owner_approver_loads_when_the_package_has_owners(tmp_path: Path) -> None:
    raw = _with(
        stage=_stage(approvers=["owner"]),
        catalogs={"fin": {"display_name": "Fin"}},
        package__owners=["E7"],
    )
    assert _load(tmp_path, raw).access.packages["x"].owners == ["E7"]


def test_quorum_with_a_group_is_checked_only_at_run_time(tmp_path: Path) -> None:
    stage = _stage(approvers=[{"group": "Approvers"}], require=5)
    assert _load(tmp_path, _with(stage=stage)).access.packages["x"].policy.stages[0].require == 5


def test_quorum_counts_escalation_and_fallback_approvers(tmp_path: Path) -> None:
    stage = _stage(
        approvers=[{"people": ["E1"]}],
        require=3,
        escalations=[{"after": "2d", "approvers": [{"people": ["E2"]}]}],
        on_timeout="escalate",
        fallback=[{"people": ["E3"]}],
    )
    assert _load(tmp_path, _with(stage=stage)).access.packages["x"].policy.stages[0].require == 3


def test_every_error_line_names_the_file(tmp_path: Path) -> None:
    message = _refusal(tmp_path, _with(stage={"approvers": [], "deadline": "0d"}))
    lines = message.splitlines()[1:]
    assert len(lines) == 2
    assert all(re.match(rf"\s+{re.escape(str(tmp_path))}", line) for line in lines)
