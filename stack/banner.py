"""What `tenure stack run` prints once the stack answers: where things are, and the demo people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from stack.demo import ROSTER
from stack.demo_requests import DEMO_REQUESTS, WAITING, WAITING_APPROVER


def print_banner(
    console: Console, stack: dict[str, Any], stack_file: str, demo: bool = False
) -> None:
    temporal = stack["temporal"]
    lines = [
        ("Temporal", f"{temporal['address']}  (namespace {temporal['namespace']})"),
        ("Temporal UI", f"{temporal['ui_url']}/namespaces/{temporal['namespace']}/workflows"),
        ("API", stack["api"]["url"]),
        ("API docs", stack["api"]["docs_url"]),
        ("Graph", stack["graph"]["url"]),
    ]
    lines += [(f"SCIM {app}", info["url"]) for app, info in stack["scim_apps"].items()]
    lines += [
        ("Credentials", stack_file),
        ("State", stack["home"]),
        ("Logs", stack["logs"]),
    ]
    console.print("\n[bold green]Tenure local stack is up[/]")
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        console.print(f"  {label:<{width}}  {value}", highlight=False, soft_wrap=True)
    if demo:
        print_demo_hint(console)


def print_demo_hint(console: Console) -> None:
    """How to act on the demo request left waiting (it exists once the demo people are active)."""
    waiting = WAITING
    console.print(
        f"\n[bold]Demo requests[/] (made once the demo people are active, within a minute or two): "
        f"{len(DEMO_REQUESTS)} requests, one granted, one denied for SoD, and "
        f"{waiting.requester_id}'s {waiting.package_id} waiting for {WAITING_APPROVER}. "
        "Decide it as the approver:",
        highlight=False,
        soft_wrap=True,
    )
    for command in (
        f"tenure login --as {WAITING_APPROVER}",
        "tenure requests approvals",
        f"tenure requests approve {waiting.request_id}",
    ):
        console.print(f"  .venv/bin/{command}", highlight=False, soft_wrap=True, markup=False)


def print_demo_people(console: Console, events: list[dict[str, Any]]) -> None:
    table = Table(title="Demo people", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("id", "name", "department", "job title", "manager", "location", "starts"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    names = {p.employee_id: p.name for p in ROSTER}
    now = datetime.now(UTC)
    hires = [e for e in events if e["event_id"].startswith("demo-hire-")]
    for event in hires:
        worker = event["worker"]
        when = _when(event, now)
        kind = " (contractor)" if worker.get("employment_type") == "contractor" else ""
        extra = "".join(f", {k}={v}" for k, v in worker.get("attributes", {}).items())
        table.add_row(
            worker["employee_id"],
            f"{worker['given_name']} {worker['family_name']}{kind}{extra}",
            worker.get("department", ""),
            worker.get("job_title", ""),
            names.get(worker.get("manager_id") or "", ""),
            worker.get("location", ""),
            when,
        )
    console.print(table)
    changes = [e for e in events if e not in hires]
    if changes:
        console.print("[bold]Demo changes[/]")
    for event in changes:
        worker = event["worker"]
        who = names.get(worker["employee_id"], "")
        if event["type"] == "update":
            what = f"moves to {worker.get('department', '')}, manager {names.get(worker.get('manager_id') or '', '-')}"
        elif event["type"] == "terminate":
            what = "leaves"
        else:
            what = "is hired again"
        console.print(
            f"  {worker['employee_id']}  {who} {what}  {_when(event, now)}", highlight=False
        )


def _when(event: dict[str, Any], now: datetime) -> str:
    at = datetime.fromisoformat(event["effective_at"].replace("Z", "+00:00"))
    return at.date().isoformat() + (" (future)" if at > now else "")
