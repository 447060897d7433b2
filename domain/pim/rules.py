"""Whether an activation may go ahead, and when it starts and ends: pure, so each refusal and its
wording is unit-tested (tests/pim/test_rules.py). The activation workflow and the API both ask."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from domain.pim.roles import EligibilityExpiryKind, PrivilegedRole
from domain.policy.values import describe_duration

# A scheduled start may be this far ahead at most.
MAX_START_AHEAD = timedelta(days=30)


class ActivationAsk(BaseModel):
    """What a person asks for, as the API hands it over (MFA from the token's `amr`)."""

    employee_id: str
    role_id: str
    duration: timedelta | None = None  # absent: the role's default
    justification: str = ""
    ticket: str | None = None
    mfa: bool = False
    start: datetime | None = None  # absent: now


class Eligibility(BaseModel):
    employee_id: str
    role_id: str
    starts_at: datetime
    ends_at: datetime | None = None  # None: permanent (only where the role allows it)


class Refusal(StrEnum):
    NOT_ELIGIBLE = "not_eligible"
    MFA_REQUIRED = "mfa_required"
    JUSTIFICATION_REQUIRED = "justification_required"
    TICKET_REQUIRED = "ticket_required"
    TICKET_FORMAT = "ticket_format"
    TOO_LONG = "too_long"
    BAD_START = "bad_start"


class ActivationRefused(BaseModel):
    code: Refusal
    reason: str


def activation_window(
    role: PrivilegedRole, ask: ActivationAsk, now: datetime
) -> tuple[datetime, datetime]:
    start = ask.start or now
    return start, start + (ask.duration or role.default_activation)


def activation_refusal(
    role: PrivilegedRole,
    ask: ActivationAsk,
    eligibility: Eligibility | None,
    now: datetime,
) -> ActivationRefused | None:
    """Why this activation may not go ahead, the first reason found; None when it may."""
    name = role.display_name
    start, end = activation_window(role, ask, now)
    if eligibility is None:
        return ActivationRefused(
            code=Refusal.NOT_ELIGIBLE, reason=f"{ask.employee_id} is not eligible for {name}"
        )
    if eligibility.starts_at > start or (
        eligibility.ends_at is not None and eligibility.ends_at <= start
    ):
        return ActivationRefused(
            code=Refusal.NOT_ELIGIBLE,
            reason=f"{ask.employee_id}'s eligibility for {name} does not cover {start:%Y-%m-%d %H:%M} UTC",
        )
    if role.require_mfa and not ask.mfa:
        return ActivationRefused(
            code=Refusal.MFA_REQUIRED,
            reason=f"{name} needs multi-factor authentication: sign in again with MFA",
        )
    if role.require_justification and not ask.justification.strip():
        return ActivationRefused(
            code=Refusal.JUSTIFICATION_REQUIRED, reason=f"{name} needs a justification"
        )
    ticket = (ask.ticket or "").strip()
    if role.ticket.required and not ticket:
        return ActivationRefused(
            code=Refusal.TICKET_REQUIRED, reason=f"{name} needs a ticket number"
        )
    if ticket and role.ticket.pattern and re.fullmatch(role.ticket.pattern, ticket) is None:
        return ActivationRefused(
            code=Refusal.TICKET_FORMAT,
            reason=f"ticket {ticket!r} does not match {role.ticket.pattern!r}",
        )
    duration = end - start
    if duration <= timedelta(0) or duration > role.max_activation:
        return ActivationRefused(
            code=Refusal.TOO_LONG,
            reason=(
                f"{describe_duration(duration)} is longer than {name}'s maximum of "
                f"{describe_duration(role.max_activation)}"
                if duration > timedelta(0)
                else "an activation must last some time"
            ),
        )
    if start < now - timedelta(minutes=5) or start > now + MAX_START_AHEAD:
        return ActivationRefused(
            code=Refusal.BAD_START,
            reason=f"a start must be from now to {describe_duration(MAX_START_AHEAD)} ahead",
        )
    if eligibility.ends_at is not None and end > eligibility.ends_at:
        return ActivationRefused(
            code=Refusal.TOO_LONG,
            reason=f"the activation would outlast the eligibility, which ends "
            f"{eligibility.ends_at:%Y-%m-%d %H:%M} UTC",
        )
    return None


class EligibilityEndRefused(ValueError):
    """An eligibility end the role's settings do not allow; the message says why."""


def eligibility_end(
    role: PrivilegedRole, now: datetime, until: datetime | None, permanent: bool
) -> datetime | None:
    """When a new (or extended) eligibility ends: the one asked for, within the role's expiry
    setting, or the setting's default; None for permanent, only where the role allows it."""
    expiry = role.eligibility_expiry
    name = role.display_name
    if permanent:
        if not role.allow_permanent_eligible:
            raise EligibilityEndRefused(f"{name} does not allow permanent eligibility")
        return None
    latest: datetime | None
    if expiry.kind is EligibilityExpiryKind.DURATION:
        assert expiry.duration is not None
        latest = now + expiry.duration
    elif expiry.kind is EligibilityExpiryKind.DATE:
        latest = expiry.date
    else:
        latest = None
    if until is None:
        if latest is None:
            return None  # `never`: the role allows permanent eligibility (checked at load)
        until = latest
    if until <= now:
        raise EligibilityEndRefused(f"the end {until:%Y-%m-%d %H:%M} UTC has already passed")
    if latest is not None and until > latest:
        raise EligibilityEndRefused(
            f"{name} eligibility may last until {latest:%Y-%m-%d %H:%M} UTC at most"
        )
    return until


def eligibility_reminder(ends_at: datetime, granted_at: datetime) -> datetime | None:
    """When to remind the person that the eligibility ends: a week before, or a day before a
    short one; None when even that has passed at the grant."""
    lead = (
        ELIGIBILITY_REMINDER
        if ends_at - granted_at > 2 * ELIGIBILITY_REMINDER
        else timedelta(days=1)
    )
    at = ends_at - lead
    return at if at > granted_at else None


ELIGIBILITY_REMINDER = timedelta(days=7)
