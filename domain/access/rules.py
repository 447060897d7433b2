"""Pure rules of an access request: who may ask, what they must answer, and when access ends."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.access.policy import (
    AssignmentPolicy,
    ExpiryKind,
    ExpiryPolicy,
    QuestionKind,
    WhoMayRequest,
)
from domain.access.request import Beneficiary
from domain.lifecycle.birthright import conditions_match
from domain.policy.values import describe_duration


def eligibility_refusal(
    who: WhoMayRequest, beneficiary: Beneficiary, requester_id: str
) -> str | None:
    """Why this request may not be made, or None. Conditions apply to the person who would hold it."""
    if not beneficiary.known or beneficiary.worker is None:
        return f"{beneficiary.employee_id} is not a person Tenure knows"
    if beneficiary.stage != "active":
        return f"{beneficiary.employee_id} is not active (stage {beneficiary.stage})"
    if requester_id != beneficiary.employee_id:
        if not who.managers_for_reports:
            return "this package can only be requested by the person who will hold it"
        if beneficiary.worker.manager_id != requester_id:
            return (
                f"{requester_id} is not the manager of {beneficiary.employee_id}, "
                "and only a manager may request this package for someone else"
            )
    if who.everyone or beneficiary.employee_id in who.people:
        return None
    if any(conditions_match(when, beneficiary.worker) for when in who.when):
        return None
    return (
        f"{beneficiary.employee_id} does not meet the package's conditions for who may request it"
    )


def answer_errors(
    policy: AssignmentPolicy, justification: str, answers: dict[str, str]
) -> list[str]:
    """Every problem with the justification and answers, each naming the field; empty when fine."""
    errors: list[str] = []
    if policy.justification_required and not justification.strip():
        errors.append("justification: this package requires a justification")
    known = {q.id: q for q in policy.questions}
    for key in answers:
        if key not in known:
            expected = ", ".join(sorted(known)) or "none"
            errors.append(f"answers.{key}: not a question of this package (questions: {expected})")
    for question in policy.questions:
        value = answers.get(question.id, "").strip()
        if not value:
            if question.required:
                errors.append(f"answers.{question.id}: required ({question.text})")
            continue
        if len(value) > question.max_length:
            errors.append(f"answers.{question.id}: longer than {question.max_length} characters")
        if question.kind is QuestionKind.CHOICE and value not in question.choices:
            errors.append(
                f"answers.{question.id}: {value!r} is not one of {', '.join(question.choices)}"
            )
    return errors


def requested_end_error(
    expiry: ExpiryPolicy, submitted_at: datetime, requested_end: datetime | None
) -> str | None:
    if expiry.kind is not ExpiryKind.REQUESTER_CHOOSES:
        if requested_end is not None:
            return f"requested_end: this package's access ends by policy ({expiry.kind.value})"
        return None
    if requested_end is None:
        return "requested_end: this package needs an end date (at most " + (
            f"{describe_duration(expiry.max)} away)" if expiry.max else "policy's maximum)"
        )
    if requested_end <= submitted_at:
        return "requested_end: must be in the future"
    if expiry.max is not None and requested_end - submitted_at > expiry.max:
        return f"requested_end: at most {describe_duration(expiry.max)} after the request"
    return None


def grant_end(
    expiry: ExpiryPolicy,
    granted_at: datetime,
    requested_end: datetime | None,
    submitted_at: datetime | None = None,
) -> datetime | None:
    """When access granted now ends; None for never. A chosen end that passed while the request
    waited for approval still gives access from the grant for the length chosen (`submitted_at` to
    the chosen end), capped at the maximum; the maximum when `submitted_at` is not given."""
    if expiry.kind is ExpiryKind.NEVER:
        return None
    if expiry.kind is ExpiryKind.DURATION:
        assert expiry.duration is not None
        return granted_at + expiry.duration
    if expiry.kind is ExpiryKind.DATE:
        assert expiry.date is not None
        return expiry.date
    assert expiry.max is not None
    if requested_end is None or requested_end > granted_at + expiry.max:
        return granted_at + expiry.max
    if requested_end <= granted_at:
        chosen = requested_end - submitted_at if submitted_at is not None else expiry.max
        return granted_at + min(max(chosen, timedelta(0)), expiry.max)
    return requested_end


def extension_refusal(
    expiry: ExpiryPolicy, current_end: datetime | None, new_end: datetime, now: datetime
) -> str | None:
    if not expiry.extension.allowed:
        return "this package's access cannot be extended"
    if current_end is None:
        return "this access never expires: there is nothing to extend"
    if new_end <= current_end:
        return "new_end: must be later than the current end"
    limit = expiry.extension.max or expiry.max or expiry.duration
    if limit is not None and new_end - max(now, current_end) > limit:
        return f"new_end: an extension moves the end at most {describe_duration(limit)}"
    return None


def expiry_reminders(end: datetime, granted_at: datetime, leads: list[timedelta]) -> list[datetime]:
    """Reminder times before `end`, skipping any that fall before the grant itself."""
    return sorted(end - lead for lead in leads if end - lead > granted_at)
