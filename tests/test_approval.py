"""One approval stage as data (domain/approval): who may decide, what the decisions add up to,
and when things happen; and that the approval packages know nothing of access requests."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.approval.contract import Decision
from domain.approval.stages import ApprovalStage, EscalationMode
from domain.approval.tally import (
    StageOutcome,
    StageTally,
    decision_refusal,
    escalate,
    needs_text,
    outcome,
    record_decision,
    require_text,
)
from domain.approval.timeline import TimelineKind, fallback_timeline, stage_timeline

OPENED = datetime(2026, 3, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)
APPROVE, DENY = Decision.APPROVE, Decision.DENY
# The subject's own people (a request's requester and beneficiary), as a subject words it.
OWN = ["R", "B"]
OWN_REFUSAL = "you cannot decide on your own subject"


def _tally(require: str, *approvers: str) -> StageTally:
    return StageTally(require=require, approvers=list(approvers))


def _decide(tally: StageTally, *decisions: tuple[str, Decision]) -> StageTally:
    for actor, decision in decisions:
        tally = record_decision(tally, actor, decision)
    return tally


def _stage(**fields: Any) -> ApprovalStage:
    return ApprovalStage.model_validate({"approvers": ["manager"], **fields})


# ---- what decisions add up to -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "expected"), [(APPROVE, StageOutcome.APPROVED), (DENY, StageOutcome.DENIED)]
)
def test_first_decision_decides_either_way(decision: Decision, expected: StageOutcome) -> None:
    tally = _tally("first", "A", "B")
    assert outcome(tally, more_may_come=False) is None
    assert outcome(_decide(tally, ("B", decision)), more_may_come=True) is expected


def test_all_one_denial_denies_at_once() -> None:
    tally = _decide(_tally("all", "A", "B", "C"), ("A", APPROVE), ("B", DENY))
    assert outcome(tally, more_may_come=True) is StageOutcome.DENIED


def test_all_approved_only_when_everyone_approved() -> None:
    tally = _decide(_tally("all", "A", "B"), ("A", APPROVE))
    assert outcome(tally, more_may_come=False) is None
    assert outcome(_decide(tally, ("B", APPROVE)), more_may_come=False) is StageOutcome.APPROVED


def test_all_includes_approvers_an_escalation_added() -> None:
    tally = escalate(_tally("all", "A"), ["X"], EscalationMode.ADD)
    tally = _decide(tally, ("A", APPROVE))
    assert outcome(tally, more_may_come=False) is None
    assert outcome(_decide(tally, ("X", APPROVE)), more_may_come=False) is StageOutcome.APPROVED


def test_all_with_nobody_to_ask_stays_open_until_the_deadline() -> None:
    assert outcome(_tally("all"), more_may_come=False) is None


def test_quorum_two_of_three_is_approved_at_the_second_approval() -> None:
    tally = _decide(_tally("2", "A", "B", "C"), ("A", APPROVE))
    assert outcome(tally, more_may_come=False) is None
    tally = _decide(tally, ("C", APPROVE))
    assert outcome(tally, more_may_come=False) is StageOutcome.APPROVED


def test_quorum_survives_one_denial_and_is_denied_once_out_of_reach() -> None:
    tally = _decide(_tally("2", "A", "B", "C"), ("A", DENY))
    assert outcome(tally, more_may_come=False) is None
    tally = _decide(tally, ("B", DENY))
    assert outcome(tally, more_may_come=False) is StageOutcome.DENIED


def test_quorum_out_of_reach_is_not_denied_while_more_approvers_may_come() -> None:
    tally = _decide(_tally("2", "A", "B", "C"), ("A", DENY), ("B", DENY))
    assert outcome(tally, more_may_come=True) is None
    tally = escalate(tally, ["X"], EscalationMode.ADD)
    tally = _decide(tally, ("C", APPROVE), ("X", APPROVE))
    assert outcome(tally, more_may_come=False) is StageOutcome.APPROVED


def test_require_text_of_each_form() -> None:
    assert require_text(_stage()) == "first"
    assert require_text(_stage(require="all")) == "all"
    assert require_text(_stage(approvers=[{"people": ["A", "B"]}], require=2)) == "2"


def test_what_a_stage_needs_in_words() -> None:
    assert needs_text("first") == "the first decision"
    assert needs_text("all") == "everyone's approval"
    assert needs_text("2") == "2 approvals"


# ---- who may decide -----------------------------------------------------------------------------


def _refusal(tally: StageTally, actor: str) -> str | None:
    return decision_refusal(tally, actor, OWN, OWN_REFUSAL)


def test_an_approver_who_has_not_decided_may_decide() -> None:
    assert _refusal(_tally("first", "A"), "A") is None


@pytest.mark.parametrize("actor", OWN)
def test_the_subjects_own_people_may_not_decide_even_as_approvers(actor: str) -> None:
    assert _refusal(_tally("first", "R", "B", "A"), actor) == OWN_REFUSAL


def test_an_approver_decides_only_once() -> None:
    tally = _decide(_tally("all", "A", "C"), ("A", DENY))
    assert _refusal(tally, "A") == "you have already decided on this stage"


def test_a_replaced_approver_may_no_longer_decide() -> None:
    tally = escalate(_tally("first", "A"), ["X"], EscalationMode.REPLACE)
    refusal = _refusal(tally, "A")
    assert refusal == "this stage was escalated: your decision is no longer needed"
    assert _refusal(tally, "X") is None


def test_a_stranger_may_not_decide() -> None:
    refusal = _refusal(_tally("first", "A"), "S")
    assert refusal == "you are not an approver of the stage waiting for a decision"


# ---- escalation ---------------------------------------------------------------------------------


def test_escalate_add_keeps_everyone_and_adds_alternates_once() -> None:
    tally = escalate(_tally("first", "A", "B"), ["B", "X"], EscalationMode.ADD)
    assert tally.approvers == ["A", "B", "X"] and tally.replaced == []


def test_escalate_replace_keeps_those_who_already_decided() -> None:
    tally = _decide(_tally("2", "A", "B", "C"), ("A", APPROVE), ("B", DENY))
    tally = escalate(tally, ["X", "Y"], EscalationMode.REPLACE)
    assert tally.approvers == ["A", "B", "X", "Y"]
    assert tally.replaced == ["C"]
    assert tally.approved_by == ["A"] and tally.denied_by == ["B"]
    tally = _decide(tally, ("X", APPROVE))
    assert outcome(tally, more_may_come=False) is StageOutcome.APPROVED


def test_escalate_replace_keeps_an_undecided_approver_named_again() -> None:
    tally = escalate(_tally("first", "A", "B"), ["B", "X"], EscalationMode.REPLACE)
    assert tally.approvers == ["B", "X"] and tally.replaced == ["A"]


def test_an_approver_replaced_earlier_and_brought_back_may_decide() -> None:
    tally = escalate(_tally("first", "A"), ["X"], EscalationMode.REPLACE)
    for mode in EscalationMode:
        back = escalate(tally, ["A"], mode)
        assert "A" in back.approvers and "A" not in back.replaced
        assert _refusal(back, "A") is None


# ---- timelines ----------------------------------------------------------------------------------


def test_stage_timeline_in_time_order_with_exact_times() -> None:
    stage = _stage(
        deadline="5d",
        reminders=["2d", "12h"],
        escalations=[
            {"after": "1d", "approvers": ["second_level_manager"]},
            {"after": "4d", "approvers": [{"people": ["E9"]}]},
        ],
    )
    points = [(p.at, p.kind, p.index) for p in stage_timeline(stage, OPENED)]
    assert points == [
        (OPENED + DAY, TimelineKind.ESCALATION, 0),
        (OPENED + 3 * DAY, TimelineKind.REMINDER, 0),
        (OPENED + 4 * DAY, TimelineKind.ESCALATION, 1),
        (OPENED + 4 * DAY + timedelta(hours=12), TimelineKind.REMINDER, 1),
        (OPENED + 5 * DAY, TimelineKind.DEADLINE, 0),
    ]


def test_an_escalation_comes_before_a_reminder_at_the_same_moment() -> None:
    stage = _stage(
        deadline="3d",
        reminders=["1d"],
        escalations=[{"after": "2d", "approvers": ["second_level_manager"]}],
    )
    points = stage_timeline(stage, OPENED)
    assert [(p.at, p.kind) for p in points] == [
        (OPENED + 2 * DAY, TimelineKind.ESCALATION),
        (OPENED + 2 * DAY, TimelineKind.REMINDER),
        (OPENED + 3 * DAY, TimelineKind.DEADLINE),
    ]
    assert [p.text for p in points] == [
        "escalation level 1 after 2d",
        "reminder 1d before the deadline",
        "deadline after 3d",
    ]


def test_a_stage_without_reminders_has_only_its_deadline() -> None:
    points = stage_timeline(_stage(deadline="12h"), OPENED)
    assert [(p.at, p.kind) for p in points] == [
        (OPENED + timedelta(hours=12), TimelineKind.DEADLINE)
    ]


def test_fallback_timeline_reminds_halfway_then_ends() -> None:
    stage = _stage(on_timeout="escalate", fallback=["owner"], fallback_deadline="1d")
    points = fallback_timeline(stage, OPENED)
    assert [(p.at, p.kind) for p in points] == [
        (OPENED + timedelta(hours=12), TimelineKind.REMINDER),
        (OPENED + DAY, TimelineKind.DEADLINE),
    ]
    assert points[0].text == "reminder 12h before the fallback deadline"
    assert points[1].text == "fallback deadline after 1d"


# ---- what the approval packages may depend on ---------------------------------------------------

ROOT = Path(__file__).parent.parent
APPROVAL_PACKAGES = [ROOT / "domain" / "approval", ROOT / "workflows" / "approval"]
# What an access request is: its contract, its policy, its workflows and activities.
ACCESS_MODULES = ("domain.access", "workflows.access", "activities.access")


def _imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
            # `from domain.access import request` names the module in the alias.
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            modules.append("." * node.level + (node.module or ""))
    return modules


def test_the_approval_packages_import_nothing_of_access_requests() -> None:
    files = sorted(f for package in APPROVAL_PACKAGES for f in package.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "engine.py", "stages.py", "tally.py"}
    found = {
        f"{f.relative_to(ROOT)}: {module}"
        for f in files
        for module in _imported_modules(f)
        if module.startswith(ACCESS_MODULES) or module.startswith(".")
    }
    # Relative imports are refused too: they would hide what a module reaches.
    assert found == set()


def test_the_import_scan_sees_an_access_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from temporalio import workflow\n"
        "with workflow.unsafe.imports_passed_through():\n"
        "    from domain.access.request import SYSTEM\n"
        "    from domain.access import policy\n"
        "import workflows.access.grant\n"
    )
    assert {m for m in _imported_modules(module) if m.startswith(ACCESS_MODULES)} == {
        "domain.access.request",
        "domain.access.request.SYSTEM",
        "domain.access",
        "domain.access.policy",
        "workflows.access.grant",
    }
