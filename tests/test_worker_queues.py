"""TENURE_WORKER_QUEUES: which task queues a worker process polls (the local stack runs
incidents in a process of their own)."""

from __future__ import annotations

import pytest

from workers.main import worker_queues


def test_default_is_every_queue() -> None:
    assert worker_queues("") == ["identity", "reviews", "security"]


def test_a_chosen_subset_in_its_order_once() -> None:
    assert worker_queues(" Security ") == ["security"]
    assert worker_queues("identity,reviews,identity") == ["identity", "reviews"]


def test_an_unknown_queue_is_named() -> None:
    with pytest.raises(ValueError, match="unknown incidents"):
        worker_queues("identity,incidents")
