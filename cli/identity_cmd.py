"""`tenure identity show E1001`: what Tenure knows about a person, read from their entity workflow."""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from cli.temporal_target import temporal_settings
from connection.temporal import connect
from domain.lifecycle import ledger
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import IdentityContract, IdentityState, ScheduledChange
from domain.lifecycle.joiner import JoinerContract, JoinerProgress


def register(groups: argparse._SubParsersAction) -> None:
    identity = groups.add_parser("identity", help="inspect identities")
    commands = identity.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = commands.add_parser("show", help="stage, attributes, access held and what is scheduled")
    show.add_argument("employee_id")
    show.add_argument("--json", action="store_true", help="print the raw state as JSON")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    return asyncio.run(_show_async(args.employee_id, args.json))


async def _show_async(employee_id: str, as_json: bool) -> int:
    console = Console(emoji=False)  # names like "Team :rocket:" print as written
    client = await connect(temporal_settings())
    try:
        state = await client.get_workflow_handle(identity_workflow_id(employee_id)).query(
            IdentityContract.QUERY_DETAILS, result_type=IdentityState
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            console.print(
                f"[red]No identity {employee_id}[/red]: Tenure has received no event for it."
            )
            return 1
        raise
    progress = await _transition_progress(client, state.running_transition)
    if as_json:
        out = {
            "identity": state.model_dump(mode="json", exclude={"seen_event_ids", "event_digests"})
        }
        if progress:
            out["running_transition_progress"] = progress.model_dump(mode="json")
        print(json.dumps(out, indent=2))
        return 0
    _render(console, state, progress)
    return 0


async def _transition_progress(client: Client, workflow_id: str | None) -> JoinerProgress | None:
    # Only the joiner reports the pre-hire details shown here; leaver and retention runs are short.
    if not workflow_id or not workflow_id.startswith("joiner-"):
        return None
    handle = client.get_workflow_handle(workflow_id)
    if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
        return None
    return await handle.query(JoinerContract.QUERY_PROGRESS, result_type=JoinerProgress)


def _render(console: Console, state: IdentityState, progress: JoinerProgress | None) -> None:
    w = state.worker
    console.print(f"[bold]{state.employee_id}[/bold]  stage: [cyan]{state.stage.value}[/cyan]")
    if w:
        # HR's values are shown as text: brackets in a name are not rich markup.
        console.print(
            f"  {escape(w.display_name)} · {escape(w.job_title or '-')} · "
            f"{escape(w.department or '-')} · {escape(w.location or '-')} · "
            f"{w.employment_type.value} · manager {w.manager_id or '-'}"
        )
        if w.attributes:
            console.print(
                "  attributes: "
                + ", ".join(f"{escape(k)}={escape(v)}" for k, v in sorted(w.attributes.items()))
            )
    if state.user_principal_name:
        console.print(f"  Entra ID: {state.user_principal_name} (id {state.graph_user_id})")

    # The ledger: every resource, and every grant that holds it ("why does this person hold
    # this?"). A state from an older worker has no holdings yet: worked out here the same way.
    holdings = state.holdings or ledger.identity_holdings(state)
    access = Table(title="Access held", show_lines=False)
    for col in ("resource", "held by"):
        access.add_column(col)
    for holding in holdings:
        # Text cells: a key such as `app:ledger:reader` is not an emoji code either.
        access.add_row(
            Text(holding.resource.key), Text("; ".join(g.describe() for g in holding.grants))
        )
    console.print(access if holdings else "  Access held: none")
    if state.packages:
        packages = Table(title="Access packages (requested)")
        for col in ("package", "status", "until (UTC)", "request"):
            packages.add_column(col)
        for held in state.packages:
            until = f"{held.until:%Y-%m-%d %H:%M}" if held.until else "-"
            packages.add_row(held.package_id, held.status, until, held.request_id)
        console.print(packages)

    scheduled = list(state.scheduled)
    if progress:
        console.print(f"  running {state.running_transition}: {progress.phase}")
        for step in progress.done:
            console.print(f"    ✓ {escape(step)}")
        if progress.pre_hire_at and progress.phase == "pre_hire_wait":
            what = "pre-hire: create the disabled account, grant access, TAP to the manager"
            scheduled.insert(0, ScheduledChange(at=progress.pre_hire_at, what=what))
    if scheduled:
        table = Table(title="Scheduled")
        table.add_column("when (UTC)")
        table.add_column("what")
        for change in scheduled:
            table.add_row(f"{change.at:%Y-%m-%d %H:%M}", escape(change.what))
        console.print(table)

    events = Table(title="Recent events")
    for col in ("event", "type", "effective", "outcome", "reason"):
        events.add_column(col)
    for entry in state.history[-10:]:
        events.add_row(
            escape(entry.event_id),
            entry.type,
            f"{entry.effective_at:%Y-%m-%d}",
            entry.outcome.value,
            escape(entry.reason or ""),
        )
    console.print(events)
