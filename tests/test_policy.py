"""The policy file: validation at load, and birthright evaluation."""

from pathlib import Path

import pytest

from domain.lifecycle.birthright import birthright_for, joiner_plan, leaver_plan
from domain.lifecycle.events import EmploymentType, WorkerRecord
from domain.policy.file import PolicyFileError, load_policy
from domain.policy.model import Policy


def _worker(**fields: object) -> WorkerRecord:
    return WorkerRecord(employee_id="E1", **fields)


def test_everyone_gets_the_baseline(demo_policy: Policy) -> None:
    groups, apps = birthright_for(demo_policy, _worker(department="Sales", location="Remote"))
    assert [g.group for g in groups] == ["All Staff", "All Employees", "Sales"]
    assert [(a.app, a.roles) for a in apps] == [("collab", [])]


def test_department_match_ignores_case_and_grants_app_roles(demo_policy: Policy) -> None:
    groups, apps = birthright_for(demo_policy, _worker(department="finance"))
    assert "Finance" in [g.group for g in groups]
    assert {a.app: a.roles for a in apps} == {"collab": [], "ledger": ["ledger-user"]}


def test_roles_from_several_rules_merge_and_credit_the_first_rule(demo_policy: Policy) -> None:
    worker = _worker(department="Finance", job_title="Controller", location="London")
    groups, apps = birthright_for(demo_policy, worker)
    ledger = next(a for a in apps if a.app == "ledger")
    assert ledger.roles == ["ledger-approver", "ledger-user"] and ledger.rule == "finance"
    assert {g.group: g.rule for g in groups}["Finance Approvers"] == "finance-managers"
    assert "London Office" in [g.group for g in groups]


def test_custom_attribute_and_employment_type(demo_policy: Policy) -> None:
    worker = _worker(
        department="Engineering",
        employment_type=EmploymentType.CONTRACTOR,
        attributes={"on_call": "yes"},
    )
    names = [g.group for g in birthright_for(demo_policy, worker)[0]]
    assert "Engineering On-Call" in names and "All Contractors" in names
    assert "All Employees" not in names


def test_missing_attribute_does_not_match(demo_policy: Policy) -> None:
    names = [g.group for g in birthright_for(demo_policy, _worker(department="Engineering"))[0]]
    assert "Engineering On-Call" not in names


def test_plan_carries_tenant_and_offsets(demo_policy: Policy) -> None:
    plan = joiner_plan(demo_policy, _worker())
    assert plan.upn_domain == "contoso.example.com"
    assert plan.pre_hire_days == 7
    assert plan.mail_sender == "tenure-notify@contoso.example.com"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


BASE = """
tenant: {domain: example.com, mail_sender: hr@example.com}
groups: [All Staff]
apps: {collab: {display_name: Collab}}
"""


def test_unknown_group_in_rule_names_file_path_and_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "birthright:\n  - {name: x, groups: [Nope]}\n")
    with pytest.raises(PolicyFileError) as err:
        load_policy(path)
    message = str(err.value)
    assert str(path) in message
    assert "'Nope' is not declared under groups" in message


def test_bad_field_reports_the_path_inside_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "joiner: {pre_hire_days: 400}\n")
    with pytest.raises(PolicyFileError, match=r"joiner\.pre_hire_days: Input should be less than"):
        load_policy(path)


def test_unknown_condition_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path, BASE + "birthright:\n  - {name: x, when: {shoe_size: 9}, groups: [All Staff]}\n"
    )
    with pytest.raises(
        PolicyFileError, match=r"birthright\[0\]\.when: .*unknown condition field 'shoe_size'"
    ):
        load_policy(path)


def test_unknown_app_and_duplicate_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + "birthright:\n  - {name: x, apps: [{app: erp}]}\n")
    with pytest.raises(PolicyFileError, match="app 'erp' is not declared under apps"):
        load_policy(path)
    path = _write(
        tmp_path,
        BASE
        + "birthright:\n  - {name: x, groups: [All Staff]}\n  - {name: x, groups: [All Staff]}\n",
    )
    with pytest.raises(PolicyFileError, match="rule names must be unique, repeated: x"):
        load_policy(path)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match=r"line \d+, column \d+\): not valid YAML"):
        load_policy(_write(tmp_path, "tenant: [unclosed\n"))
    with pytest.raises(PolicyFileError, match="policy file not found"):
        load_policy(tmp_path / "absent.yaml")


def test_unknown_top_level_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="birthrights: Extra inputs are not permitted"):
        load_policy(_write(tmp_path, BASE + "birthrights: []\n"))


def test_orphan_sweep_defaults_and_demo_section(demo_policy: Policy) -> None:
    sweep = demo_policy.orphan_sweep
    assert sweep is not None and sweep.dry_run and sweep.max_changes == 10
    assert sweep.every_seconds == 24 * 3600
    assert "breakglass-admin@contoso.example.com" in sweep.protected
    path_policy = Policy.model_validate(
        {"tenant": {"domain": "example.com", "mail_sender": "hr@example.com"}, "orphan_sweep": {}}
    )
    assert path_policy.orphan_sweep is not None
    assert path_policy.orphan_sweep.every_seconds == 24 * 3600  # the default interval


def test_orphan_sweep_interval_and_cron(tmp_path: Path) -> None:
    sweep = load_policy(_write(tmp_path, BASE + "orphan_sweep: {interval: 1d12h}\n")).orphan_sweep
    assert sweep is not None and sweep.every_seconds == 36 * 3600
    sweep = load_policy(_write(tmp_path, BASE + 'orphan_sweep: {cron: "0 2 * * *"}\n')).orphan_sweep
    assert sweep is not None and sweep.cron == "0 2 * * *" and sweep.every_seconds is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{interval: soon}", r"orphan_sweep\.interval: .*expected e\.g\. 30m, 24h"),
        ("{interval: 10s}", r"orphan_sweep\.interval: .*at least 1m"),
        ('{cron: "0 2 * *"}', r"orphan_sweep\.cron: .*expected five fields"),
        ('{interval: 1h, cron: "0 2 * * *"}', r"orphan_sweep: .*either interval or cron"),
        ("{max_changes: -1}", r"orphan_sweep\.max_changes: Input should be greater than"),
        ("{dry_run: perhaps}", r"orphan_sweep\.dry_run: Input should be a valid boolean"),
        ("{protected: ['']}", r"orphan_sweep\.protected\[0\]: String should have at least"),
        ("{every: 1h}", r"orphan_sweep\.every: Extra inputs are not permitted"),
    ],
)
def test_invalid_orphan_sweep_names_path_and_reason(
    tmp_path: Path, section: str, message: str
) -> None:
    path = _write(tmp_path, BASE + f"orphan_sweep: {section}\n")
    with pytest.raises(PolicyFileError, match=message) as err:
        load_policy(path)
    assert str(path) in str(err.value)


def test_leaver_retention_defaults_to_30_days(tmp_path: Path, demo_policy: Policy) -> None:
    assert load_policy(_write(tmp_path, BASE)).leaver.retention_days == 30
    plan = leaver_plan(demo_policy)
    assert plan.retention_days == demo_policy.leaver.retention_days
    assert plan.mail_sender == demo_policy.tenant.mail_sender
    assert (
        load_policy(_write(tmp_path, BASE + "leaver: {retention_days: 0}\n")).leaver.retention_days
        == 0
    )


@pytest.mark.parametrize("days", ["-1", "3651", "soon"])
def test_invalid_retention_names_path_and_reason(tmp_path: Path, days: str) -> None:
    path = _write(tmp_path, BASE + f"leaver: {{retention_days: {days}}}\n")
    with pytest.raises(PolicyFileError, match=r"leaver\.retention_days: Input should be") as err:
        load_policy(path)
    assert str(path) in str(err.value)
