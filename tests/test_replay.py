"""Replay recorded histories against today's workflow code: a change that would break running
workflows (non-determinism) fails here, before it reaches a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.support.lifecycle import LIFECYCLE_WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
# Histories of the first release (hires only), kept as recorded: identities and joiners started by
# that release must go on replaying on today's code after an upgrade.
RELEASE_1 = sorted((Path(__file__).parent / "histories" / "release-1").glob("*.json"))


def test_histories_are_recorded() -> None:
    # Every lifecycle workflow type: future- and past-dated hires, a corrected leave date followed by
    # retention, a hire withdrawn before its start date, and a mover.
    names = {p.stem.split("-")[0] for p in HISTORIES}
    assert names == {"identity", "joiner", "leaver", "retention", "mover"} and len(HISTORIES) >= 12


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(p.stem, p.read_text()) for p in HISTORIES + RELEASE_1],
    ids=[p.stem for p in HISTORIES] + [f"release-1/{p.stem}" for p in RELEASE_1],
)
async def test_recorded_history_replays(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=LIFECYCLE_WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
