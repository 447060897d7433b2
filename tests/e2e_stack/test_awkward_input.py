"""End to end on a running stack: a corpus of awkward but valid HR events (ids and names in many
scripts, the longest ids and names the contract allows, ids full of URL and filter characters).
Every event the intake answers 202 for reaches a final outcome on its identity within a bounded
time, is provisioned as meant, and nothing is left retrying. Ids no header could carry (CR, LF,
NUL) are refused at the door instead."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import EventOutcome, LifecycleStage
from domain.policy.model import Policy
from tests.support.e2e import YESTERDAY, Apis, assert_provisioned_once, hire, identity, wait_until

pytestmark = pytest.mark.e2e

FINAL = {
    EventOutcome.APPLIED,
    EventOutcome.DUPLICATE,
    EventOutcome.IGNORED,
    EventOutcome.HELD,
    EventOutcome.CONFLICT,
}
RUN = uuid.uuid4().hex[:4].upper()

# (event id tail, given name, family name): each a hire of its own person.
CORPUS: list[tuple[str, str, str]] = [
    ("ev155903-évènement-ü", "Zoë", "Ünal-O'Brien"),
    ("событие-42", "Анна", "Каренина"),
    ("事件-七", "李", "小龙"),
    ("حدث-٣", "مريم", "الخوارزمي"),
    ("घटना-५", "अर्जुन", "शर्मा"),
    ("γεγονός", "Ἀθηνᾶ", "Παλλάς"),
    ("🎉-launch", "Renée", "Zoe\u0301"),  # decomposed: kept as Zoé
    ("a/b?c#d&e=f%20+g", "Jean-Luc", "Picard"),
    ("' OR 1=1 --", "Robert'); DROP", "TABLE Students;--"),
    ('<script>alert("x")</script>', "<b>Bold</b>", "&amp; Co"),
    ("x" * 100, "A" * 64, "B" * 64),
    ("with spaces inside", "Mary Ann", "van der Berg"),
]


def corpus_events() -> list[dict[str, Any]]:
    events = []
    for i, (tail, given, family) in enumerate(CORPUS):
        employee_id = f"AW{RUN}{i:02d}"
        event_id = f"{RUN}-{tail}"[:128]
        events.append(
            hire(
                employee_id,
                event_id=event_id,
                given_name=given,
                family_name=family,
                department="Finance" if i % 2 else "Sales",
                location="Berlin",
                attributes={"cost centre": f"CC-{i}", "note": "naïve café"},
            )
        )
    return events


async def test_awkward_but_valid_events_all_reach_a_final_outcome(
    apis: Apis, temporal: Client, demo_policy: Policy
) -> None:
    hires = corpus_events()
    accepted = await apis.post_events(hires)
    assert accepted.status_code == 202, accepted.text

    first, second = hires[0], hires[1]

    async def first_hire_taken() -> bool:
        # The events below are about what follows an applied hire: a stale update dated before
        # the hire must not reach the identity before the hire itself does (it would be an
        # initial load, applied as the hire, and the hire then ignored).
        state = await identity(temporal, first["worker"]["employee_id"])
        return state is not None and (
            state.running_transition is not None
            or any(h.event_id == first["event_id"] for h in state.history)
        )

    await wait_until(first_hire_taken, 120, "the first hire to be taken up")
    later = [
        # The same event again: a duplicate.
        first,
        # A move with an id longer than any above, then an update dated before it: stale.
        {
            **first,
            "event_id": f"{RUN}-move-" + "ü" * 100,
            "type": "update",
            "effective_at": YESTERDAY.isoformat(),
            "worker": {**first["worker"], "job_title": "Controller"},
        },
        {
            **first,
            "event_id": f"{RUN}-stale-αβγ",
            "type": "update",
            "effective_at": (YESTERDAY - timedelta(days=2)).isoformat(),
        },
        # A leave for the second person, after their start (one dated on it would withdraw it).
        {
            "event_id": f"{RUN}-leave-ñ",
            "type": "terminate",
            "effective_at": datetime.now(UTC).isoformat(),
            "worker": {"employee_id": second["worker"]["employee_id"]},
        },
        # A leave for someone never hired: held.
        {
            "event_id": f"{RUN}-held-😴",
            "type": "terminate",
            "effective_at": YESTERDAY.isoformat(),
            "worker": {"employee_id": f"AW{RUN}ZZ"},
        },
    ]
    answered = await apis.post_events(later)
    assert answered.status_code == 202, answered.text
    every = [*hires, *later]

    async def all_final() -> bool:
        for event in every:
            state = await identity(temporal, event["worker"]["employee_id"])
            if state is None or state.running_transition:
                return False
            outcomes = [h.outcome for h in state.history if h.event_id == event["event_id"]]
            if not any(o in FINAL for o in outcomes):
                return False
        return True

    await wait_until(all_final, 180, f"{len(every)} events to reach a final outcome")

    for event in hires[2:]:
        state = await identity(temporal, event["worker"]["employee_id"])
        assert state is not None
        [outcome] = [h.outcome for h in state.history if h.event_id == event["event_id"]]
        assert outcome is EventOutcome.APPLIED, (event["event_id"], state.history)
        assert state.stage is LifecycleStage.ACTIVE
    assert_outcomes(await identity(temporal, first["worker"]["employee_id"]), later)
    leaver = await identity(temporal, second["worker"]["employee_id"])
    assert leaver is not None and leaver.stage is LifecycleStage.DISABLED

    # Graph and SCIM hold what was meant: names as sent (composed), one account each.
    await assert_provisioned_once(apis, demo_policy, _nfc(hires[2:]))
    for event in hires:
        [user] = await apis.graph_users(event["worker"]["employee_id"])
        given = unicodedata.normalize("NFC", event["worker"]["given_name"])
        family = unicodedata.normalize("NFC", event["worker"]["family_name"])
        assert user["displayName"] == f"{given} {family}"
        assert user["userPrincipalName"].isascii()

    await assert_nothing_retrying(temporal, [e["worker"]["employee_id"] for e in every])


def assert_outcomes(state: Any, later: list[dict[str, Any]]) -> None:
    duplicate, move, stale = later[0], later[1], later[2]
    by_id = {h.event_id: h for h in state.history if h.event_id != duplicate["event_id"]}
    # The repeat is logged when it arrives, which may be before the hire's joiner completes.
    outcomes = {h.outcome for h in state.history if h.event_id == duplicate["event_id"]}
    assert outcomes == {EventOutcome.APPLIED, EventOutcome.DUPLICATE}
    assert by_id[move["event_id"]].outcome is EventOutcome.APPLIED
    assert by_id[stale["event_id"]].outcome is EventOutcome.IGNORED
    assert "stale" in by_id[stale["event_id"]].reason


def _nfc(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        worker = dict(event["worker"])
        for name in ("given_name", "family_name"):
            worker[name] = unicodedata.normalize("NFC", worker[name])
        out.append({**event, "worker": worker})
    return out


async def assert_nothing_retrying(temporal: Client, employee_ids: list[str]) -> None:
    """No run of these people is open but their identities, and none has an activity pending."""
    people = ", ".join(f"'{e}'" for e in dict.fromkeys(employee_ids))
    open_runs = [
        w.id
        async for w in temporal.list_workflows(
            f"EmployeeId IN ({people}) AND ExecutionStatus = 'Running'"
        )
    ]
    assert all(run.startswith("identity-") for run in open_runs), open_runs
    for employee_id in dict.fromkeys(employee_ids):
        described = await temporal.get_workflow_handle(identity_workflow_id(employee_id)).describe()
        pending = described.raw_description.pending_activities
        assert not pending, (employee_id, [(a.activity_type.name, a.attempt) for a in pending])


@pytest.mark.parametrize("tail", ["ev\r\n1", "ev\n2", "ev\x003", "ev\u20284"])
async def test_ids_no_header_could_carry_are_refused_at_the_door(apis: Apis, tail: str) -> None:
    event = hire(f"AW{RUN}XX", event_id=f"{RUN}-{tail}")
    refused = await apis.post_events([event])
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "events[0].event_id"
