"""A request's view with a full story, as the API returns it, and its rendering by `tenure requests
show`: shared by the CLI's rendering and command tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from cli.requests_cmd import render_request
from domain.access.request import RequestStatus, RequestView, StoryEntry
from domain.approval.contract import StageView

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REQUEST_ID = "access-request-E1002-production-db-read-3f2a9c1b0d"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def story_view() -> RequestView:
    manager = StageView(
        index=0,
        name="manager",
        round="request",
        require="first",
        approvers=["E1001"],
        approved_by=["E1001"],
        opened_at=at(0),
        deadline=at(48),
        outcome="approved",
    )
    owners = StageView(
        index=1,
        name="data owners",
        round="request",
        require="2",
        approvers=["E0003", "E0010", "E0013"],
        approved_by=["E0003", "E0010"],
        opened_at=at(5),
        deadline=at(77),
        outcome="approved",
    )
    entries: list[tuple[float, str, str, str, dict[str, Any]]] = [
        (0, "submitted", "E1001", "E1001 asked for Production database (read) for E1002", {}),
        (0, "eligibility", "system", "E1002 may request this package", {}),
        (0, "sod", "system", "no separation-of-duties conflict", {"rules": []}),
        (0, "stage_opened", "system", "stage manager opened: E1001 decides by 2026-11-04", {}),
        (
            1,
            "refused_attempt",
            "E1002",
            "E1002 tried to approve",
            {"action": "decide", "reason": "E1002 cannot decide their own request"},
        ),
        (
            5,
            "decision",
            "E1001",
            "E1001 approved",
            {"stage": "manager", "decision": "approve", "comment": "needed for the incident"},
        ),
        (5, "stage_closed", "system", "stage manager approved", {}),
        (5, "stage_opened", "system", "stage data owners opened", {}),
        (53, "reminder", "system", "reminded E0003, E0010, E0013", {}),
        (60, "escalated", "system", "escalated to E0006", {}),
        (
            61,
            "decision",
            "E0003",
            "E0003 approved",
            {"stage": "data owners", "decision": "approve"},
        ),
        (
            62,
            "decision",
            "E0010",
            "E0010 approved",
            {"stage": "data owners", "decision": "approve", "comment": "two weeks only"},
        ),
        (
            62,
            "granted",
            "system",
            "granted group:Production Database Readers",
            {"resources": ["group:Production Database Readers"], "until": at(400).isoformat()},
        ),
        (
            300,
            "extension_requested",
            "E1002",
            "E1002 asked to extend",
            {"until": at(700).isoformat()},
        ),
        (301, "extended", "E1001", "extended", {"until": at(700).isoformat()}),
        (700, "removed", "system", "access ended", {"reason": "expired"}),
    ]
    story = [
        StoryEntry(seq=i + 1, at=at(h), kind=kind, actor=actor, text=text, data=data)  # type: ignore[arg-type]
        for i, (h, kind, actor, text, data) in enumerate(entries)
    ]
    return RequestView(
        request_id=REQUEST_ID,
        package_id="production-db-read",
        package_name="Production database (read)",
        beneficiary_id="E1002",
        requester_id="E1001",
        status=RequestStatus.EXPIRED,
        justification="on call this week",
        answers={"ticket": "INC-7", "environment": "eu"},
        submitted_at=at(0),
        resources=["group:Production Database Readers"],
        stages=[manager, owners],
        granted_at=at(62),
        expires_at=at(700),
        closed_at=at(700),
        story=story,
        updated_at=at(700),
    )


def rendered(view: RequestView) -> str:
    out = io.StringIO()
    render_request(Console(file=out, width=220, color_system=None), view)
    return out.getvalue()
