"""The approval engine with a subject that is not an access request (a role activation), on the
time-skipping server: quorum, reminders, escalation, fallback and timeout, the validator's refusals
in the subject's and the host's words, and mails worded by the subject."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.approval.contract import Decision, DecisionRefusal
from domain.approval.stages import ApprovalStage
from tests.support.role_activation import (
    ROLE_ACTIVATION,
    ActivationDecision,
    ActivationInput,
    ActivationView,
    RoleActivationSubject,
    RoleActivationWorkflow,
    RoleDirectory,
)

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


class Activations:
    def __init__(self, env: WorkflowEnvironment, queue: str, directory: RoleDirectory) -> None:
        self.env, self.queue, self.directory = env, queue, directory
        self.handles: list[WorkflowHandle] = []

    async def start(self, person: str, *stages: dict[str, Any]) -> WorkflowHandle:
        activation_id = f"activation-{person}-{uuid.uuid4()}"
        subject = RoleActivationSubject(
            activation_id=activation_id,
            role="Billing Admin",
            person_id=person,
            reason="month-end <close>",
            manager_id="MGR",
            role_owners=["OWN1"],
        )
        handle = await self.env.client.start_workflow(
            ROLE_ACTIVATION,
            ActivationInput(
                subject=subject, stages=[ApprovalStage.model_validate(s) for s in stages]
            ),
            id=activation_id,
            task_queue=self.queue,
            result_type=ActivationView,
        )
        self.handles.append(handle)
        return handle

    async def decide(
        self, handle: WorkflowHandle, who: str, decision: Decision = Decision.APPROVE
    ) -> str:
        # The time-skipping server loses an update sent while an activity runs (a real one does
        # not): wait for a quiet moment, as tests/support/access.py does.
        for _ in range(300):
            if not (await handle.describe()).raw_description.pending_activities:
                break
            await asyncio.sleep(0.02)
        return await handle.execute_update(
            "decide", ActivationDecision(actor=who, decision=decision), result_type=str
        )

    async def refusal(self, handle: WorkflowHandle, who: str) -> ApplicationError:
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await self.decide(handle, who)
        assert isinstance(failed.value.cause, ApplicationError)
        return failed.value.cause


@pytest.fixture(scope="module")
async def activations(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Activations]:
    directory = RoleDirectory(second_level={"MGR": "MGR2"})
    queue = f"approval-engine-{uuid.uuid4()}"
    harness = Activations(time_skipping_env, queue, directory)
    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=[RoleActivationWorkflow],
        activities=[directory.resolve_approvers, directory.notify],
    ):
        yield harness
        for handle in harness.handles:  # timers left running would stall time skipping
            try:
                await handle.terminate("test over")
            except Exception:
                pass  # already closed


async def until(
    handle: WorkflowHandle, check: Callable[[ActivationView], bool], what: str
) -> ActivationView:
    for _ in range(300):
        current = await handle.query("details", result_type=ActivationView)
        if check(current):
            return current
        await asyncio.sleep(0.03)
    raise AssertionError(f"never reached: {what} (story: {[line.text for line in current.story]})")


def on_time(actual: datetime, due: datetime) -> bool:
    return due <= actual < due + MINUTE


def lines(view: ActivationView, kind: str) -> list:
    return [line for line in view.story if line.kind == kind]


async def test_quorum_with_a_reminder_in_the_subjects_words(activations: Activations) -> None:
    handle = await activations.start(
        "P1",
        {"approvers": [{"people": ["P1", "R1", "R2", "R3"]}], "require": 2, "deadline": "2d"},
    )
    opened = await until(handle, lambda v: v.waiting_on is not None, "stage open")
    stage = opened.waiting_on
    assert stage is not None
    # The person activating is never asked, though the policy names them.
    assert stage.approvers == ["R1", "R2", "R3"]
    ask = activations.directory.mails_to("R1")[0]
    assert ask.to == ["R1", "R2", "R3"]
    assert ask.subject == "Approve: activate Billing Admin for P1"
    assert ask.html == (
        "<p>P1 wants the <b>Billing Admin</b> role: month-end &lt;close&gt;</p>"
        f"<p>stage 1: 2 approvals before {stage.deadline:%Y-%m-%d %H:%M} UTC "
        f"(<code>tenure pim approve {handle.id}</code>).</p>"
    )

    own = await activations.refusal(handle, "P1")
    assert (own.type, own.message) == (
        DecisionRefusal.NOT_ALLOWED,
        "you cannot approve your own role activation",
    )
    stranger = await activations.refusal(handle, "MGR")
    assert stranger.message == "you are not an approver of the stage waiting for a decision"
    assert "still waits" in await activations.decide(handle, "R1")
    repeat = await activations.refusal(handle, "R1")
    assert repeat.message == "you have already decided on this stage"

    # The default reminder, a day before the deadline, goes to those who have not decided.
    await activations.env.sleep(DAY + MINUTE)
    reminded = await until(handle, lambda v: bool(lines(v, "reminder")), "reminder")
    assert on_time(lines(reminded, "reminder")[0].at, stage.opened_at + DAY)
    reminder = activations.directory.mails[-1]
    assert reminder.to == ["R2", "R3"]
    assert reminder.subject == "Still waiting: activate Billing Admin for P1"

    await activations.decide(handle, "R3", Decision.APPROVE)
    approved = await until(handle, lambda v: v.result is not None, "an outcome")
    assert approved.result == "approved"
    assert approved.stages[0].approved_by == ["R1", "R3"]
    # Nothing waits now: the host says why, with the engine's "closed" type.
    late = await activations.refusal(handle, "R2")
    assert (late.type, late.message) == (
        DecisionRefusal.CLOSED,
        "the activation takes no decisions (approved)",
    )


async def test_escalation_replaces_then_fallback_then_timeout_denies(
    activations: Activations,
) -> None:
    handle = await activations.start(
        "P2",
        {
            "name": "role approvers",
            "approvers": ["manager"],
            "deadline": "3d",
            "reminders": [],
            "escalations": [
                {"after": "1d", "mode": "replace", "approvers": ["second_level_manager"]}
            ],
            "on_timeout": "escalate",
            "fallback": ["owner"],
            "fallback_deadline": "1d",
        },
    )
    opened = (await until(handle, lambda v: v.waiting_on is not None, "stage open")).stages[0]
    assert opened.approvers == ["MGR"]

    await activations.env.sleep(DAY + MINUTE)
    escalated = await until(handle, lambda v: bool(lines(v, "escalated")), "escalation")
    assert escalated.waiting_on is not None and escalated.waiting_on.approvers == ["MGR2"]
    assert on_time(lines(escalated, "escalated")[0].at, opened.opened_at + DAY)
    assert activations.directory.mails_to("MGR2")[0].subject == (
        "Now yours: activate Billing Admin for P2"
    )
    replaced = await activations.refusal(handle, "MGR")
    assert replaced.message == "this stage was escalated: your decision is no longer needed"

    # The deadline: the fallback approvers (the role's owners) get a day of their own.
    await activations.env.sleep(2 * DAY)
    fallback = await until(
        handle,
        lambda v: v.waiting_on is not None and v.waiting_on.approvers == ["OWN1"],
        "fallback asked",
    )
    timeout = lines(fallback, "timeout")[0]
    assert on_time(timeout.at, opened.opened_at + 3 * DAY)
    assert timeout.text == (
        "role approvers: nobody decided in time; escalated to the fallback approvers for 1d"
    )
    ask = activations.directory.mails_to("OWN1")[0]
    assert ask.subject == "Now yours: activate Billing Admin for P2"
    assert f"before {timeout.at + DAY:%Y-%m-%d %H:%M} UTC" in ask.html

    # A reminder halfway through the fallback's day, then its deadline denies.
    await activations.env.sleep(DAY)
    denied = await until(handle, lambda v: v.result is not None, "an outcome")
    assert denied.result == "denied"
    assert activations.directory.mails_to("OWN1")[-1].subject == (
        "Still waiting: activate Billing Admin for P2"
    )
    timeouts = lines(denied, "timeout")
    assert on_time(timeouts[1].at, timeouts[0].at + DAY)
    assert timeouts[1].text == "role approvers: nobody decided in time; denied by policy"
    assert denied.stages[0].outcome == "timed out: denied"


async def test_a_timeout_may_approve_by_policy(activations: Activations) -> None:
    handle = await activations.start(
        "P3", {"approvers": [{"people": ["R1"]}], "deadline": "1d", "on_timeout": "approve"}
    )
    opened = (await until(handle, lambda v: v.waiting_on is not None, "stage open")).stages[0]
    await activations.env.sleep(DAY + MINUTE)
    approved = await until(handle, lambda v: v.result is not None, "an outcome")
    assert approved.result == "approved"
    assert on_time(lines(approved, "timeout")[0].at, opened.opened_at + DAY)
    assert lines(approved, "decision") == []
