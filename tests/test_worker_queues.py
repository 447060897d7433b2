"""TENURE_WORKER_QUEUES: which task queues a worker process polls (the local stack runs
incidents in a process of their own), and TENURE_SECURITY_WORKFLOW_POLLS: how many polls the
security queue keeps open for a burst of incidents."""

from __future__ import annotations

import pytest

from workers.main import SECURITY_WORKFLOW_POLLS, security_workflow_polls, worker_queues


def test_default_is_every_queue() -> None:
    assert worker_queues("") == ["identity", "reviews", "security"]


def test_a_chosen_subset_in_its_order_once() -> None:
    assert worker_queues(" Security ") == ["security"]
    assert worker_queues("identity,reviews,identity") == ["identity", "reviews"]


def test_an_unknown_queue_is_named() -> None:
    with pytest.raises(ValueError, match="unknown incidents"):
        worker_queues("identity,incidents")


def test_security_polls_default_and_chosen() -> None:
    assert security_workflow_polls("") == SECURITY_WORKFLOW_POLLS == 20
    assert security_workflow_polls(" 40 ") == 40


@pytest.mark.parametrize("raw", ["1", "0", "-3", "many", "2.5"])
def test_security_polls_out_of_range_are_named(raw: str) -> None:
    with pytest.raises(ValueError, match=f"TENURE_SECURITY_WORKFLOW_POLLS={raw!r}"):
        security_workflow_polls(raw)
