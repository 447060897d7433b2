"""What the approval engine needs from the workflow hosting it, and what a pass over the stages
comes to. The host owns the story, the record, timers that also wake on its own events, and the
activities (which it names: the engine names none)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.approval.contract import (
        ApprovalStoryKind,
        ResolveApproversInput,
        ResolvedApprovers,
        StageView,
    )


class ApprovalResult(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    # The host withdrew it (cancelled, the person left) or its hard stop came first.
    INTERRUPTED = "interrupted"


class ApprovalHost(Protocol):
    def closed_refusal(self) -> str:
        """Why nothing takes a decision now (no stage is open), in the host's words."""
        ...

    def interrupted(self, hard_stop: datetime | None) -> bool:
        """The open stage is withdrawn: the host's own reasons, or `hard_stop` has passed."""
        ...

    def stage_opened(self, view: StageView) -> None: ...

    def tell(
        self,
        kind: ApprovalStoryKind,
        actor: str,
        text: str,
        at: datetime | None = None,
        **data: Any,
    ) -> None:
        """Add a line to the story; `at` when it happened earlier than now."""
        ...

    async def sleep_until(self, at: datetime | None, what: str) -> bool:
        """Wait for `at` or any change (a decision, a withdrawal); True when a change came first."""
        ...

    async def record(self) -> None: ...

    async def resolve_approvers(self, input: ResolveApproversInput) -> ResolvedApprovers: ...

    async def notify(self, to: list[str], subject: str, html: str) -> object:
        """Mail people; a failure to mail must not fail the stage."""
        ...
