"""Replay recorded histories against today's workflow code: a change that would break running
workflows (non-determinism) fails here, before it reaches a worker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers import registry

ROOT = Path(__file__).parent / "histories"
# Today's histories (tests/support/record_histories.py): the lifecycle, whose identities copy their
# access changes to the access record (the "access-record" patch), and access requests with the
# identities that reserve and hold them.
HISTORIES = sorted(ROOT.glob("*.json"))
# Histories of earlier releases, kept as recorded: identities and transitions started by a release
# must go on replaying on today's code after an upgrade.
# release-1: the first release (hires only).
RELEASE_1 = sorted((ROOT / "release-1").glob("*.json"))
# release-2: the whole lifecycle (hires, a withdrawn hire, a mover, a corrected leave date and
# retention) before access requests and the access record; no patch marker in them.
RELEASE_2 = sorted((ROOT / "release-2").glob("*.json"))
# release-3: lifecycle and access requests before the identity kept event contents (no reused
# event id is a conflict in them, and notices quote names unescaped).
RELEASE_3 = sorted((ROOT / "release-3").glob("*.json"))
# release-4: with event contents, before the holdings ledger (a request's end removed all it
# granted, with no `ledger-release` marker) and before typed activity calls.
RELEASE_4 = sorted((ROOT / "release-4").glob("*.json"))
ALL = [(p, p.stem) for p in HISTORIES] + [
    (p, f"{p.parent.name}/{p.stem}") for p in RELEASE_1 + RELEASE_2 + RELEASE_3 + RELEASE_4
]


def test_histories_are_recorded() -> None:
    # Every lifecycle workflow type: future- and past-dated hires, a corrected leave date followed by
    # retention, a hire withdrawn before its start date, and a mover; and access requests (two
    # stages then expiry, an SoD denial, escalation then timeout, an extension, a leaver's).
    names = {p.stem.split("-")[0] for p in HISTORIES}
    kinds = {
        "identity",
        "joiner",
        "leaver",
        "retention",
        "mover",
        "access",
        "review",
        "pim",
        "incident",
    }
    assert names == kinds and len(HISTORIES) >= 17
    requests = {p.stem for p in HISTORIES if p.stem.startswith("access-request-")}
    assert {
        "access-request-two-stage",
        "access-request-sod-denied",
        "access-request-escalate-deny",
        "access-request-extension-approved",
    } <= requests
    assert (ROOT / "identity-RA5-leaver-with-package.json").exists()
    assert len(RELEASE_1) >= 4 and len(RELEASE_2) >= 12 and len(RELEASE_3) >= 20
    assert len(RELEASE_4) >= 20
    # Today's: a revoke whose group birthright also grants goes through the identity's ledger.
    shared = (ROOT / "access-request-revoke-keeps-birthright.json").read_text()
    assert '"name": "access.release"' in shared
    assert "release_access" in (ROOT / "identity-RA6-ledger-release.json").read_text()
    # PIM: an approved activation ending on time, one ended early, one ended by an incident that
    # was then lifted, and an eligibility an administrator removed.
    pim = {p.stem for p in HISTORIES if p.stem.startswith(("pim-", "incident-"))}
    assert {
        "pim-activation-approved-expired",
        "pim-activation-deactivated-early",
        "pim-activation-ended-by-incident",
        "pim-eligibility-removed",
        "incident-suspend-restore",
        # Recorded before the cut-off at once (patch incident-cut-off-at-once): it keeps replaying.
        "incident-suspend-restore-in-turn",
        # Recorded before the cut-off first (patch incident-cut-off-first): the identity's
        # suspension was a local activity beside the cut-off.
        "incident-suspend-restore-at-once",
    } <= pim
    incident = (ROOT / "incident-suspend-restore.json").read_text()
    assert '"name": "restore"' in incident
    # Today's: the identity's suspension is a regular activity, the cut-off a local one.
    assert '"name": "security.suspend_identity"' in incident
    assert '"name": "security.cut_off"' not in incident
    # Today's: a move while an incident holds the person leaves sign-in off.
    held = WorkflowHistory.from_json(
        "i", (ROOT / "identity-RP4-moved-while-suspended.json").read_text()
    )
    assert "suspension-holds-sign-in" in _patches(held)
    mover = WorkflowHistory.from_json("m", (ROOT / "mover-RP4-RP4-move-Sales.json").read_text())
    started = mover.events[0].workflow_execution_started_event_attributes
    assert json.loads(started.input.payloads[0].data)["sign_in_held_by"] == "REC-2"
    # A review campaign: two stages, an operator ending stage 1, the cap confirmed; its batches.
    campaign = (ROOT / "review-campaign-two-stages.json").read_text()
    assert '"name": "reviews.apply_batch"' in campaign and "confirm_apply" in campaign
    batch = (ROOT / "review-campaign-two-stages--stage-2--batch-0.json").read_text()
    assert '"name": "reviews.record_decisions"' in batch
    # R2's identity received its hire, a duplicate, and its hire id reused with other content.
    r2 = WorkflowHistory.from_json("identity-R2", (ROOT / "identity-R2.json").read_text())
    signals = [e for e in r2.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert len(signals) == 3


def _patches(history: WorkflowHistory) -> set[str]:
    """The patch ids a run's markers record."""
    return {
        json.loads(payload.data)["id"]
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_patch"
        for payload in e.marker_recorded_event_attributes.details["patch-data"].payloads
    }


async def _histories() -> AsyncIterator[WorkflowHistory]:
    for path, _ in ALL:
        # A file is named by its run's workflow id ("/" written "--": a batch's id follows from
        # its campaign's, and replay checks it).
        yield WorkflowHistory.from_json(path.stem.replace("--", "/"), path.read_text())


@pytest.fixture(scope="module")
async def replayed() -> dict[str, Exception | None]:
    """Every history replayed by one replayer, in one pass (a replayer per history costs about
    five times as long): each history's failure, or None, by its name."""
    replayer = Replayer(workflows=registry.ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    failures: list[Exception | None] = []
    async with replayer.workflow_replay_iterator(_histories()) as results:
        async for result in results:
            failures.append(result.replay_failure)
    assert len(failures) == len(ALL)
    return {name: failure for (_, name), failure in zip(ALL, failures, strict=True)}


@pytest.mark.parametrize("name", [name for _, name in ALL])
def test_recorded_history_replays(replayed: dict[str, Exception | None], name: str) -> None:
    failure = replayed[name]
    assert failure is None, f"{name} no longer replays: {failure!r}"
