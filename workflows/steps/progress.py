"""How the joiner, mover and leaver workflows report their progress.

Each keeps a progress model (phase, steps done, warnings) that its progress query returns, and shows
what it is doing as the run's current details in Temporal UI. Writing either records no command in
history, so replay does not depend on it.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from temporalio import workflow


class Progress(Protocol):
    """What the progress models of domain/lifecycle/joiner.py, mover.py and leaver.py have in common."""

    phase: str
    done: list[str]
    warnings: list[str]


P = TypeVar("P", bound=Progress)


class ProgressReporter(Generic[P]):
    """Writes a workflow's progress model, which `model` is (the query returns it as it is)."""

    def __init__(self, model: P) -> None:
        self.model = model

    def phase(self, phase: str, details: str) -> None:
        """Enter a phase, and say what it does in the run's current details."""
        self.model.phase = phase
        workflow.set_current_details(details)

    def done(self, step: str) -> None:
        self.model.done.append(step)

    def warn(self, warning: str) -> None:
        self.model.warnings.append(warning)
