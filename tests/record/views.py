"""Views and story lines the record tests write (tests/record/)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.store import (
    AccessRecordStore,
)
from domain.access.request import (
    RequestStatus,
    RequestView,
    StageView,
    StoryEntry,
)

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _line(seq: int, kind: str, actor: str = "system", **data: object) -> StoryEntry:
    return StoryEntry(
        seq=seq, at=_at(seq), kind=kind, actor=actor, text=f"{kind} #{seq}", data=data
    )


def _stage(approvers: list[str], **fields: object) -> StageView:
    return StageView(
        index=0,
        name="Manager",
        round="request",
        require="all",
        approvers=approvers,
        opened_at=_at(2),
        deadline=_at(2) + timedelta(days=7),
        **fields,
    )


def _view(
    story: list[StoryEntry],
    status: RequestStatus,
    *,
    request_id: str = "access-request-E2-ledger-ap-1",
    beneficiary: str = "E2",
    requester: str = "E2",
    submitted_at: datetime = T0,
    waiting_on: StageView | None = None,
) -> RequestView:
    return RequestView(
        request_id=request_id,
        package_id="ledger-ap",
        package_name="Ledger accounts payable",
        beneficiary_id=beneficiary,
        requester_id=requester,
        status=status,
        justification="Month-end close",
        submitted_at=submitted_at,
        resources=["group:Finance", "app:ledger:ap-clerk"],
        waiting_on=waiting_on,
        stages=[waiting_on] if waiting_on else [],
        story=story,
        updated_at=story[-1].at if story else submitted_at,
    )


# The life of one request, line by line: submitted, approved in two stages, granted, extended, removed.
STORY = [
    _line(1, "submitted", "E2"),
    _line(2, "stage_opened"),
    _line(3, "decision", "M1", stage=0, decision="approve", comment="ok for close"),
    _line(4, "stage_closed"),
    _line(5, "stage_opened"),
    _line(6, "decision", "O1", stage=1, decision="approve", comment=""),
    _line(7, "stage_closed"),
    _line(
        8,
        "granted",
        resources=["group:Finance", "app:ledger:ap-clerk"],
        until=_at(60 * 24 * 30).isoformat(),
    ),
    _line(9, "extended", "A1", until=_at(60 * 24 * 60).isoformat()),
    _line(10, "removed", resources=["group:Finance", "app:ledger:ap-clerk"], reason="expired"),
]


def _env_naming(store: AccessRecordStore) -> dict[str, str]:
    """The environment of a process that should open this same record."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_ACCESS_RECORD_")}
    if store.path is not None:
        env["TENURE_ACCESS_RECORD_DB"] = str(store.path)
    else:
        env["TENURE_ACCESS_RECORD_URL"] = store.url.render_as_string(hide_password=False)
    return env
