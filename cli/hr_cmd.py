"""`tenure hr import FILE`: send an HR feed (JSON lines or CSV) to the intake API, with progress.

The API validates; this command only reads the file, batches it and reports per line. Events are
idempotent by event_id, so importing the same file twice is safe.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from domain.lifecycle.events import MAX_EVENTS_PER_BATCH
from stack.stack_file import read_stack_file

EVENTS_PATH = "/v1/hr/events"
DEFAULT_BATCH_SIZE = 200

_EVENT_COLUMNS = ("event_id", "type", "effective_at", "occurred_at")
_WORKER_COLUMNS = (
    "employee_id",
    "given_name",
    "family_name",
    "department",
    "job_title",
    "manager_id",
    "location",
    "employment_type",
)
_REQUIRED_COLUMNS = ("event_id", "type", "effective_at", "employee_id")
_ATTRIBUTE_PREFIX = "attr_"
_INDEXED_FIELD = re.compile(r"^events\[(\d+)\]\.?")


class FileProblems(Exception):
    """The file cannot be read as events; `problems` are (line number, message) pairs."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the file")
        self.problems = problems


class ImportAborted(Exception):
    """The API cannot take events at all (bad token, unreachable): stop sending."""


@dataclass(frozen=True)
class SourceEvent:
    line: int
    event: dict[str, Any]

    @property
    def event_id(self) -> str:
        value = self.event.get("event_id")
        return value.strip() if isinstance(value, str) else "?"


@dataclass(frozen=True)
class Rejection:
    line: int
    event_id: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    line: int
    event_id: str
    first_line: int


@dataclass
class ImportSummary:
    read: int = 0
    accepted: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return not self.rejected and self.aborted is None


# --- reading files ---------------------------------------------------------------------------


def read_events(path: Path) -> list[SourceEvent]:
    """Events of a JSON-lines file, or of a CSV file by its .csv extension; else FileProblems."""
    try:
        # utf-8-sig: spreadsheets often save CSV with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise FileProblems([(0, f"cannot read {path}: {err}")]) from err
    events = _read_csv(text) if path.suffix.lower() == ".csv" else _read_json_lines(text)
    if not events:
        raise FileProblems([(0, f"{path} holds no events")])
    return events


def _read_json_lines(text: str) -> list[SourceEvent]:
    events: list[SourceEvent] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append((number, f"not valid JSON: {err.msg} (column {err.colno})"))
            continue
        if not isinstance(value, dict):
            problems.append((number, f"expected one event as a JSON object, got {_kind(value)}"))
            continue
        events.append(SourceEvent(number, value))
    if problems:
        raise FileProblems(problems)
    return events


def _kind(value: Any) -> str:
    names = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _read_csv(text: str) -> list[SourceEvent]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    problems = [
        (1, f"unknown column {c!r}")
        for c in columns
        if c not in _EVENT_COLUMNS
        and c not in _WORKER_COLUMNS
        and not c.startswith(_ATTRIBUTE_PREFIX)
    ]
    problems += [(1, f"missing column {c!r}") for c in _REQUIRED_COLUMNS if c not in columns]
    if problems:
        raise FileProblems(problems)
    reader.fieldnames = columns

    events: list[SourceEvent] = []
    try:
        for row in reader:
            if None in row:
                problems.append((reader.line_num, "more cells than the header has columns"))
                continue
            events.append(SourceEvent(reader.line_num, _event_from_row(row)))
    except csv.Error as err:
        problems.append((reader.line_num, f"not valid CSV: {err}"))
    if problems:
        raise FileProblems(problems)
    return events


def _event_from_row(row: dict[str, str | None]) -> dict[str, Any]:
    # An empty cell means "absent", so the API applies the contract's defaults and rules. Spaces
    # that spreadsheets pad cells with are trimmed; nothing else is (a line break or tab inside a
    # quoted cell reaches the API, which refuses it where it may not be).
    cells = {k: v.strip(" ") for k, v in row.items() if v is not None and v.strip(" ")}
    event: dict[str, Any] = {k: cells[k] for k in _EVENT_COLUMNS if k in cells}
    worker: dict[str, Any] = {k: cells[k] for k in _WORKER_COLUMNS if k in cells}
    attributes = {
        k.removeprefix(_ATTRIBUTE_PREFIX): v
        for k, v in cells.items()
        if k.startswith(_ATTRIBUTE_PREFIX)
    }
    if attributes:
        worker["attributes"] = attributes
    event["worker"] = worker
    return event


def drop_duplicates(events: Sequence[SourceEvent]) -> tuple[list[SourceEvent], ImportSummary]:
    """Events to send once each; identical repeats and conflicting ones recorded in a summary."""
    summary = ImportSummary(read=len(events))
    first: dict[str, SourceEvent] = {}
    unique: list[SourceEvent] = []
    for item in events:
        earlier = first.get(item.event_id)
        if earlier is None:
            first[item.event_id] = item
            unique.append(item)
        elif _canonical(earlier.event) == _canonical(item.event):
            summary.duplicates.append(Duplicate(item.line, item.event_id, earlier.line))
        else:
            # The workflow would silently keep whichever came first: refuse the later one loudly.
            reason = f"event_id repeats line {earlier.line} with different content"
            summary.rejected.append(Rejection(item.line, item.event_id, reason))
    return unique, summary


def _canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


# --- sending ---------------------------------------------------------------------------------


def send_events(
    http: httpx.Client,
    events: Sequence[SourceEvent],
    summary: ImportSummary,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int], None] = lambda _: None,
    retry_delays: Sequence[float] = (1.0, 3.0, 10.0),
) -> ImportSummary:
    """Post `events` in batches, filling `summary`; `http` carries base URL and token."""
    for start in range(0, len(events), batch_size):
        batch = list(events[start : start + batch_size])
        try:
            _send_batch(http, batch, summary, retry_delays)
        except ImportAborted as err:
            summary.aborted = f"{err} ({len(events) - start} event(s) not sent)"
            break
        on_progress(len(batch))
    return summary


def _send_batch(
    http: httpx.Client,
    batch: list[SourceEvent],
    summary: ImportSummary,
    retry_delays: Sequence[float],
) -> None:
    while batch:
        response = _post(http, [item.event for item in batch], retry_delays)
        if response.status_code == 202:
            summary.accepted += [a["event_id"] for a in response.json()["accepted"]]
            return
        if response.status_code == 401:
            raise ImportAborted("the API refused the intake token (401)")
        problem = _problem(response)
        indexed = _rejections_by_index(batch, problem)
        if response.status_code != 422 or not indexed:
            # Not about particular events (wrong shape, too large, ...): the whole batch fails.
            reason = f"{response.status_code}: {problem.get('detail') or response.text[:200]}"
            summary.rejected += [Rejection(i.line, i.event_id, reason) for i in batch]
            return
        # The API takes all or nothing; the rest of the batch is fine on its own, so send it again.
        for index in sorted(indexed):
            summary.rejected += indexed[index]
        batch = [item for i, item in enumerate(batch) if i not in indexed]


def _post(
    http: httpx.Client, events: list[dict[str, Any]], delays: Sequence[float]
) -> httpx.Response:
    # Resending a batch is safe (event_id is the idempotency key), so transient failures retry.
    for attempt in range(len(delays) + 1):
        try:
            response = http.post(EVENTS_PATH, json={"events": events})
        except httpx.TransportError as err:
            failure = f"cannot reach the API at {http.base_url}: {err}"
        else:
            if response.status_code not in (502, 503, 504):
                return response
            detail = _problem(response).get("detail", "")
            failure = f"the API answered {response.status_code}: {detail}"
        if attempt < len(delays):
            time.sleep(delays[attempt])
    raise ImportAborted(failure)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _rejections_by_index(
    batch: list[SourceEvent], problem: dict[str, Any]
) -> dict[int, list[Rejection]]:
    found: dict[int, list[Rejection]] = {}
    for error in problem.get("errors") or []:
        index = error.get("index")
        if not isinstance(index, int) or not 0 <= index < len(batch):
            continue
        item = batch[index]
        # "events[3].worker.given_name" -> "worker.given_name": the line number already says which.
        where = _INDEXED_FIELD.sub("", str(error.get("field", ""))) or "(event)"
        reason = f"{where}: {error.get('message', 'invalid')}"
        found.setdefault(index, []).append(Rejection(item.line, item.event_id, reason))
    return found


# --- the command -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hr = subparsers.add_parser("hr", help="HR events: import a feed into Tenure")
    commands = hr.add_subparsers(dest="hr_command", required=True, metavar="SUBCOMMAND")
    imp = commands.add_parser(
        "import",
        help="send a JSON-lines or CSV file of HR events to the API",
        description=(
            "Send HR events from FILE (JSON lines, or CSV when it ends in .csv) to the Tenure API. "
            "URL and token default to TENURE_API_URL / TENURE_INTAKE_TOKEN, "
            "else to the local stack's .tenure/stack.json."
        ),
    )
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--api-url", help="API base URL, e.g. http://127.0.0.1:8000")
    imp.add_argument("--token", help="intake token (prefer TENURE_INTAKE_TOKEN: argv is visible)")
    imp.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        help=f"events per request, 1..{MAX_EVENTS_PER_BATCH} (default {DEFAULT_BATCH_SIZE})",
    )
    imp.set_defaults(handler=run_import)


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_EVENTS_PER_BATCH:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_EVENTS_PER_BATCH}")
    return value


def resolve_endpoint(api_url: str | None, token: str | None) -> tuple[str, str]:
    """Flag, else environment, else the running local stack; ValueError says what is missing."""
    stack_api = (read_stack_file() or {}).get("api") or {}
    url = api_url or os.environ.get("TENURE_API_URL") or stack_api.get("url")
    secret = token or os.environ.get("TENURE_INTAKE_TOKEN") or stack_api.get("intake_token")
    missing = []
    if not url:
        missing.append("API URL (--api-url or TENURE_API_URL)")
    if not secret:
        missing.append("intake token (--token or TENURE_INTAKE_TOKEN)")
    if missing:
        raise ValueError(
            f"no {' and no '.join(missing)}, and no running local stack (.tenure/stack.json) "
            "to take them from"
        )
    return str(url), str(secret)


def run_import(args: argparse.Namespace) -> int:
    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        url, token = resolve_endpoint(args.api_url, args.token)
    except ValueError as problem:
        err.print(f"[red]error:[/red] {escape(str(problem))}")
        return 2
    try:
        events = read_events(args.file)
    except FileProblems as problems:
        err.print(f"[red]error:[/red] nothing was sent; {escape(str(args.file))} has problems:")
        for line, message in problems.problems:
            err.print(f"  line {line}: {escape(message)}" if line else f"  {escape(message)}")
        return 2

    unique, summary = drop_duplicates(events)
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url, headers=headers, timeout=120.0) as http,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        ) as progress,
    ):
        task = progress.add_task(f"Importing {escape(args.file.name)}", total=len(unique))
        send_events(
            http,
            unique,
            summary,
            batch_size=args.batch_size,
            on_progress=lambda n: progress.advance(task, n),
        )
    print_summary(out, args.file, summary)
    return 0 if summary.ok else 1


def print_summary(console: Console, path: Path, summary: ImportSummary) -> None:
    colour = "green" if summary.ok else "red"
    console.print(
        f"[{colour}]{escape(str(path))}: {summary.read} read, {len(summary.accepted)} accepted, "
        f"{len(summary.rejected)} rejected, {len(summary.duplicates)} duplicate(s)[/{colour}]"
    )
    if summary.rejected:
        console.print("Rejected:")
        for r in sorted(summary.rejected, key=lambda r: r.line):
            console.print(f"  line {r.line} ({escape(r.event_id)}): {escape(r.reason)}")
    if summary.duplicates:
        console.print("Duplicates (identical, sent once):")
        for d in summary.duplicates:
            console.print(f"  line {d.line} ({escape(d.event_id)}): same as line {d.first_line}")
    if summary.aborted:
        console.print(f"[red]Stopped:[/red] {escape(summary.aborted)}")
