"""`tenure sod ...`: separation-of-duties violations found after the fact, through the API.

tenure sod violations [--status open] [--employee E1001]
tenure sod approve sod-violation-pay-and-admin-E1001 -c "audit signed off"   (or deny)
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape

from cli.api_calls import call, print_entry, when, with_api


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("sod", help="separation-of-duties violations and exceptions")
    commands = parser.add_subparsers(dest="sod_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("violations", help="violations with their state")
    listing.add_argument("--status", help="only this state, e.g. open, excepted, removed")
    listing.add_argument("--employee", help="only this person (auditors and administrators)")
    listing.set_defaults(handler=with_api(_violations))
    for verb in ("approve", "deny"):
        decide = commands.add_parser(verb, help=f"{verb} an exception you are asked about")
        decide.add_argument("remediation_id")
        decide.add_argument("-c", "--comment", default="")
        decide.set_defaults(handler=with_api(_decide), decision=verb)


def _violations(args: argparse.Namespace, client: Any, console: Console) -> int:
    params = {k: v for k, v in (("status", args.status), ("employee_id", args.employee)) if v}
    answer = call(client, "GET", "/v1/sod/violations", params=params)
    if not answer["violations"]:
        console.print("No separation-of-duties violation.")
    for v in answer["violations"]:
        sides = " + ".join(str(side.get("key", "?")) for side in v["sides"])
        facts = [
            f"{v['employee_id']} holds {escape(sides)}",
            v["status"],
            v["remediation"],
            f"found {when(v['detected_at'])}",
        ]
        if v.get("exception_until"):
            facts.append(f"excepted until {when(v['exception_until'])}")
        print_entry(console, v["violation_id"], facts)
        if v.get("workflow_id"):
            console.print(f"  {v['workflow_id']}", soft_wrap=True)
    return 0


def _decide(args: argparse.Namespace, client: Any, console: Console) -> int:
    body = {"decision": args.decision, "comment": args.comment}
    path = f"/v1/sod/violations/{args.remediation_id}/decision"
    answer = call(client, "POST", path, json=body)
    console.print(escape(answer["message"]))
    return 0
