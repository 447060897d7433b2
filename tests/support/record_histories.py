"""Record workflow histories for the replay tests: `python -m tests.support.record_histories`.

Run it when a workflow change is *meant* to change histories (and version the change with
workflow.patched so running workflows keep replaying). The recorded files are what running
workflows look like today; tests/test_replay.py replays them against the current code. Before
re-recording over histories of a release that has shipped, move them to `tests/histories/release-N/`
so they keep replaying too.

Two parts share one time-skipping server: the lifecycle (R1..R5, the demo policy) and access
requests (RA1..RA5 with their managers and approvers, tests/support/access_policy.yaml), each on its
own worker and task queue. Identity ids are global on the server, so the parts use distinct
employee ids.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.access.request import (
    AccessRequestContract,
    Actor,
    ExtendInput,
    RequestStatus,
    RequestView,
    RevokeInput,
    UpdateAnswer,
)
from domain.lifecycle.events import EventType, HrEvent, WorkerRecord, identity_workflow_id
from domain.lifecycle.identity import LifecycleStage
from domain.lifecycle.joiner import joiner_workflow_id
from domain.lifecycle.leaver import leaver_workflow_id, retention_workflow_id
from domain.lifecycle.mover import mover_workflow_id
from domain.pim.activation import (
    DeactivateInput,
    EligibilityContract,
    PimContract,
    RemoveEligibilityAsk,
    eligibility_workflow_id,
)
from domain.policy.file import DEFAULT_POLICY_PATH, load_policy
from domain.reviews.campaign import (
    CampaignProgress,
    ConfirmApplyInput,
    EndStageInput,
    Phase,
    ReviewContract,
    ReviewerItemsQuery,
    batch_workflow_id,
)
from domain.reviews.definition import ReviewDefinition
from domain.reviews.items import ReviewerItem
from domain.security.incident import (
    IncidentContract,
    IncidentView,
    RestoreAsk,
)
from tests.support.access import (
    AccessHarness,
    access_test_policy,
    access_worker,
    kinds,
    until_request,
    until_status,
    until_waiting,
)
from tests.support.fake_directory import FakeDirectory
from tests.support.identity_signal import signal_hr_event
from tests.support.lifecycle import LIFECYCLE_WORKFLOWS, lifecycle_activities, until
from tests.support.pim import PimHarness, pim_test_policy, pim_worker
from tests.support.reviews import ReviewWorld, review_world

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
QUEUE = "record-histories"
MINUTE = timedelta(minutes=1)


def _hire(employee_id: str, event_id: str, start, **worker: str) -> HrEvent:
    return HrEvent(
        event_id=event_id,
        type=EventType.HIRE,
        effective_at=start,
        worker=WorkerRecord(
            employee_id=employee_id, given_name="Ada", family_name="Lovelace", **worker
        ),
    )


def _terminate(employee_id: str, event_id: str, leave) -> HrEvent:
    return HrEvent(
        event_id=event_id,
        type=EventType.TERMINATE,
        effective_at=leave,
        worker=WorkerRecord(employee_id=employee_id),
    )


async def _wait_closed(client: Client, workflow_id: str) -> None:
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(400):
        try:
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{workflow_id} did not close")


async def _history(client: Client, workflow_id: str) -> str:
    return (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()


async def record() -> dict[str, str]:
    """Each history as JSON, by the name of its file (without .json)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    try:
        # Lifecycle first: the access part ends by terminating what it started, so no timer of
        # either part fires later with no worker to run it.
        histories = await _record_lifecycle(env)
        with tempfile.TemporaryDirectory() as tmp:
            histories |= await _record_access(env, Path(tmp) / "record.db")
    finally:
        await env.shutdown()
    return histories


async def _record_lifecycle(env: WorkflowEnvironment) -> dict[str, str]:
    """Named by workflow id."""
    histories = {}
    directory = FakeDirectory()
    policy = load_policy(DEFAULT_POLICY_PATH)
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=LIFECYCLE_WORKFLOWS,
        activities=lifecycle_activities(policy, directory),
    ):
        now = await env.get_current_time()
        future = _hire(
            "R1", "r1-hire", now + timedelta(days=30), department="Finance", manager_id="R0"
        )
        past = _hire("R2", "r2-hire", now - timedelta(days=2), department="Engineering")
        # A leaver: hired, a leave date 10 days out, corrected to 5, then retention (30 days).
        leaver = _hire("R3", "r3-hire", now - timedelta(days=5), department="Finance")
        leave_1 = _terminate("R3", "r3-leave-1", now + timedelta(days=10))
        leave_2 = _terminate("R3", "r3-leave-2", now + timedelta(days=5))
        # A hire withdrawn after its pre-hire work, before its start date.
        withdrawn = _hire("R4", "r4-hire", now + timedelta(days=10), department="Sales")
        await signal_hr_event(env.client, QUEUE, future)
        await signal_hr_event(env.client, QUEUE, past)
        await signal_hr_event(env.client, QUEUE, past)  # a duplicate, recorded as such
        await signal_hr_event(env.client, QUEUE, leaver)
        await signal_hr_event(env.client, QUEUE, withdrawn)
        # A mover: hired into Engineering, then moved to Sales with a new manager.
        mover = _hire("R5", "r5-hire", now - timedelta(days=3), department="Engineering")
        await signal_hr_event(env.client, QUEUE, mover)
        await _wait_closed(env.client, joiner_workflow_id("R3", "r3-hire"))
        await _wait_closed(env.client, joiner_workflow_id("R5", "r5-hire"))
        moved = mover.worker.model_copy(update={"department": "Sales", "manager_id": "R0"})
        await signal_hr_event(
            env.client,
            QUEUE,
            HrEvent(event_id="r5-move", type=EventType.UPDATE, effective_at=now, worker=moved),
        )
        await _wait_closed(env.client, mover_workflow_id("R5", "r5-move"))
        await signal_hr_event(env.client, QUEUE, leave_1)
        await signal_hr_event(env.client, QUEUE, leave_2)
        await env.sleep(timedelta(days=4))
        await signal_hr_event(
            env.client, QUEUE, _terminate("R4", "r4-withdraw", now + timedelta(days=10))
        )
        await _wait_closed(env.client, joiner_workflow_id("R4", "r4-hire"))
        await env.sleep(timedelta(days=27))
        for employee, event in (("R1", future), ("R2", past)):
            await _wait_closed(env.client, joiner_workflow_id(employee, event.event_id))
        # R2's hire id reused for other content: logged as a conflict, not applied.
        reused = past.worker.model_copy(update={"department": "Sales"})
        await signal_hr_event(env.client, QUEUE, past.model_copy(update={"worker": reused}))
        await _wait_closed(env.client, leaver_workflow_id("R3", "r3-leave-2"))
        await env.sleep(timedelta(days=10))
        await _wait_closed(env.client, retention_workflow_id("R3", "r3-leave-2"))
        for workflow_id in (
            identity_workflow_id("R1"),
            joiner_workflow_id("R1", "r1-hire"),
            identity_workflow_id("R2"),
            joiner_workflow_id("R2", "r2-hire"),
            identity_workflow_id("R3"),
            leaver_workflow_id("R3", "r3-leave-2"),
            retention_workflow_id("R3", "r3-leave-2"),
            identity_workflow_id("R4"),
            joiner_workflow_id("R4", "r4-hire"),
            identity_workflow_id("R5"),
            joiner_workflow_id("R5", "r5-hire"),
            mover_workflow_id("R5", "r5-move"),
        ):
            histories[workflow_id] = await _history(env.client, workflow_id)
    return histories


async def _record_access(env: WorkflowEnvironment, store: Path) -> dict[str, str]:
    """Access requests under the access test policy, each driven to its end before the next starts:
    two stages approved then expiry, an SoD denial, escalation then timeout, an approved
    extension, and a leaver whose held and pending requests are told and closed."""
    async with access_worker(env, access_test_policy(), FakeDirectory(), store) as org:
        # RM0 runs the company; RM1 manages the requesters; A1 and ALT1 are named by the policy.
        await org.hire("RM0")
        for person in ("RM1", "A1", "ALT1"):
            await org.hire(person, manager_id="RM0")
        for person in ("RA1", "RA2", "RA3", "RA4", "RA5", "RA6"):
            await org.hire(person, manager_id="RM1")
        names: dict[str, str] = {}

        # Approved by the manager, then by finance; granted for 10 days, then removed.
        two_stage = await org.request("two-stage", "RA1")
        await _approve_both_stages(org, two_stage)
        await _expire(org, two_stage)
        names["access-request-two-stage"] = two_stage.id

        # Payables granted without approval; receivables then refused by the SoD rule.
        payables = await org.request("payables", "RA2")
        await until_status(payables, RequestStatus.GRANTED)
        receivables = await org.request("receivables", "RA2")
        await until_status(receivables, RequestStatus.DENIED)
        await _wait_closed(env.client, receivables.id)
        names["access-request-sod-denied"] = receivables.id
        names["identity-RA2-sod-refused"] = identity_workflow_id("RA2")

        # Nobody decides: escalated to ALT1 after a day, reminded twice, denied at the deadline.
        escalates = await org.request("escalate-deny", "RA3")
        await until_waiting(escalates, 0)
        await env.sleep(timedelta(days=3) + MINUTE)
        await until_status(escalates, RequestStatus.DENIED)
        await _wait_closed(env.client, escalates.id)
        names["access-request-escalate-deny"] = escalates.id

        # Granted, extended by 5 days through both stages again, removed at the new end.
        extended = await org.request("two-stage", "RA4")
        granted = await _approve_both_stages(org, extended)
        assert granted.expires_at is not None
        new_end = granted.expires_at + timedelta(days=5)
        await extended.execute_update(
            AccessRequestContract.UPDATE_EXTEND,
            ExtendInput(actor=Actor(employee_id="RA4"), new_end=new_end, justification="audit"),
            result_type=UpdateAnswer,
        )
        await _approve_both_stages(org, extended)
        await until_request(extended, lambda v: v.expires_at == new_end, "end moved")
        await _expire(org, extended)
        names["access-request-extension-approved"] = extended.id

        # RA5 holds payables and waits on a two-stage request, then leaves: the identity tells
        # both requests, which remove the grant, cancel the pending one and tell it back.
        held = await org.request("payables", "RA5")
        await until_status(held, RequestStatus.GRANTED)
        pending = await org.request("two-stage", "RA5")
        await until_waiting(pending, 0)
        await org.terminate("RA5")
        await until_status(held, RequestStatus.REVOKED)
        await until_status(pending, RequestStatus.CANCELLED)
        for handle in (held, pending):
            await _wait_closed(env.client, handle.id)
        await _wait_closed(env.client, leaver_workflow_id("RA5", "RA5-leave"))
        await until(
            org.identities["RA5"],
            lambda s: s.stage is not LifecycleStage.ACTIVE and not s.packages,
            "RA5 left, its requests closed",
        )
        names["access-request-revoked-by-leaver"] = held.id
        names["access-request-cancelled-by-leaver"] = pending.id
        names["identity-RA5-leaver-with-package"] = identity_workflow_id("RA5")

        # RA6 (Finance) holds Ledger Readers by birthright and through a package; an administrator
        # revokes the package: the identity's ledger keeps the group (the ledger-release patch).
        shared = await org.request("ledger-read", "RA6")
        await until_status(shared, RequestStatus.GRANTED)
        await org.update(
            shared,
            AccessRequestContract.UPDATE_REVOKE,
            RevokeInput(actor=Actor(employee_id="ADMIN"), reason="no longer needed"),
        )
        await until_status(shared, RequestStatus.REVOKED)
        await _wait_closed(env.client, shared.id)
        await until(org.identities["RA6"], lambda s: not s.packages, "RA6's package released")
        names["access-request-revoke-keeps-birthright"] = shared.id
        names["identity-RA6-ledger-release"] = identity_workflow_id("RA6")

        # Saved before access_worker terminates what is still running (RA2's grant, identities).
        return {
            name: await _history(env.client, workflow_id) for name, workflow_id in names.items()
        }


async def _approve_both_stages(org: AccessHarness, handle: WorkflowHandle) -> RequestView:
    """Approve the two-stage package's current round (the request, or an extension: then the
    request stays granted throughout, and the caller waits for the new end)."""
    await until_waiting(handle, 0)
    await org.decide(handle, "RM1")
    await until_waiting(handle, 1)
    await org.decide(handle, "A1")
    return await until_status(handle, RequestStatus.GRANTED)


async def _expire(org: AccessHarness, handle: WorkflowHandle) -> None:
    current = await until_status(handle, RequestStatus.GRANTED)
    assert current.expires_at is not None
    await org.env.sleep(current.expires_at - await org.env.get_current_time() + MINUTE)
    await until_status(handle, RequestStatus.EXPIRED)
    await _wait_closed(org.env.client, handle.id)


async def record_reviews() -> dict[str, str]:
    """A review campaign of two stages (the second sees the first's denials), with a reminder,
    an operator ending stage 1, and the cap confirmed; its batches' histories too."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with review_world(env, Path(tmp), load_policy(DEFAULT_POLICY_PATH)) as world:
                return await _record_review(world)
    finally:
        await env.shutdown()


async def _record_review(world: ReviewWorld) -> dict[str, str]:
    for name, employee_id in (("olga", "O1"), ("alma", "A1")):
        await world.user(name, employee_id)
    for i, name in enumerate(("ann", "bob", "cas"), start=1):
        await world.user(name, f"E{i}")
    await world.group("Finance", ["ann", "bob", "cas"], ["olga"])
    definition = ReviewDefinition.model_validate(
        {
            "name": "Finance access",
            "scope": [{"groups": ["Finance"]}],
            "stages": [
                {"reviewers": ["owner"], "duration": "14d", "reminders": ["7d"]},
                {"reviewers": [{"people": ["A1"]}], "only": ["denied"], "duration": "7d"},
            ],
            "recommend": {"inactive_days": 30},
        }
    )
    # The replayer names a run by its file: the campaign's id is the file's name (its batches'
    # ids follow from it).
    campaign = await world.start("finance", definition, workflow_id="review-campaign-two-stages")
    for _ in range(300):
        progress = await world.progress(campaign)
        if progress.stages[0].batches:
            break
        await asyncio.sleep(0.05)
    batch = world.env.client.get_workflow_handle(batch_workflow_id(campaign.id, 0, 0))
    items = await _when_loaded(batch, "O1")
    ids = {i.holder_name.split("@")[0]: i.item_id for i in items}
    await world.env.sleep(timedelta(days=7, hours=1))  # the reminder
    await world.decide(
        campaign,
        0,
        0,
        actor_id="O1",
        decision="deny",
        justification="moved",
        item_ids=[ids["ann"], ids["bob"]],
    )
    await world.decide(campaign, 0, 0, actor_id="O1", decision="approve", item_ids=[ids["cas"]])
    await campaign.execute_update(
        ReviewContract.END_STAGE,
        EndStageInput(actor_id="ops", reason="all decided"),
        result_type=CampaignProgress,
    )
    second = world.env.client.get_workflow_handle(batch_workflow_id(campaign.id, 1, 0))
    await _when_loaded(second, "A1")
    await world.decide(
        campaign, 1, 0, actor_id="A1", decision="approve", justification="ok", item_ids=[ids["ann"]]
    )
    await world.decide(  # bob's removal, 1 of 3 items, is over the default cap of 25 %
        campaign, 1, 0, actor_id="A1", decision="deny", justification="left", item_ids=[ids["bob"]]
    )
    await campaign.execute_update(
        ReviewContract.END_STAGE,
        EndStageInput(actor_id="ops", reason="done"),
        result_type=CampaignProgress,
    )
    for _ in range(300):
        if (await world.progress(campaign)).phase is Phase.AWAITING_CONFIRMATION:
            break
        await asyncio.sleep(0.05)
    await campaign.execute_update(
        ReviewContract.CONFIRM_APPLY,
        ConfirmApplyInput(actor_id="ops", confirm=True, reason="checked"),
        result_type=CampaignProgress,
    )
    await campaign.result()
    client = world.env.client
    return {
        "review-campaign-two-stages": await _history(client, campaign.id),
        "review-campaign-two-stages--stage-1--batch-0": await _history(client, batch.id),
        "review-campaign-two-stages--stage-2--batch-0": await _history(client, second.id),
    }


async def _when_loaded(batch: WorkflowHandle, reviewer: str) -> list[ReviewerItem]:
    for _ in range(300):
        try:
            return await batch.query(
                ReviewContract.ITEMS,
                ReviewerItemsQuery(reviewer_id=reviewer),
                result_type=list[ReviewerItem],
            )
        except (WorkflowQueryFailedError, RPCError):  # not started, or not loaded yet
            await asyncio.sleep(0.05)
    raise AssertionError(f"{batch.id} never loaded its items")


async def record_pim() -> dict[str, str]:
    """PIM and incidents: an eligibility (granted, then removed by an administrator), an
    activation approved and removed at its end, one ended early by its holder, and an incident
    that ends an activation and suspends an eligibility, then a restore."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            policy = pim_test_policy()
            async with pim_worker(env, policy, FakeDirectory(), Path(tmp) / "r.db") as org:
                return await _record_pim(org)
    finally:
        await env.shutdown()


async def _record_pim(org: PimHarness) -> dict[str, str]:
    await org.hire("PBOSS")
    for person in ("PADMIN", "PAPPROVER", "PSEC", "RP1", "RP2", "RP3", "RP4"):
        await org.hire(person, manager_id="PBOSS")
    client = org.env.client
    for person, role in (("RP1", "global-admin"), ("RP2", "user-admin"), ("RP3", "user-admin")):
        await until_status(await org.make_eligible(person, role), RequestStatus.GRANTED)
    approved = await org.activate("RP1", "global-admin", ticket=None)
    await until_request(approved, lambda v: v.waiting_on is not None, "waiting")
    await org.decide(approved, "PAPPROVER")
    await until_status(approved, RequestStatus.GRANTED)
    await org.env.sleep(timedelta(hours=2, minutes=1))
    await until_status(approved, RequestStatus.EXPIRED)

    early = await org.activate("RP2", "user-admin", duration=timedelta(hours=4))
    await until_status(early, RequestStatus.GRANTED)
    await org.update(
        early,
        PimContract.UPDATE_DEACTIVATE,
        DeactivateInput(actor=Actor(employee_id="RP2"), reason="done"),
    )
    await until_status(early, RequestStatus.REVOKED)
    removed = client.get_workflow_handle(eligibility_workflow_id("RP2", "user-admin"))
    await org.update(
        removed,
        EligibilityContract.UPDATE_REMOVE,
        RemoveEligibilityAsk(actor=Actor(employee_id="PADMIN"), reason="rotation over"),
    )
    await until_status(removed, RequestStatus.REVOKED)

    held = await org.activate("RP3", "user-admin", duration=timedelta(hours=4))
    await until_status(held, RequestStatus.GRANTED)
    incident, _ = await org.report_incident("REC-1", "RP3")
    await until_status(held, RequestStatus.REVOKED)
    await incident.execute_update(
        IncidentContract.UPDATE_RESTORE,
        RestoreAsk(actor_id="PADMIN", reason="false positive"),
        result_type=IncidentView,
    )
    await _wait_closed(client, incident.id)
    eligible = client.get_workflow_handle(eligibility_workflow_id("RP3", "user-admin"))
    await until_request(eligible, lambda v: bool(kinds(v, "restored")), "restored")

    # A move while an incident holds the person: sign-in stays off (patch
    # suspension-holds-sign-in), then the restore.
    held_move, _ = await org.report_incident("REC-2", "RP4", "token theft")
    rp4 = org.identities["RP4"]
    await until(rp4, lambda s: s.stage is LifecycleStage.SUSPENDED, "RP4 suspended")
    await org.move("RP4", "Sales")
    await _wait_closed(client, mover_workflow_id("RP4", "RP4-move-Sales"))
    await until(rp4, lambda s: s.worker is not None and s.worker.department == "Sales", "moved")
    await held_move.execute_update(
        IncidentContract.UPDATE_RESTORE,
        RestoreAsk(actor_id="PADMIN", reason="cleared"),
        result_type=IncidentView,
    )
    await _wait_closed(client, held_move.id)
    await until(rp4, lambda s: s.stage is LifecycleStage.ACTIVE, "RP4 restored")
    return {
        "pim-activation-approved-expired": await _history(client, approved.id),
        "pim-activation-deactivated-early": await _history(client, early.id),
        "pim-activation-ended-by-incident": await _history(client, held.id),
        "pim-eligibility-removed": await _history(client, removed.id),
        "incident-suspend-restore": await _history(client, incident.id),
        "identity-RP4-moved-while-suspended": await _history(client, rp4.id),
        mover_workflow_id("RP4", "RP4-move-Sales"): await _history(
            client, mover_workflow_id("RP4", "RP4-move-Sales")
        ),
    }


RECORDERS = {"reviews": record_reviews, "pim": record_pim}

if __name__ == "__main__":
    HISTORIES.mkdir(exist_ok=True)
    # `reviews` or `pim`: only those histories (the others are left as they are).
    recorder = RECORDERS[sys.argv[1]] if sys.argv[1:] else record
    for name, history in asyncio.run(recorder()).items():
        path = HISTORIES / f"{name}.json"
        path.write_text(history)
        print(f"wrote {path}")
