"""The HR intake against hostile and careless input: each refusal is a 422 problem naming the field,
and nothing of a refused batch reaches Temporal; what is accepted is what was meant."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from audit.store import AccessRecordStore
from domain.lifecycle.events import HrEvent, identity_workflow_id
from domain.lifecycle.identity import IdentityContract
from tests.support.access_api import INTAKE, problem
from tests.support.recording_client import RecordingClient

EVENTS = "/v1/hr/events"


def employee() -> str:
    return f"E{uuid.uuid4().hex[:8].upper()}"


def hire(emp: str | None = None, event_id: str | None = None, **worker: Any) -> dict[str, Any]:
    return {
        "event_id": event_id or f"hr-{uuid.uuid4().hex[:10]}",
        "type": "hire",
        "effective_at": "2026-12-01T09:00:00Z",
        "worker": {
            "employee_id": emp or employee(),
            "given_name": "Ada",
            "family_name": "Lovelace",
            **worker,
        },
    }


async def refused(
    api: httpx.AsyncClient,
    recording: RecordingClient,
    *,
    body: Any = None,
    content: bytes | None = None,
) -> dict[str, Any]:
    """POST a body that must be refused with 422; assert nothing of it reached Temporal."""
    before = len(recording.started)
    if content is None:
        # Escaped ASCII JSON, so a lone surrogate travels as `\ud800`, as a sender would write it.
        content = json.dumps(body).encode()
    response = await api.post(EVENTS, content=content, headers=INTAKE)
    answer = problem(response, 422)
    assert recording.started[before:] == [], "a refused batch reached Temporal"
    return answer


def fields(answer: dict[str, Any]) -> list[str]:
    return [e["field"] for e in answer["errors"]]


async def signalled(temporal: WorkflowEnvironment, emp: str, count: int) -> list[HrEvent]:
    """The HR events signalled to the identity, once `count` are in its history (signals that
    land while a workflow task runs are written when it completes)."""
    handle = temporal.client.get_workflow_handle(identity_workflow_id(emp))
    for _ in range(100):
        events = []
        async for entry in handle.fetch_history_events():
            if entry.HasField("workflow_execution_signaled_event_attributes"):
                attrs = entry.workflow_execution_signaled_event_attributes
                assert attrs.signal_name == IdentityContract.SIGNAL_HR_EVENT
                [event] = await temporal.client.data_converter.decode(
                    attrs.input.payloads, [HrEvent]
                )
                events.append(event)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"{emp}: {len(events)} of {count} events signalled")


# ---- nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1_000, 10_000])
async def test_deeply_nested_json_is_422_not_500(
    api: httpx.AsyncClient, recording: RecordingClient, depth: int
) -> None:
    answer = await refused(api, recording, content=b"[" * depth + b"]" * depth)
    assert answer["errors"] == [
        {"field": "(body)", "message": f"nested {depth} levels deep; at most 32 are accepted"}
    ]
    # Deep inside an otherwise fine event, too.
    event = hire()
    event["worker"]["attributes"] = {"x": "y"}
    raw = httpx.Request("POST", "/", json=event).content
    nested = raw.replace(b'"y"', b"[" * depth + b"]" * depth)
    inner = await refused(api, recording, content=nested)
    assert inner["errors"][0]["message"].startswith(f"nested {depth + 3} levels deep")


async def test_other_unparseable_bodies_are_422(
    api: httpx.AsyncClient, recording: RecordingClient
) -> None:
    for content, says in [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"event_id": "a", "event_id": "b"}', "appears twice"),
        (b'{"effective_at": NaN}', "NaN is not a JSON number"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"", "a JSON document is required"),
    ]:
        answer = await refused(api, recording, content=content)
        assert says in answer["errors"][0]["message"], (content[:20], answer)


# ---- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 0, 1796000000, 1796000000.5, "1796000000", True])
async def test_numeric_timestamps_are_refused(
    api: httpx.AsyncClient, recording: RecordingClient, value: Any
) -> None:
    answer = await refused(api, recording, body={**hire(), "effective_at": value})
    assert fields(answer) == ["effective_at"]
    answer = await refused(api, recording, body={**hire(), "occurred_at": value})
    assert fields(answer) == ["occurred_at"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2026-12-01T09:00:00", "timezone"),
        ("2026-12-01", "timezone"),
        ("next tuesday", "ISO-8601"),
        ("9999-01-01T00:00:00Z", "between the years 1900 and 2199"),
        (" 2026-12-01T09:00:00Z", "ISO-8601"),
    ],
)
async def test_timestamps_must_be_iso_with_a_zone_in_range(
    api: httpx.AsyncClient, recording: RecordingClient, value: str, says: str
) -> None:
    answer = await refused(api, recording, body={**hire(), "effective_at": value})
    assert fields(answer) == ["effective_at"] and says in answer["errors"][0]["message"]


# ---- reused event ids ---------------------------------------------------------------------------


async def test_a_reused_event_id_with_other_content_is_refused_in_a_later_request(
    api: httpx.AsyncClient,
    recording: RecordingClient,
    temporal: WorkflowEnvironment,
    store: AccessRecordStore,
) -> None:
    emp = employee()
    first = hire(emp)
    accepted = await api.post(EVENTS, json=first, headers=INTAKE)
    assert accepted.status_code == 202, accepted.text

    changed = {**first, "worker": {**first["worker"], "family_name": "Byron"}}
    answer = await refused(api, recording, body={"events": [hire(), changed]})
    [error] = answer["errors"]
    assert error["field"] == "events[1].event_id" and error["index"] == 1
    assert error["event_id"] == first["event_id"]
    assert "different content" in error["message"] and emp in error["message"]

    # The same event again, even with its time in another zone, is a quiet repeat.
    same = {**first, "effective_at": "2026-12-01T10:00:00+01:00"}
    again = await api.post(EVENTS, json=same, headers=INTAKE)
    assert again.status_code == 202, again.text
    assert [e.worker.family_name for e in await signalled(temporal, emp, 2)] == ["Lovelace"] * 2


async def test_an_id_refused_for_one_event_binds_no_id_of_its_batch(
    api: httpx.AsyncClient, recording: RecordingClient
) -> None:
    taken = hire()
    assert (await api.post(EVENTS, json=taken, headers=INTAKE)).status_code == 202
    fresh = hire()
    clash = {**taken, "type": "terminate"}
    await refused(api, recording, body={"events": [fresh, clash]})
    # The fresh event was not bound by the refused batch: different content is still its own.
    other = {**fresh, "worker": {**fresh["worker"], "department": "Audit"}}
    assert (await api.post(EVENTS, json=other, headers=INTAKE)).status_code == 202


# ---- names, text and identifiers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"given_name": "Ad\u0000a Nul"}, "given_name", "control character (U+0000)"),
        ({"given_name": "\u200b\u200b"}, "given_name", "invisible formatting character (U+200B)"),
        ({"given_name": "\u2060"}, "given_name", "invisible formatting character (U+2060)"),
        ({"given_name": "   "}, "given_name", "no visible character"),
        ({"given_name": "\u0301"}, "given_name", "no visible character"),
        ({"family_name": "\ufeffLovelace"}, "family_name", "U+FEFF"),
        ({"family_name": "Lovelace\n"}, "family_name", "control character (U+000A)"),
        ({"family_name": "\u202eecalevoL"}, "family_name", "bidirectional control (U+202E)"),
        ({"given_name": "Ada\u200f"}, "given_name", "bidirectional control (U+200F)"),
        ({"department": "Fin\u0085ance"}, "department", "control character (U+0085)"),
        ({"job_title": "Analyst\u2028Lead"}, "job_title", "line separator (U+2028)"),
        ({"location": "Lon\ud800don"}, "location", "unpaired surrogate (U+D800)"),
        ({"attributes": {"clearance": "se\u0000cret"}}, "attributes.clearance", "U+0000"),
        ({"attributes": {"\u200b": "x"}}, "attributes.\u200b.[key]", "U+200B"),
        ({"employee_id": "E1234\n"}, "employee_id", "(U+000A at position 5)"),
        ({"employee_id": " E1234"}, "employee_id", "(U+0020 at position 0)"),
        ({"manager_id": "E0001\r"}, "manager_id", "letters A-Z, digits"),
    ],
)
async def test_control_and_invisible_characters_are_refused_naming_the_field(
    api: httpx.AsyncClient,
    recording: RecordingClient,
    changes: dict[str, Any],
    field: str,
    says: str,
) -> None:
    event = hire()
    event["worker"].update(changes)
    answer = await refused(api, recording, body=event)
    error = answer["errors"][0]
    assert error["field"] == f"worker.{field}", answer
    assert says in error["message"], answer


@pytest.mark.parametrize(
    ("event_id", "says"),
    [
        ("ev155903\r\nX-Injected: 1", "control character (U+000D)"),
        ("ev\u0000", "control character (U+0000)"),
        (" ev-1", "whitespace"),
        ("ev-1 ", "whitespace"),
        ("ev\u202e1", "bidirectional"),
        ("x" * 129, "longer than 128"),
    ],
)
async def test_event_ids_are_valid_as_sent_or_refused(
    api: httpx.AsyncClient, recording: RecordingClient, event_id: str, says: str
) -> None:
    answer = await refused(api, recording, body=hire(event_id=event_id))
    assert fields(answer) == ["event_id"] and says in answer["errors"][0]["message"], answer
    # An id with a control character is not echoed back into the answer.
    if "control" in says:
        assert "event_id" not in answer["errors"][0]


async def test_names_are_kept_in_nfc_and_scripts_pass_as_they_are(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment
) -> None:
    emp = employee()
    names = [
        ("Zoe\u0301", "Zoé"),  # decomposed é arrives composed
        ("  Ada  ", "Ada"),  # surrounding spaces go
        ("مريم", "مريم"),  # right-to-left letters need no controls
        # Persian keeps its zero-width non-joiner (written escaped: the letters look Latin to ruff)
        ("\u0646\u06cc\u200c\u0647\u0627", "\u0646\u06cc\u200c\u0647\u0627"),
        ("Ἀθηνᾶ", "Ἀθηνᾶ"),
        ("李", "李"),
    ]
    events = [
        {**hire(emp, event_id=f"ev-{emp}-{i}"), "type": "update" if i else "hire"}
        for i in range(len(names))
    ]
    for event, (sent, _) in zip(events, names, strict=True):
        event["worker"]["given_name"] = sent
    response = await api.post(EVENTS, json={"events": events}, headers=INTAKE)
    assert response.status_code == 202, response.text
    given = [e.worker.given_name for e in await signalled(temporal, emp, len(names))]
    assert given == [n for _, n in names]


@pytest.mark.parametrize(
    "event_id",
    ["ev155903-évènement-ü", "событие-42", "事件-七", "حدث-٣", "घटना-५", "🎉-launch", "e" * 128],
)
async def test_event_ids_in_any_script_are_taken_unchanged(
    api: httpx.AsyncClient, temporal: WorkflowEnvironment, event_id: str
) -> None:
    emp = employee()
    response = await api.post(EVENTS, json=hire(emp, event_id=event_id), headers=INTAKE)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"][0]["event_id"] == event_id
    assert [e.event_id for e in await signalled(temporal, emp, 1)] == [event_id]


async def test_a_hire_without_names_is_refused_and_the_schema_says_so(
    api: httpx.AsyncClient, recording: RecordingClient
) -> None:
    import jsonschema

    event = hire()
    del event["worker"]["family_name"]
    answer = await refused(api, recording, body=event)
    assert "a hire needs worker.family_name" in answer["errors"][0]["message"]

    spec = (await api.get("/openapi.json")).json()
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/HrEvent", "components": spec["components"]}
    )
    assert not validator.is_valid(event)
    assert validator.is_valid({**event, "type": "terminate"})
    assert validator.is_valid(hire())
