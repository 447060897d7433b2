"""`tenure reviews ...`: access-review campaigns through the Tenure API, as the person logged in.

tenure reviews start q1-finance                       (administrators)
tenure reviews mine
tenure reviews items review-q1-finance-20270104T090000Z
tenure reviews decide review-q1-... --accept-recommendations -j "quarterly check"
tenure reviews decide review-q1-... --deny --item i-3f2a... -j "left the team"
tenure reviews show review-q1-...
tenure reviews confirm review-q1-... --reason "checked with finance"   (or --abort)
tenure reviews report review-q1-... --format jsonl -o q1.jsonl        (auditors)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console
from rich.markup import escape

from cli.api_calls import ApiError, api_client, call, print_entry, problem_line, when, with_api
from domain.reviews.campaign import Phase

REVIEWS = "/v1/reviews"
BAR_WIDTH = 20

_PHASE_STYLE = {
    Phase.SNAPSHOT.value: "cyan",
    Phase.REVIEWING.value: "yellow",
    Phase.AWAITING_CONFIRMATION.value: "bold magenta",
    Phase.APPLYING.value: "cyan",
    Phase.COMPLETED.value: "green",
    Phase.ABORTED.value: "red",
}


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser(
        "reviews",
        help="access-review campaigns: start, follow, decide, report (as the person logged in)",
        description="Access-review campaigns through the Tenure API, as the person `tenure login` "
        "named.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="start a campaign of a review now (administrators)")
    start.add_argument("review_id", metavar="REVIEW_ID", help="a review of the policy file")
    start.set_defaults(handler=with_api(_start))

    listing = commands.add_parser("list", help="every campaign (auditors and administrators)")
    listing.add_argument("--review", metavar="REVIEW_ID", help="only campaigns of this review")
    listing.add_argument("--limit", type=int, default=50, metavar="N")
    listing.set_defaults(handler=with_api(_list))

    mine = commands.add_parser("mine", help="campaigns where you have items to decide")
    mine.set_defaults(handler=with_api(_mine))

    show = commands.add_parser("show", help="a campaign's progress, stage by stage")
    show.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    show.add_argument("--json", action="store_true", help="print the answer as JSON")
    show.set_defaults(handler=with_api(_show))

    items = commands.add_parser("items", help="your items in a campaign's open stage")
    items.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    items.add_argument("--json", action="store_true", help="print the answer as JSON")
    items.set_defaults(handler=with_api(_items))

    decide = commands.add_parser(
        "decide",
        help="decide your items: by id, by filter, or all of them",
        description="Decides your items in the campaign's open stage: those given with --item, "
        "or every one of yours that --resource and --recommended select.",
    )
    decide.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    how = decide.add_mutually_exclusive_group(required=True)
    how.add_argument("--approve", dest="decision", action="store_const", const="approve")
    how.add_argument("--deny", dest="decision", action="store_const", const="deny")
    how.add_argument("--dont-know", dest="decision", action="store_const", const="dont_know")
    how.add_argument(
        "--accept-recommendations",
        dest="decision",
        action="store_const",
        const="recommendations",
        help="each item gets its recommendation",
    )
    decide.add_argument(
        "--item", dest="items", action="append", default=[], metavar="ID", help="repeat for each"
    )
    decide.add_argument("--resource", metavar="KEY", help="only items on this resource")
    decide.add_argument(
        "--recommended", choices=["approve", "deny"], help="only items with this recommendation"
    )
    decide.add_argument("--justification", "-j", default="", metavar="TEXT")
    decide.set_defaults(handler=with_api(_decide))

    confirm = commands.add_parser(
        "confirm", help="apply (or --abort) the removals a campaign waits on (administrators)"
    )
    confirm.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    confirm.add_argument("--abort", action="store_true", help="remove nothing")
    confirm.add_argument("--reason", required=True, metavar="TEXT")
    confirm.set_defaults(handler=with_api(_confirm))

    end = commands.add_parser("end-stage", help="end the open stage now (administrators)")
    end.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    end.add_argument("--reason", required=True, metavar="TEXT")
    end.set_defaults(handler=with_api(_end_stage))

    report = commands.add_parser("report", help="a campaign's report (auditors)")
    report.add_argument("campaign_id", metavar="CAMPAIGN_ID")
    report.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    report.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (default: standard output)"
    )
    report.set_defaults(handler=_report)


# ---- commands ------------------------------------------------------------------------------------


def _start(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "POST", REVIEWS, json={"review_id": args.review_id})
    console.print(f"Started [bold]{escape(answer['name'])}[/bold]")
    console.print(f"  {answer['campaign_id']}", soft_wrap=True)
    console.print(f"  follow it with: tenure reviews show {answer['campaign_id']}", soft_wrap=True)
    return 0


def _list(args: argparse.Namespace, client: Any, console: Console) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.review:
        params["review_id"] = args.review
    answer = call(client, "GET", REVIEWS, params=params)
    if not answer["campaigns"]:
        console.print("No campaigns.")
        return 0
    console.print(f"[bold]Campaigns[/bold] ({answer['count']})")
    for campaign in answer["campaigns"]:
        facts = [
            escape(campaign["name"]),
            _phase_text(campaign["phase"]),
            f"{campaign['items']} item(s)",
            f"started {when(campaign['started_at'])}",
        ]
        if campaign.get("current_stage") is not None and campaign["phase"] == "reviewing":
            facts.insert(2, f"stage {campaign['current_stage'] + 1}")
        if campaign.get("finished_at"):
            facts.append(f"finished {when(campaign['finished_at'])}")
        print_entry(console, campaign["campaign_id"], facts)
        if campaign.get("waiting_for"):
            console.print(f"  [magenta]waiting for: {escape(campaign['waiting_for'])}[/magenta]")
    return 0


def _mine(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "GET", f"{REVIEWS}/mine")
    if not answer["stages"]:
        console.print("Nothing waits for your review.")
        return 0
    console.print(f"[bold]Waiting for your review[/bold] ({answer['count']})")
    for stage in answer["stages"]:
        print_entry(
            console,
            stage["campaign_id"],
            [
                escape(stage["name"]),
                f"{escape(stage['stage_name'])}: {stage['undecided']} item(s) undecided",
                f"ends {when(stage.get('ends_at'))}",
            ],
        )
    console.print("See them with: tenure reviews items CAMPAIGN_ID")
    return 0


def _show(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "GET", f"{REVIEWS}/{args.campaign_id}")
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    render_campaign(console, answer)
    return 0


def _items(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "GET", f"{REVIEWS}/{args.campaign_id}/items")
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    stage = answer["stage"]
    undecided = sum(1 for i in answer["items"] if i.get("outcome") is None)
    number = f"stage {stage['index'] + 1}"
    # An unnamed stage is called by its number already: say it once.
    title = number if stage["name"] == number else f"{stage['name']} ({number})"
    console.print(
        f"[bold]{escape(title)}[/bold], "
        f"ends {when(stage.get('ends_at'))}: {answer['count']} item(s) of yours, "
        f"{undecided} undecided"
    )
    for item in answer["items"]:
        facts = [
            escape(item["holder_name"] or item.get("holder_employee_id") or ""),
            escape(item["resource"]),
            _recommendation_text(item),
            *(_earlier_text(d) for d in item.get("earlier") or []),
            _decision_text(item),
        ]
        print_entry(console, item["item_id"], facts)
    if undecided:
        console.print(
            f"Decide with: tenure reviews decide {args.campaign_id} "
            "--approve|--deny|--dont-know|--accept-recommendations [--item ID ...]",
            soft_wrap=True,
        )
    return 0


def _decide(args: argparse.Namespace, client: Any, console: Console) -> int:
    body: dict[str, Any] = {"justification": args.justification}
    if args.decision == "recommendations":
        body["accept_recommendations"] = True
    else:
        body["decision"] = args.decision
    if args.items:
        body["item_ids"] = args.items
    if args.resource:
        body["resource"] = args.resource
    if args.recommended:
        body["recommendation"] = args.recommended
    answer = call(client, "POST", f"{REVIEWS}/{args.campaign_id}/decisions", json=body)
    if not answer["decided"]:
        console.print("Nothing decided: none of your items in the open stage matches.")
        return 0
    outcomes = ", ".join(f"{k} {n}" for k, n in sorted(answer["outcomes"].items()))
    console.print(f"Decided {answer['decided']} item(s) in stage {answer['stage'] + 1}: {outcomes}")
    return 0


def _confirm(args: argparse.Namespace, client: Any, console: Console) -> int:
    body = {"confirm": not args.abort, "reason": args.reason}
    call(client, "POST", f"{REVIEWS}/{args.campaign_id}/confirm", json=body)
    if args.abort:
        console.print("Aborted: nothing will be removed; every denial is kept as not applied.")
    else:
        console.print("Confirmed: the removals are being applied.")
    console.print(f"Follow it with: tenure reviews show {args.campaign_id}", soft_wrap=True)
    return 0


def _end_stage(args: argparse.Namespace, client: Any, console: Console) -> int:
    progress = call(
        client, "POST", f"{REVIEWS}/{args.campaign_id}/end-stage", json={"reason": args.reason}
    )
    stage = progress.get("current_stage")
    name = progress["stages"][stage]["name"] if stage is not None else "the open stage"
    console.print(
        f"Ending {escape(name)}: items nobody decided get the stage's no-response outcome."
    )
    console.print(f"Follow it with: tenure reviews show {args.campaign_id}", soft_wrap=True)
    return 0


def _report(args: argparse.Namespace) -> int:
    path = f"{REVIEWS}/{args.campaign_id}/report"
    params = {"format": args.format}
    try:
        with api_client() as client:
            if args.output is None:
                stream_report(client, path, params, sys.stdout)
                return 0
            # Written aside and renamed: a failed report never leaves half a file behind.
            partial = args.output.with_name(args.output.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8", newline="") as out:
                    stream_report(client, path, params, out)
                os.replace(partial, args.output)
            finally:
                partial.unlink(missing_ok=True)
    except ApiError as err:
        print(f"tenure: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"tenure: cannot write {args.output}: {err.strerror or err}", file=sys.stderr)
        return 1
    rows = _rows_in(args.output, args.format)
    print(f"Wrote the report ({rows} item(s)) to {args.output}", file=sys.stderr)
    return 0


def stream_report(client: httpx.Client, path: str, params: dict[str, str], out: IO[str]) -> None:
    """Copy the report into `out` as it arrives, byte for byte (a CSV field may hold a line
    break, so it is not split into lines here)."""
    try:
        with client.stream("GET", path, params=params) as response:
            if response.is_error:
                response.read()
                raise ApiError(problem_line(response))
            for text in response.iter_text():
                out.write(text)
    except httpx.TransportError as err:
        raise ApiError(f"cannot reach the Tenure API at {client.base_url}: {err}") from err


def _rows_in(path: Path, format: str) -> int:
    with path.open(encoding="utf-8", newline="") as written:
        if format == "jsonl":
            return sum(1 for line in written if line.strip())
        return max(sum(1 for _ in csv.reader(written)) - 1, 0)  # less the header


# ---- rendering -------------------------------------------------------------------------------------


def render_campaign(console: Console, view: dict[str, Any]) -> None:
    """Phase, each stage with a bar of decided items, removals against the cap, what was applied,
    and what an operator must do."""
    progress = view["progress"]
    counts = {s["index"]: s for s in view.get("counts", {}).get("stages", [])}
    cid = progress["campaign_id"]
    console.print(
        f"[bold]{escape(progress['name'])}[/bold] ({escape(progress['review_id'])})  "
        f"{_phase_text(progress['phase'])}"
        + ("  [cyan]dry run[/cyan]" if progress.get("dry_run") else "")
    )
    console.print(f"  {cid}", soft_wrap=True)
    facts = [f"started {when(progress['started_at'])}", f"{progress['items']} item(s)"]
    if progress.get("finished_at"):
        facts.append(f"finished {when(progress['finished_at'])}")
    if view.get("source") == "record" and not progress.get("finished_at"):
        facts.append("[dim]as last recorded (the campaign did not answer)[/dim]")
    console.print("  " + " · ".join(facts))

    console.print("[bold]Stages[/bold]")
    current = progress.get("current_stage")
    for stage in progress["stages"]:
        console.print("  " + _stage_line(stage, counts.get(stage["index"]), current))

    removals, share, cap = progress["removals"], progress["removal_share"], progress["cap"]
    if removals or progress["phase"] in ("awaiting_confirmation", "applying", "completed"):
        over = share > cap
        console.print(
            f"[bold]Removals[/bold]  {removals} of {progress['items']} item(s): {share:.1%} "
            f"(cap {cap:.0%})" + ("  [bold red]over the cap[/bold red]" if over else "")
        )
    if progress.get("applied"):
        applied = ", ".join(
            f"{k.replace('_', ' ')} {n}" for k, n in sorted(progress["applied"].items())
        )
        console.print(f"[bold]Applied[/bold]   {applied}")
    for line in _next_steps(progress):
        console.print(line, soft_wrap=True)


def _stage_line(stage: dict[str, Any], counted: dict[str, Any] | None, current: int | None) -> str:
    label = f"{stage['index'] + 1} {escape(stage['name'])}"
    if stage.get("opened_at") is None:
        return f"{label}  [dim]not opened yet[/dim]"
    total = (counted or {}).get("items", stage.get("items", 0))
    done = (counted or {}).get("decided", 0)
    bar = progress_bar(done, total)
    line = f"{label}  {bar} {done}/{total} decided"
    if stage.get("closed_at"):
        outcomes = ", ".join(
            f"{k.replace('_', ' ')} {n}" for k, n in sorted((stage.get("outcomes") or {}).items())
        )
        return f"{line}  closed {when(stage['closed_at'])}" + (f" ({outcomes})" if outcomes else "")
    state = "[yellow]open[/yellow]" if stage["index"] == current else ""
    return f"{line}  {state} ends {when(stage.get('ends_at'))}".rstrip()


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[██████░░░░]`: the share of `total` that is `done`, never full before it is."""
    if total <= 0:
        return "[" + "░" * width + "]"
    filled = width if done >= total else min(width - 1, round(width * done / total))
    return "[" + "█" * filled + "░" * (width - filled) + "]"


def _next_steps(progress: dict[str, Any]) -> list[str]:
    cid = progress["campaign_id"]
    phase = progress["phase"]
    if phase == "awaiting_confirmation":
        return [
            f"[bold magenta]Operator:[/bold magenta] {escape(progress.get('waiting_for') or '')}",
            f"  apply:  tenure reviews confirm {cid} --reason TEXT",
            f"  abort:  tenure reviews confirm {cid} --abort --reason TEXT",
        ]
    if phase == "reviewing":
        return [
            "Reviewers decide with: tenure reviews mine, tenure reviews decide ...",
            f"  to close the stage early: tenure reviews end-stage {cid} --reason TEXT",
        ]
    if phase in ("completed", "aborted"):
        return [f"Report: tenure reviews report {cid} [--format jsonl] [-o FILE]"]
    return []


def _phase_text(phase: str) -> str:
    style = _PHASE_STYLE.get(phase, "")
    text = phase.replace("_", " ")
    return f"[{style}]{text}[/{style}]" if style else text


def _recommendation_text(item: dict[str, Any]) -> str:
    recommended = item.get("recommendation") or "none"
    if recommended == "none":
        return "no recommendation"
    reason = item.get("recommendation_reason")
    return f"recommend {recommended}" + (f" ({escape(reason)})" if reason else "")


def _earlier_text(decision: dict[str, Any]) -> str:
    """What a stage before this one came to, as a later stage's reviewer sees it."""
    stage = decision.get("stage")
    where = f"stage {stage + 1}" if isinstance(stage, int) else "earlier"
    why = decision.get("justification") or ""
    said = f"{where}: {decision['outcome'].replace('_', ' ')} by {decision['decided_by']}"
    return escape(said + (f" ({why})" if why else ""))


def _decision_text(item: dict[str, Any]) -> str:
    outcome = item.get("outcome")
    if outcome is None:
        return "[yellow]undecided[/yellow]"
    by = item.get("decided_by") or ""
    return f"{outcome.replace('_', ' ')} by {escape(by)}"
