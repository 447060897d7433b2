"""HR event intake: validate a whole body, then hand each event to its identity workflow.

Nothing here knows about HTTP; `api.app` maps the outcomes to status codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from domain.events import MAX_EVENTS_PER_BATCH, HrEvent, identity_workflow_id
from domain.identity import IdentityContract, IdentityWorkflowInput, LifecycleStage
from domain.search_attributes import EMPLOYEE_ID, LIFECYCLE_STAGE

# Registered by the local stack (DESIGN.md, "Temporal visibility"); ids and stages only, no PII.

# Different employees are signalled concurrently, but not unboundedly: a 1,000-event batch should
# not open 1,000 simultaneous RPCs against the frontend.
DEFAULT_CONCURRENCY = 32


class EventBatch(BaseModel):
    """The batch form of the body (documentation only: bodies are parsed by `parse_body`)."""

    events: list[HrEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class AcceptedEvent(BaseModel):
    event_id: str
    workflow_id: str


class IntakeResult(BaseModel):
    accepted: list[AcceptedEvent]
    count: int


class InvalidBody(Exception):
    """The body cannot be accepted; `errors` names each invalid event and field."""

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class TemporalUnavailable(Exception):
    """Temporal did not take an event; events signalled before it are safe to send again."""


def parse_body(raw: bytes) -> list[HrEvent]:
    """The events of a body (one event or {"events": [...]}), deduplicated, or InvalidBody."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidBody("The body is not valid JSON.", [_body_error(str(err))]) from err

    if isinstance(document, dict) and "events" in document:
        extra = sorted(set(document) - {"events"})
        if extra:
            raise InvalidBody(
                "A batch body holds only 'events'.",
                [_body_error(f"unexpected key(s): {', '.join(extra)}", field=extra[0])],
            )
        items = document["events"]
        if not isinstance(items, list):
            raise InvalidBody("'events' must be a list.", [_body_error("must be a list", "events")])
        if not items:
            raise InvalidBody(
                "The batch is empty.", [_body_error("must hold at least one event", "events")]
            )
        if len(items) > MAX_EVENTS_PER_BATCH:
            raise InvalidBody(
                f"A batch holds at most {MAX_EVENTS_PER_BATCH} events; "
                f"this one holds {len(items)}.",
                [_body_error(f"at most {MAX_EVENTS_PER_BATCH} events per request", "events")],
            )
        return _validate_events(items, prefix="events")
    if isinstance(document, dict):
        return _validate_events([document], prefix=None)
    raise InvalidBody(
        'The body must be one HR event (a JSON object) or {"events": [...]}.',
        [_body_error(f"expected a JSON object, got {type(document).__name__}")],
    )


def _validate_events(items: Sequence[Any], prefix: str | None) -> list[HrEvent]:
    errors: list[dict[str, Any]] = []
    events: list[HrEvent] = []
    first_seen: dict[str, tuple[int, HrEvent]] = {}

    def field_path(index: int, loc: Sequence[str | int]) -> str:
        base = f"{prefix}[{index}]" if prefix else ""
        for part in loc:
            base += f"[{part}]" if isinstance(part, int) else (f".{part}" if base else str(part))
        return base or "(event)"

    for index, item in enumerate(items):
        event_id = _readable_event_id(item)
        try:
            event = HrEvent.model_validate(item)
        except ValidationError as err:
            for problem in err.errors(include_url=False, include_input=False):
                path = field_path(index, problem["loc"])
                errors.append(_event_error(index, event_id, path, _message(problem)))
            continue
        seen = first_seen.get(event.event_id)
        if seen is None:
            first_seen[event.event_id] = (index, event)
            events.append(event)
        elif seen[1] != event:
            # One id, two meanings: which one the workflow would apply is a coin toss. Refuse.
            errors.append(
                _event_error(
                    index,
                    event.event_id,
                    field_path(index, ["event_id"]),
                    f"event_id {event.event_id!r} repeats {field_path(seen[0], [])} "
                    "with different content",
                )
            )
        # An identical repeat is simply dropped: event_id is the idempotency key.

    if errors:
        invalid = len({e["index"] for e in errors})
        raise InvalidBody(
            f"{invalid} of {len(items)} event(s) are invalid; nothing was accepted.", errors
        )
    return events


def _readable_event_id(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("event_id"), str):
        return item["event_id"].strip() or None
    return None


def _message(problem: Any) -> str:
    message = str(problem["msg"])
    # Our own validators raise ValueError; pydantic prefixes their text with "Value error, ".
    return message.removeprefix("Value error, ")


def _event_error(index: int, event_id: str | None, field: str, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"index": index}
    if event_id is not None:
        error["event_id"] = event_id
    return {**error, "field": field, "message": message}


def _body_error(message: str, field: str = "(body)") -> dict[str, Any]:
    return {"field": field, "message": message}


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
                await _signal_with_start(client, event, task_queue)

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


async def _signal_with_start(client: Client, event: HrEvent, task_queue: str) -> None:
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
