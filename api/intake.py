"""HR event intake: validate a whole body, then hand each event to its identity workflow.

Nothing here knows about HTTP; `api.app` maps the outcomes to status codes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from api.json_body import (
    InvalidBody,
    body_error,
    field_path,
    parse_json,
    validation_errors,
)
from audit.store import AccessRecordStore, ReceivedHrEvent
from domain.inbound import INBOUND, character_problem
from domain.lifecycle.events import (
    MAX_EVENTS_PER_BATCH,
    HrEvent,
    event_digest,
    identity_workflow_id,
)
from domain.lifecycle.identity import IdentityContract, IdentityWorkflowInput, LifecycleStage
from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE

# Registered by the local stack (docs/architecture.md#temporal-visibility); ids and stages only, no PII.

# Different employees are signalled concurrently, but not unboundedly: a 1,000-event batch should
# not open 1,000 simultaneous RPCs against the frontend.
DEFAULT_CONCURRENCY = 32


class EventBatch(BaseModel):
    """The batch form of the body (documentation only: bodies are parsed by `parse_intake`)."""

    events: list[HrEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class AcceptedEvent(BaseModel):
    event_id: str
    workflow_id: str


class IntakeResult(BaseModel):
    accepted: list[AcceptedEvent]
    count: int


class TemporalUnavailable(Exception):
    """Temporal did not take an event; events signalled before it are safe to send again."""


@dataclass(frozen=True)
class IntakeBody:
    events: list[HrEvent]
    # Each event's content digest (`event_digest`), by event_id.
    digests: dict[str, str]
    # Where an event's fields are in the body: `events[3].` in a batch, at the top for one event.
    batch: bool

    def field(self, index: int, name: str) -> str:
        return f"events[{index}].{name}" if self.batch else name


def parse_intake(raw: bytes) -> IntakeBody:
    """The events of a body (one event or {"events": [...]}), deduplicated, with the body's form;
    or InvalidBody."""
    document = parse_json(raw)
    if isinstance(document, dict) and "events" in document:
        extra = sorted(set(document) - {"events"})
        if extra:
            raise InvalidBody(
                "A batch body holds only 'events'.",
                [body_error(f"unexpected key(s): {', '.join(extra)}", field=extra[0])],
            )
        items = document["events"]
        if not isinstance(items, list):
            raise InvalidBody("'events' must be a list.", [body_error("must be a list", "events")])
        if not items:
            raise InvalidBody(
                "The batch is empty.", [body_error("must hold at least one event", "events")]
            )
        if len(items) > MAX_EVENTS_PER_BATCH:
            raise InvalidBody(
                f"A batch holds at most {MAX_EVENTS_PER_BATCH} events; "
                f"this one holds {len(items)}.",
                [body_error(f"at most {MAX_EVENTS_PER_BATCH} events per request", "events")],
            )
        return IntakeBody(*_validate_events(items, prefix="events"), batch=True)
    if isinstance(document, dict):
        return IntakeBody(*_validate_events([document], prefix=None), batch=False)
    raise InvalidBody(
        'The body must be one HR event (a JSON object) or {"events": [...]}.',
        [body_error(f"expected a JSON object, got {_json_type(document)}")],
    )


def _validate_events(
    items: Sequence[Any], prefix: str | None
) -> tuple[list[HrEvent], dict[str, str]]:
    errors: list[dict[str, Any]] = []
    events: list[HrEvent] = []
    first_seen: dict[str, tuple[int, str]] = {}

    def where(index: int) -> str | None:
        return f"{prefix}[{index}]" if prefix else None

    for index, item in enumerate(items):
        event_id = _readable_event_id(item)
        try:
            event = HrEvent.model_validate(item, context=INBOUND)
        except ValidationError as err:
            for error in validation_errors(err, prefix=where(index), index=index, whole="(event)"):
                errors.append(_with_event_id(error, event_id))
            continue
        digest = event_digest(event)
        seen = first_seen.get(event.event_id)
        if seen is None:
            first_seen[event.event_id] = (index, digest)
            events.append(event)
        elif seen[1] != digest:
            # One id, two meanings: which one the workflow would apply is a coin toss. Refuse.
            errors.append(
                _with_event_id(
                    {
                        "index": index,
                        "field": field_path(["event_id"], where(index)),
                        "message": f"event_id {event.event_id!r} repeats "
                        f"{field_path([], where(seen[0]), '(event)')} with different content",
                    },
                    event.event_id,
                )
            )
        # An identical repeat is simply dropped: event_id is the idempotency key.

    if errors:
        invalid = len({e["index"] for e in errors})
        raise InvalidBody(
            f"{invalid} of {len(items)} event(s) are invalid; nothing was accepted.", errors
        )
    return events, {event_id: digest for event_id, (_, digest) in first_seen.items()}


def claim_event_ids(record: AccessRecordStore, body: IntakeBody, received_at: datetime) -> None:
    """Bind each event id to its content in the record, or InvalidBody naming each reuse.

    A reuse of an event id with other content is refused, and the whole batch with it, before
    anything reaches Temporal: the sender learns at once that the event was not applied (the IETF
    idempotency-key draft answers a reused key with a 422 as well). A repeat is a quiet 202.
    """
    events = body.events
    claims = [
        ReceivedHrEvent(
            event_id=e.event_id,
            employee_id=e.worker.employee_id,
            digest=body.digests[e.event_id],
            received_at=received_at,
        )
        for e in events
    ]
    conflicts = record.claim_hr_events(claims)
    if not conflicts:
        return
    position = {e.event_id: i for i, e in enumerate(events)}
    errors = [
        {
            "index": position[c.event.event_id],
            "event_id": c.event.event_id,
            "field": body.field(position[c.event.event_id], "event_id"),
            "message": f"event_id {c.event.event_id!r} was accepted on "
            f"{c.first.received_at:%Y-%m-%dT%H:%M:%SZ} (for {c.first.employee_id}) with "
            "different content; an event_id names one event: send a new event with a new id",
        }
        for c in conflicts
    ]
    raise InvalidBody(
        f"{len(conflicts)} event(s) reuse an event_id with different content; "
        "nothing was accepted.",
        errors,
    )


def _readable_event_id(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("event_id"), str):
        event_id = item["event_id"]
        # Echoed back only when it is printable: a control character stays out of the answer.
        if event_id and character_problem(event_id) is None:
            return event_id
    return None


def _with_event_id(error: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    if event_id is None:
        return error
    return {"index": error["index"], "event_id": event_id, **error}


def _json_type(document: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(document), "a number")


async def hand_to_temporal(
    client: Client,
    events: Sequence[HrEvent],
    *,
    task_queue: str,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> IntakeResult:
    """Signal-with-start each event; returns only once Temporal has durably taken every one."""
    by_employee: dict[str, list[HrEvent]] = {}
    for event in events:
        by_employee.setdefault(event.worker.employee_id, []).append(event)
    limit = asyncio.Semaphore(concurrency)

    async def send_in_order(employee_events: list[HrEvent]) -> None:
        # One employee's events go one after the other, so the workflow receives them in body order.
        async with limit:
            for event in employee_events:
                await signal_with_start(client, event, task_queue)

    try:
        async with asyncio.TaskGroup() as group:
            for employee_events in by_employee.values():
                group.create_task(send_in_order(employee_events))
    except* (RPCError, RuntimeError) as failures:
        # RPCError: the server answered with an error or went away mid-call; RuntimeError: the
        # SDK could not (re)connect at all. Either way the caller should retry later.
        first = failures.exceptions[0]
        raise TemporalUnavailable(str(first)) from first

    accepted = [
        AcceptedEvent(
            event_id=event.event_id, workflow_id=identity_workflow_id(event.worker.employee_id)
        )
        for event in events
    ]
    return IntakeResult(accepted=accepted, count=len(accepted))


async def signal_with_start(client: Client, event: HrEvent, task_queue: str) -> None:
    employee_id = event.worker.employee_id
    # Signal-with-start: starts the entity if it is not running, else just delivers the signal.
    # Search attributes and summary only apply when this call is what starts the run.
    await client.start_workflow(
        IdentityContract.WORKFLOW,
        IdentityWorkflowInput(employee_id=employee_id),
        id=identity_workflow_id(employee_id),
        task_queue=task_queue,
        start_signal=IdentityContract.SIGNAL_HR_EVENT,
        start_signal_args=[event],
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(EMPLOYEE_ID, employee_id),
                SearchAttributePair(LIFECYCLE_STAGE, LifecycleStage.NONE.value),
            ]
        ),
        static_summary=f"Identity {employee_id}",
    )
