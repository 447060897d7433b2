"""`tenure requests show`: how a request's view is rendered (story, stages, waiting, resources)."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx

from cli.api_calls import command_console
from cli.requests_cmd import render_request
from domain.access.request import RequestStatus
from tests.support.request_views import REQUEST_ID, rendered, story_view


def test_show_renders_the_whole_story() -> None:
    text = rendered(story_view())

    # Who asked, for whom, why, with which answers.
    assert REQUEST_ID in text and "expired" in text
    assert "Production database (read) (production-db-read)" in text
    assert "E1001" in text and "E1002" in text
    assert "on call this week" in text
    assert "ticket: INC-7" in text and "environment: eu" in text
    # Each stage with its approvers, quorum and deadline.
    assert "E0003, E0010, E0013" in text
    assert "2 approvals" in text
    assert "2026-11-04 09:00 UTC" in text  # the manager stage's deadline
    # The timeline: SoD, refused attempt with who and why, decisions with comments, reminders,
    # escalation, grant, extension, removal.
    for expected in (
        "SoD check",
        "no separation-of-duties conflict",
        "Refused attempt",
        "reason: E1002 cannot decide their own request",
        "comment: needed for the incident",
        "comment: two weeks only",
        "Reminder",
        "Escalated",
        "Granted",
        "Extension asked",
        "Extended",
        "Removed",
        "reason: expired",
    ):
        assert expected in text, expected
    # In the order it happened.
    timeline = text[text.index("Story") :].splitlines()
    labels = ("Submitted", "Refused attempt", "Granted", "Extended", "Removed")
    order = [
        next(i for i, line in enumerate(timeline) if f"│ {label} " in line) for label in labels
    ]
    assert order == sorted(order)


def test_show_of_a_waiting_request() -> None:
    view = story_view()
    stage = view.stages[0].model_copy(update={"outcome": None, "approved_by": []})
    waiting = view.model_copy(
        update={
            "status": RequestStatus.PENDING_APPROVAL,
            "stages": [stage],
            "waiting_on": stage,
            "story": view.story[:4],
            "granted_at": None,
            "expires_at": None,
            "closed_at": None,
        }
    )
    text = rendered(waiting)
    assert "manager: E1001 by 2026-11-04 09:00 UTC" in text
    assert "waiting" in text
    assert "Ends" not in text


Handler = Callable[[httpx.Request], httpx.Response]


def test_show_prints_app_role_resources_as_written() -> None:
    # `:ledger:` is also an emoji code; the command's console must not turn it into an icon.
    out = io.StringIO()
    view = story_view().model_copy(update={"resources": ["app:ledger:reader"]})
    render_request(command_console(file=out, width=220, color_system=None), view)
    assert "app:ledger:reader" in out.getvalue()
