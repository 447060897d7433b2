"""Who may request a package, what they must answer, and when the access ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.access.policy import AssignmentPolicy, ExpiryPolicy, WhoMayRequest
from domain.access.request import Beneficiary
from domain.access.rules import (
    answer_errors,
    eligibility_refusal,
    expiry_reminders,
    extension_refusal,
    grant_end,
    requested_end_error,
)
from domain.lifecycle.events import WorkerRecord

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
DAY = timedelta(days=1)


def _person(employee_id: str = "E1", stage: str = "active", **worker: Any) -> Beneficiary:
    fields = {"employee_id": employee_id, "manager_id": "M1", "department": "Finance"} | worker
    record = WorkerRecord.model_validate(fields)
    return Beneficiary(employee_id=employee_id, known=True, stage=stage, worker=record)


def _who(**fields: Any) -> WhoMayRequest:
    return WhoMayRequest.model_validate(fields)


# ---- eligibility --------------------------------------------------------------------------------


def test_everyone_may_request_for_themselves() -> None:
    assert eligibility_refusal(_who(everyone=True), _person(), "E1") is None


def test_conditions_apply_to_the_person_and_ignore_case() -> None:
    who = _who(when=[{"department": "Sales"}, {"department": "finance", "location": "London"}])
    assert eligibility_refusal(who, _person(location="london"), "E1") is None
    refusal = eligibility_refusal(who, _person(location="Berlin"), "E1")
    assert refusal == "E1 does not meet the package's conditions for who may request it"


def test_a_named_person_may_request_whatever_their_attributes() -> None:
    who = _who(people=["E1"], when={"department": "Sales"})
    assert eligibility_refusal(who, _person(), "E1") is None
    assert eligibility_refusal(who, _person("E2"), "E2") is not None


def test_a_manager_may_request_for_a_report_who_is_eligible() -> None:
    who = _who(when={"department": "Finance"}, managers_for_reports=True)
    assert eligibility_refusal(who, _person(), "M1") is None
    refusal = eligibility_refusal(who, _person(department="Sales"), "M1")
    assert refusal is not None and "does not meet the package's conditions" in refusal


def test_someone_else_may_not_request_unless_managers_may() -> None:
    refusal = eligibility_refusal(_who(everyone=True), _person(), "M1")
    assert refusal == "this package can only be requested by the person who will hold it"


def test_only_the_persons_own_manager_may_request_for_them() -> None:
    who = _who(everyone=True, managers_for_reports=True)
    refusal = eligibility_refusal(who, _person(), "M2")
    assert refusal is not None and refusal.startswith("M2 is not the manager of E1")


def test_an_unknown_person_cannot_get_access() -> None:
    unknown = Beneficiary(employee_id="E404", known=False)
    assert eligibility_refusal(_who(everyone=True), unknown, "E404") == (
        "E404 is not a person Tenure knows"
    )


@pytest.mark.parametrize("stage", ["pre_hire", "disabled", "deleted"])
def test_a_person_not_active_cannot_get_access(stage: str) -> None:
    refusal = eligibility_refusal(_who(everyone=True), _person(stage=stage), "E1")
    assert refusal == f"E1 is not active (stage {stage})"


# ---- justification and answers ------------------------------------------------------------------


def _policy(**fields: Any) -> AssignmentPolicy:
    return AssignmentPolicy.model_validate({"who_may_request": {"everyone": True}, **fields})


QUESTIONS = [
    {"id": "ticket", "text": "Change ticket", "max_length": 10},
    {"id": "region", "text": "Region", "kind": "choice", "choices": ["eu", "us"]},
    {"id": "note", "text": "Anything else", "required": False},
]


def test_complete_answers_have_no_errors() -> None:
    answers = {"ticket": " CHG-1 ", "region": "eu"}
    assert answer_errors(_policy(questions=QUESTIONS), "on call", answers) == []


def test_blank_justification_is_refused_when_required() -> None:
    assert answer_errors(_policy(), "  ", {}) == [
        "justification: this package requires a justification"
    ]
    assert answer_errors(_policy(justification_required=False), "", {}) == []


def test_an_answer_to_no_question_names_the_questions() -> None:
    errors = answer_errors(
        _policy(questions=QUESTIONS), "x", {"ticket": "1", "region": "us", "q": "?"}
    )
    assert errors == ["answers.q: not a question of this package (questions: note, region, ticket)"]
    assert answer_errors(_policy(), "x", {"q": "?"}) == [
        "answers.q: not a question of this package (questions: none)"
    ]


def test_a_required_question_left_blank_is_named_with_its_text() -> None:
    errors = answer_errors(_policy(questions=QUESTIONS), "x", {"region": "eu", "ticket": " "})
    assert errors == ["answers.ticket: required (Change ticket)"]


def test_a_choice_outside_the_choices_is_refused() -> None:
    errors = answer_errors(_policy(questions=QUESTIONS), "x", {"ticket": "1", "region": "EU"})
    assert errors == ["answers.region: 'EU' is not one of eu, us"]


def test_an_answer_longer_than_allowed_is_refused() -> None:
    errors = answer_errors(_policy(questions=QUESTIONS), "x", {"ticket": "C" * 11, "region": "eu"})
    assert errors == ["answers.ticket: longer than 10 characters"]


def test_every_problem_is_reported_at_once() -> None:
    errors = answer_errors(_policy(questions=QUESTIONS), "", {"region": "asia"})
    assert [e.split(":")[0] for e in errors] == [
        "justification",
        "answers.ticket",
        "answers.region",
    ]


# ---- the requested end --------------------------------------------------------------------------

CHOOSES = ExpiryPolicy.model_validate({"kind": "requester_chooses", "max": "30d"})
DURATION = ExpiryPolicy.model_validate({"kind": "duration", "duration": "90d"})
DATE = ExpiryPolicy.model_validate({"kind": "date", "date": "2026-12-31T17:00:00Z"})
NEVER = ExpiryPolicy.model_validate({"kind": "never"})


def test_requester_chooses_needs_an_end_within_the_maximum() -> None:
    assert requested_end_error(CHOOSES, NOW, NOW + 30 * DAY) is None
    assert requested_end_error(CHOOSES, NOW, None) == (
        "requested_end: this package needs an end date (at most 30d away)"
    )
    assert requested_end_error(CHOOSES, NOW, NOW + 30 * DAY + timedelta(minutes=1)) == (
        "requested_end: at most 30d after the request"
    )


@pytest.mark.parametrize("end", [NOW, NOW - DAY])
def test_requested_end_must_be_in_the_future(end: datetime) -> None:
    assert requested_end_error(CHOOSES, NOW, end) == "requested_end: must be in the future"


@pytest.mark.parametrize(
    ("expiry", "kind"), [(DURATION, "duration"), (DATE, "date"), (NEVER, "never")]
)
def test_requested_end_is_refused_when_policy_sets_the_end(expiry: ExpiryPolicy, kind: str) -> None:
    assert requested_end_error(expiry, NOW, None) is None
    assert requested_end_error(expiry, NOW, NOW + DAY) == (
        f"requested_end: this package's access ends by policy ({kind})"
    )


# ---- when granted access ends -------------------------------------------------------------------


def test_grant_end_for_each_kind() -> None:
    assert grant_end(NEVER, NOW, None) is None
    assert grant_end(DURATION, NOW, None) == NOW + 90 * DAY
    assert grant_end(DATE, NOW, None) == datetime(2026, 12, 31, 17, tzinfo=UTC)
    assert grant_end(CHOOSES, NOW, NOW + 3 * DAY) == NOW + 3 * DAY


def test_requester_chooses_is_capped_at_the_maximum_from_the_grant() -> None:
    assert grant_end(CHOOSES, NOW, NOW + 45 * DAY) == NOW + 30 * DAY
    assert grant_end(CHOOSES, NOW, None) == NOW + 30 * DAY


def test_a_chosen_end_passed_during_approval_still_gives_the_chosen_length() -> None:
    submitted = NOW - 5 * DAY
    chosen = submitted + 2 * DAY  # asked for two days; approval took five
    assert grant_end(CHOOSES, NOW, chosen, submitted_at=submitted) == NOW + 2 * DAY
    assert grant_end(CHOOSES, NOW, chosen) == NOW + 30 * DAY  # length unknown: the maximum


# ---- extensions ---------------------------------------------------------------------------------


def _expiry(**fields: Any) -> ExpiryPolicy:
    return ExpiryPolicy.model_validate({"kind": "duration", "duration": "90d", **fields})


def test_an_extension_within_the_limit_is_allowed() -> None:
    end = NOW + 10 * DAY
    assert extension_refusal(_expiry(), end, end + 90 * DAY, NOW) is None
    assert extension_refusal(CHOOSES, end, end + 30 * DAY, NOW) is None


def test_extension_refused_when_the_policy_allows_none() -> None:
    expiry = _expiry(extension={"allowed": False})
    assert extension_refusal(expiry, NOW + DAY, NOW + 2 * DAY, NOW) == (
        "this package's access cannot be extended"
    )


def test_access_that_never_expires_cannot_be_extended() -> None:
    assert extension_refusal(NEVER, None, NOW + DAY, NOW) == (
        "this access never expires: there is nothing to extend"
    )


@pytest.mark.parametrize("days", [0, -1])
def test_extension_must_move_the_end_later(days: int) -> None:
    end = NOW + 10 * DAY
    assert extension_refusal(_expiry(), end, end + days * DAY, NOW) == (
        "new_end: must be later than the current end"
    )


def test_extension_limit_is_the_extension_max_else_the_expiry_length() -> None:
    end = NOW + 10 * DAY
    assert extension_refusal(_expiry(), end, end + 91 * DAY, NOW) == (
        "new_end: an extension moves the end at most 90d"
    )
    limited = _expiry(extension={"max": "14d"})
    assert extension_refusal(limited, end, end + 15 * DAY, NOW) == (
        "new_end: an extension moves the end at most 14d"
    )
    assert extension_refusal(CHOOSES, end, end + 31 * DAY, NOW) == (
        "new_end: an extension moves the end at most 30d"
    )


def test_expiry_reminders_in_time_order_before_the_end() -> None:
    end = NOW + 30 * DAY
    assert expiry_reminders(end, NOW, [DAY, 7 * DAY]) == [end - 7 * DAY, end - DAY]


def test_expiry_reminders_before_the_grant_are_skipped() -> None:
    end = NOW + 5 * DAY
    assert expiry_reminders(end, NOW, [14 * DAY, 5 * DAY, DAY]) == [end - DAY]
