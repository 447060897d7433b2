"""`tenure requests ...`: request access packages, decide on requests, and read a request's story.

tenure requests new production-db-read --answer ticket=CHG-1 --answer environment=eu --until 2026-12-31
tenure requests approvals
tenure requests approve access-request-... --comment "ok for the incident"
tenure requests show access-request-...
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cli.api_calls import call, instant, print_entry, when, with_api
from domain.access.request import RequestStatus, RequestView, StoryEntry
from domain.approval.contract import StageView

REQUESTS = "/v1/access/requests"
APPROVALS = "/v1/access/approvals"

_STATUS_STYLE = {
    RequestStatus.SUBMITTED: "cyan",
    RequestStatus.PENDING_APPROVAL: "yellow",
    RequestStatus.GRANTING: "cyan",
    RequestStatus.GRANTED: "green",
    RequestStatus.DENIED: "red",
    RequestStatus.CANCELLED: "dim",
    RequestStatus.EXPIRED: "dim",
    RequestStatus.REVOKED: "red",
    RequestStatus.FAILED: "bold red",
}

# How each kind of story line reads in the timeline, and its colour.
_KIND_LABEL: dict[str, tuple[str, str]] = {
    "submitted": ("Submitted", "cyan"),
    "eligibility": ("Eligibility", ""),
    "sod": ("SoD check", ""),
    "stage_opened": ("Stage opened", "yellow"),
    "reminder": ("Reminder", "dim"),
    "escalated": ("Escalated", "magenta"),
    "decision": ("Decision", ""),
    "refused_attempt": ("Refused attempt", "red"),
    "stage_closed": ("Stage closed", ""),
    "timeout": ("Timed out", "magenta"),
    "granted": ("Granted", "green"),
    "expiry_reminder": ("Expiry reminder", "dim"),
    "extension_requested": ("Extension asked", "cyan"),
    "extension_decided": ("Extension decided", ""),
    "extended": ("Extended", "green"),
    "removed": ("Removed", "red"),
    "cancelled": ("Cancelled", "dim"),
    "denied": ("Denied", "red"),
    "revoked": ("Revoked", "red"),
    "failed": ("Failed", "bold red"),
}


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser(
        "requests",
        help="request access packages and decide on requests (as the person logged in)",
        description="Access requests through the Tenure API, as the person `tenure login` named.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = commands.add_parser("new", help="request an access package")
    new.add_argument("package_id", metavar="PACKAGE")
    new.add_argument(
        "--for", dest="beneficiary", metavar="EMPLOYEE_ID", help="a report of yours (default: you)"
    )
    new.add_argument("--justification", "-j", default="", metavar="TEXT")
    new.add_argument(
        "--answer",
        dest="answers",
        action="append",
        type=_answer,
        default=[],
        metavar="KEY=VALUE",
        help="an answer to one of the package's questions (repeat for each)",
    )
    new.add_argument(
        "--until", type=instant, metavar="ISO", help="when the access should end, where you choose"
    )
    new.set_defaults(handler=with_api(_new))

    listing = commands.add_parser("list", help="your requests (made by you or for you)")
    listing.add_argument("--status", choices=[s.value for s in RequestStatus], metavar="STATUS")
    listing.set_defaults(handler=with_api(_list))

    approvals = commands.add_parser("approvals", help="requests waiting for your decision")
    approvals.set_defaults(handler=with_api(_approvals))

    show = commands.add_parser("show", help="a request's full story")
    show.add_argument("request_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the request as JSON")
    show.set_defaults(handler=with_api(_show))

    for name, decision in (("approve", "approve"), ("deny", "deny")):
        decide = commands.add_parser(name, help=f"{name} a request waiting for you")
        decide.add_argument("request_id", metavar="ID")
        decide.add_argument("--comment", "-c", default="", metavar="TEXT")
        decide.set_defaults(handler=with_api(_decide), decision=decision)

    extend = commands.add_parser("extend", help="ask to extend granted access")
    extend.add_argument("request_id", metavar="ID")
    extend.add_argument("--until", type=instant, required=True, metavar="ISO")
    extend.add_argument("--justification", "-j", default="", metavar="TEXT")
    extend.set_defaults(handler=with_api(_extend))

    cancel = commands.add_parser("cancel", help="withdraw a request of yours")
    cancel.add_argument("request_id", metavar="ID")
    cancel.add_argument("--reason", default="", metavar="TEXT")
    cancel.set_defaults(handler=with_api(_cancel))

    revoke = commands.add_parser("revoke", help="remove granted access now (administrators)")
    revoke.add_argument("request_id", metavar="ID")
    revoke.add_argument("--reason", required=True, metavar="TEXT")
    revoke.set_defaults(handler=with_api(_revoke))


def _answer(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write KEY=VALUE, e.g. ticket=CHG-1234")
    return key.strip(), value


# ---- commands ----------------------------------------------------------------------------------


def _new(args: argparse.Namespace, client: Any, console: Console) -> int:
    body: dict[str, Any] = {
        "package_id": args.package_id,
        "justification": args.justification,
        "answers": dict(args.answers),
    }
    if args.beneficiary:
        body["beneficiary_id"] = args.beneficiary
    if args.until is not None:
        body["requested_end"] = args.until.isoformat()
    # A key per invocation: should this request be sent twice, it is still one request.
    answer = call(
        client, "POST", REQUESTS, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    console.print(
        f"Requested [bold]{escape(args.package_id)}[/bold]"
        + (f" for {escape(args.beneficiary)}" if args.beneficiary else "")
        + f": {_status_text(answer['status'])}"
    )
    console.print(f"  {answer['request_id']}")
    console.print(f"  follow it with: tenure requests show {answer['request_id']}")
    return 0


def _list(args: argparse.Namespace, client: Any, console: Console) -> int:
    params = {"status": args.status} if args.status else {}
    answer = call(client, "GET", REQUESTS, params=params)
    if not answer["requests"]:
        console.print("No requests." if not args.status else f"No {args.status} requests.")
        return 0
    console.print(f"[bold]Your access requests[/bold] ({len(answer['requests'])})")
    for item in answer["requests"]:
        waiting = item.get("waiting_on")
        facts = [
            f"{escape(item['package_name'])} for {item['beneficiary_id']}, "
            f"asked by {item['requester_id']} {when(item['submitted_at'])}",
            _status_text(item["status"]),
        ]
        if waiting:
            facts.append(f"waiting on {_waiting_text(waiting)}")
        if item.get("expires_at"):
            facts.append(f"ends {when(item['expires_at'])}")
        print_entry(console, item["request_id"], facts)
    return 0


def _approvals(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "GET", APPROVALS)
    if not answer["requests"]:
        console.print("Nothing waits for your decision.")
        return 0
    console.print(f"[bold]Waiting for your decision[/bold] ({len(answer['requests'])})")
    for item in answer["requests"]:
        stage = item.get("waiting_on") or {}
        print_entry(
            console,
            item["request_id"],
            [
                f"{escape(item['package_name'])} for {item['beneficiary_id']}, "
                f"asked by {item['requester_id']}",
                f"{escape(stage.get('name', ''))}: decide by {when(stage.get('deadline'))}",
            ],
        )
    console.print("Decide with: tenure requests approve|deny ID [--comment TEXT]")
    return 0


def _show(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "GET", f"{REQUESTS}/{args.request_id}")
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    render_request(console, RequestView.model_validate(answer))
    return 0


def _decide(args: argparse.Namespace, client: Any, console: Console) -> int:
    body = {"decision": args.decision, "comment": args.comment}
    return _update(client, console, args.request_id, "decision", body)


def _extend(args: argparse.Namespace, client: Any, console: Console) -> int:
    body = {"new_end": args.until.isoformat(), "justification": args.justification}
    return _update(client, console, args.request_id, "extension", body)


def _cancel(args: argparse.Namespace, client: Any, console: Console) -> int:
    return _update(client, console, args.request_id, "cancel", {"reason": args.reason})


def _revoke(args: argparse.Namespace, client: Any, console: Console) -> int:
    return _update(client, console, args.request_id, "revoke", {"reason": args.reason})


def _update(client: Any, console: Console, request_id: str, action: str, body: Any) -> int:
    answer = call(client, "POST", f"{REQUESTS}/{request_id}/{action}", json=body)
    console.print(f"{escape(answer['message'])} ({_status_text(answer['status'])})")
    return 0


# ---- rendering ---------------------------------------------------------------------------------


def render_request(console: Console, view: RequestView) -> None:
    """The request's whole story: who asked for what, its stages, and a timeline of what happened."""
    console.print(_header(view))
    if view.stages:
        console.print(_stages_table(view))
    console.print(_timeline(view.story))


def _header(view: RequestView) -> Panel:
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("Package", f"{escape(view.package_name)} ({view.package_id})")
    lines.add_row("For", view.beneficiary_id)
    lines.add_row("Asked by", view.requester_id)
    lines.add_row("Submitted", when(view.submitted_at))
    lines.add_row("Justification", escape(view.justification) or "[dim](none)[/dim]")
    if view.answers:
        lines.add_row(
            "Answers", "\n".join(f"{escape(k)}: {escape(v)}" for k, v in view.answers.items())
        )
    if view.resources:
        lines.add_row("Grants", "\n".join(escape(r) for r in view.resources))
    if view.waiting_on is not None:
        lines.add_row("Waiting on", _waiting_text(view.waiting_on.model_dump(mode="json")))
    if view.granted_at is not None:
        lines.add_row("Granted", when(view.granted_at))
    if view.granted_at is not None or view.expires_at is not None:
        lines.add_row("Ends", when(view.expires_at) if view.expires_at else "never")
    if view.closed_at is not None:
        lines.add_row("Closed", when(view.closed_at))
    title = Text.assemble(
        (view.request_id, "bold"), "  ", Text.from_markup(_status_text(view.status))
    )
    return Panel(lines, title=title, title_align="left")


def _stages_table(view: RequestView) -> Table:
    table = Table(title="Approval stages", title_justify="left")
    for column in ("#", "Stage", "Round", "Needs", "Approvers", "Approved", "Denied", "Opened"):
        table.add_column(column)
    table.add_column("Deadline")
    table.add_column("Outcome")
    for stage in view.stages:
        waiting = view.waiting_on is not None and _same_stage(stage, view.waiting_on)
        table.add_row(
            str(stage.index + 1),
            escape(stage.name),
            stage.round,
            _needs(stage.require),
            ", ".join(stage.approvers) or "[dim]nobody[/dim]",
            ", ".join(stage.approved_by),
            ", ".join(stage.denied_by),
            when(stage.opened_at),
            when(stage.deadline),
            escape(stage.outcome)
            if stage.outcome
            else ("[yellow]waiting[/yellow]" if waiting else ""),
        )
    return table


def _same_stage(a: StageView, b: StageView) -> bool:
    return (a.index, a.round, a.opened_at) == (b.index, b.round, b.opened_at)


def _needs(require: str) -> str:
    if require == "first":
        return "first decision"
    if require == "all":
        return "everyone"
    return f"{require} approvals"


def _timeline(story: list[StoryEntry]) -> Table:
    table = Table(title="Story", title_justify="left")
    table.add_column("When", no_wrap=True)
    table.add_column("What", no_wrap=True)
    table.add_column("Who", no_wrap=True)
    table.add_column("Details")
    for entry in sorted(story, key=lambda e: e.seq):
        label, style = _KIND_LABEL.get(entry.kind, (entry.kind, ""))
        if entry.kind == "decision":
            style = "green" if str(entry.data.get("decision")).lower() == "approve" else "red"
        table.add_row(
            when(entry.at),
            f"[{style}]{label}[/{style}]" if style else label,
            entry.actor,
            escape(_details(entry)),
        )
    if not story:
        table.add_row("", "[dim]nothing recorded yet[/dim]", "", "")
    return table


def _details(entry: StoryEntry) -> str:
    """The line's sentence, with the comment, reason or new end its data holds if it does not say."""
    text = entry.text
    extras = []
    for key, label in (("comment", "comment"), ("reason", "reason"), ("until", "until")):
        value = entry.data.get(key)
        if value and str(value) not in text:
            extras.append(f"{label}: {when(value) if key == 'until' else value}")
    if (
        entry.kind == "decision"
        and entry.data.get("stage")
        and str(entry.data["stage"]) not in text
    ):
        extras.insert(0, f"stage: {entry.data['stage']}")
    return "  ".join([text, *(f"[{extra}]" for extra in extras)])


def _status_text(status: str) -> str:
    style = _STATUS_STYLE.get(RequestStatus(status), "")
    return f"[{style}]{status}[/{style}]" if style else status


def _waiting_text(stage: dict[str, Any]) -> str:
    name = escape(stage.get("name") or "approval")
    who = ", ".join(stage.get("approvers") or [])
    return f"{name}: {who} by {when(stage.get('deadline'))}"
