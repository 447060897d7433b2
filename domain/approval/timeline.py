"""When things happen to an undecided stage: reminders, escalation levels, the deadline, and the
fallback approvers' own deadline. Pure, so exact times are unit-tested without Temporal."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from domain.approval.stages import ApprovalStage
from domain.policy.values import describe_duration


class TimelineKind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"
    DEADLINE = "deadline"


class TimelinePoint(BaseModel):
    at: datetime
    kind: TimelineKind
    index: int  # which reminder or escalation level
    text: str


def stage_timeline(stage: ApprovalStage, opened_at: datetime) -> list[TimelinePoint]:
    """Everything that happens to an undecided stage, in time order (ties: escalations first,
    so a reminder at the same moment reaches the alternates too)."""
    return timeline(
        opened_at, stage.deadline, stage.reminders, [level.after for level in stage.escalations]
    )


def timeline(
    opened_at: datetime,
    deadline: timedelta,
    reminders: list[timedelta],
    escalations: list[timedelta],
) -> list[TimelinePoint]:
    """Reminders `reminders` before the deadline, escalations `escalations` after the opening,
    and the deadline, in time order; shared by approval stages and review stages."""
    points = [
        TimelinePoint(
            at=opened_at + deadline - lead,
            kind=TimelineKind.REMINDER,
            index=i,
            text=f"reminder {describe_duration(lead)} before the deadline",
        )
        for i, lead in enumerate(reminders)
    ]
    points += [
        TimelinePoint(
            at=opened_at + after,
            kind=TimelineKind.ESCALATION,
            index=i,
            text=f"escalation level {i + 1} after {describe_duration(after)}",
        )
        for i, after in enumerate(escalations)
    ]
    points.append(
        TimelinePoint(
            at=opened_at + deadline,
            kind=TimelineKind.DEADLINE,
            index=0,
            text=f"deadline after {describe_duration(deadline)}",
        )
    )
    order = {TimelineKind.ESCALATION: 0, TimelineKind.REMINDER: 1, TimelineKind.DEADLINE: 2}
    return sorted(points, key=lambda p: (p.at, order[p.kind]))


def fallback_timeline(stage: ApprovalStage, opened_at: datetime) -> list[TimelinePoint]:
    """After an escalate-on-timeout: the fallback approvers' own deadline (a reminder halfway)."""
    half = stage.fallback_deadline / 2
    return [
        TimelinePoint(
            at=opened_at + half,
            kind=TimelineKind.REMINDER,
            index=0,
            text=f"reminder {describe_duration(stage.fallback_deadline - half)} before the fallback deadline",
        ),
        TimelinePoint(
            at=opened_at + stage.fallback_deadline,
            kind=TimelineKind.DEADLINE,
            index=1,
            text=f"fallback deadline after {describe_duration(stage.fallback_deadline)}",
        ),
    ]
