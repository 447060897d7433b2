"""Calling the Tenure API from the CLI as the logged-in person: one-line errors, ISO times.

Every command that acts as a person (requests, approvals, audit export) goes through the API with
the session `tenure login` saved; none talks to Temporal directly, so the API's checks always apply.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console

from cli.api_session import NotLoggedInError, authorized_client
from stack.stack_file import tenure_home


class ApiError(Exception):
    """The API refused or could not be reached; the message is one line for the terminal."""


def open_client() -> httpx.Client:
    """An httpx client on the API with the saved session's token (tests replace this)."""
    return authorized_client(tenure_home())


@contextmanager
def api_client() -> Iterator[httpx.Client]:
    try:
        client = open_client()
    except NotLoggedInError as err:
        raise ApiError(str(err)) from err
    try:
        yield client
    finally:
        client.close()


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """Send one request; its JSON answer, or ApiError carrying the problem's detail."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TransportError as err:
        raise ApiError(f"cannot reach the Tenure API at {client.base_url}: {err}") from err
    if response.is_error:
        raise ApiError(problem_line(response))
    return response.json() if response.content else None


def problem_line(response: httpx.Response) -> str:
    """A problem+json answer as one line: its detail, plus any field errors the detail omits."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = response.text.strip() or response.reason_phrase
        return _one_line(f"HTTP {response.status_code}: {text[:300]}")
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {response.status_code}")
    missing = [
        f"{e.get('field')}: {e.get('message')}"
        for e in problem.get("errors") or []
        if isinstance(e, dict) and str(e.get("field")) not in detail
    ]
    if missing:
        detail = f"{detail} ({'; '.join(missing)})"
    return _one_line(detail)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def instant(text: str) -> datetime:
    """An ISO-8601 date or time for argparse; without a zone it is the local time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date or time (e.g. 2026-12-31 or 2026-12-31T17:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


def command_console(**options: Any) -> Console:
    # No emoji codes: a resource such as `app:ledger:reader` must not print as a ledger icon.
    return Console(emoji=False, **options)


def with_api(command: Callable[[argparse.Namespace, Any, Console], int]) -> Callable[..., int]:
    """Open the session's client, run the command, and turn an API refusal into one line, exit 1."""

    def handler(args: argparse.Namespace) -> int:
        console = command_console()
        try:
            with api_client() as client:
                return command(args, client, console)
        except ApiError as err:
            print(f"tenure: {err}", file=sys.stderr)
            return 1

    return handler


def print_entry(console: Console, first: str, facts: list[str]) -> None:
    """An id on a line of its own (what the next command needs, so never cut or wrapped inside a
    table cell, whatever the terminal's width), then its facts."""
    console.print(f"[cyan]{first}[/cyan]", soft_wrap=True)
    console.print("  " + " · ".join(f for f in facts if f))


def when(value: Any) -> str:
    """Times as `2026-12-01 09:00 UTC`; empty when absent."""
    if value is None or value == "":
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
