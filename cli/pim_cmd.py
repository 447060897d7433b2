"""`tenure pim ...` and `tenure security ...`: privileged roles and incidents through the Tenure
API, as the person logged in (`tenure login --as E1001 --mfa` for roles that need MFA).

tenure pim roles
tenure pim eligible
tenure pim activate user-admin --duration 2h -j "locked account" --ticket INC-1234
tenure pim active
tenure pim extend pim-activation-... --duration 4h
tenure pim deactivate pim-activation-...
tenure pim approvals
tenure pim approve pim-activation-...        (or deny)
tenure pim assign E1001 user-admin [--until 2027-03-01T00:00Z | --permanent]   (administrators)
tenure pim unassign E1001 user-admin                                           (administrators)
tenure pim alerts [--all] [--kind outside_tenure]                              (auditors)
tenure security restore INC-42 --reason "false positive"                       (administrators)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.markup import escape

from cli.api_calls import call, print_entry, when, with_api

PIM = "/v1/pim"
# How long `activate` follows the run before it reports where it stands.
FOLLOW_SECONDS = 10.0


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("pim", help="privileged roles, activated just in time")
    commands = parser.add_subparsers(dest="pim_command", required=True, metavar="COMMAND")
    commands.add_parser("roles", help="the privileged roles and what each takes").set_defaults(
        handler=with_api(_roles)
    )
    commands.add_parser("eligible", help="roles you may activate").set_defaults(
        handler=with_api(_eligible)
    )
    activate = commands.add_parser("activate", help="activate a role you are eligible for")
    activate.add_argument("role_id")
    activate.add_argument("--duration", help="e.g. 2h, 90m (default: the role's)")
    activate.add_argument("-j", "--justification", default="")
    activate.add_argument("--ticket")
    activate.add_argument("--start", help="a scheduled start, ISO 8601 with a zone")
    activate.set_defaults(handler=with_api(_activate))
    active = commands.add_parser("active", help="your activations (active ones by default)")
    active.add_argument("--all", action="store_true", help="every activation, not only active")
    active.set_defaults(handler=with_api(_active))
    deactivate = commands.add_parser("deactivate", help="end an activation now")
    deactivate.add_argument("activation_id")
    deactivate.add_argument("--reason", default="")
    deactivate.set_defaults(handler=with_api(_deactivate))
    extend = commands.add_parser("extend", help="extend an active role within its maximum")
    extend.add_argument("activation_id")
    extend.add_argument("--duration", required=True, help="the whole new length, e.g. 4h")
    extend.add_argument("-j", "--justification", default="")
    extend.set_defaults(handler=with_api(_extend))
    commands.add_parser("approvals", help="activations waiting for your decision").set_defaults(
        handler=with_api(_approvals)
    )
    for verb in ("approve", "deny"):
        decide = commands.add_parser(verb, help=f"{verb} an activation you are asked about")
        decide.add_argument("activation_id")
        decide.add_argument("-c", "--comment", default="")
        decide.set_defaults(handler=with_api(_decide), decision=verb)
    assign = commands.add_parser("assign", help="make someone eligible (administrators)")
    assign.add_argument("employee_id")
    assign.add_argument("role_id")
    assign.add_argument("--until")
    assign.add_argument("--permanent", action="store_true")
    assign.add_argument("-j", "--justification", default="")
    assign.set_defaults(handler=with_api(_assign))
    unassign = commands.add_parser("unassign", help="remove an eligibility (administrators)")
    unassign.add_argument("employee_id")
    unassign.add_argument("role_id")
    unassign.add_argument("--reason", default="")
    unassign.set_defaults(handler=with_api(_unassign))

    alerts = commands.add_parser("alerts", help="PIM alerts the scheduled scan raised (auditors)")
    alerts.add_argument("--all", action="store_true", help="resolved alerts too")
    alerts.add_argument("--kind", help="only this kind, e.g. outside_tenure")
    alerts.set_defaults(handler=with_api(_alerts))

    security = groups.add_parser("security", help="security incidents")
    incident = security.add_subparsers(dest="security_command", required=True, metavar="COMMAND")
    restore = incident.add_parser("restore", help="lift an incident's suspension (administrators)")
    restore.add_argument("incident_id")
    restore.set_defaults(handler=with_api(_restore))
    show = incident.add_parser("show", help="an incident and every step of its response")
    show.add_argument("incident_id")
    show.set_defaults(handler=with_api(_show_incident))


def _roles(args: argparse.Namespace, client: Any, console: Console) -> int:
    for role in call(client, "GET", f"{PIM}/roles"):
        needs = [
            "MFA" if role["require_mfa"] else "",
            "justification" if role["require_justification"] else "",
            f"ticket {role['ticket_pattern'] or ''}".strip() if role["require_ticket"] else "",
            f"approval within {role['approval_window']}" if role["approval"] else "",
        ]
        print_entry(
            console,
            role["role_id"],
            [
                escape(role["display_name"]),
                f"up to {role['max_activation']} (default {role['default_activation']})",
                "needs " + ", ".join(n for n in needs if n) if any(needs) else "no checks",
            ],
        )
    return 0


def _eligible(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "GET", f"{PIM}/eligible")
    if not answer["eligible"]:
        console.print("You are not eligible for any privileged role.")
    for item in answer["eligible"]:
        role = item["role"]
        until = f"until {when(item['until'])}" if item["until"] else "no end"
        print_entry(console, role["role_id"], [escape(role["display_name"]), until])
    return 0


def _activate(args: argparse.Namespace, client: Any, console: Console) -> int:
    body: dict[str, Any] = {"role_id": args.role_id, "justification": args.justification}
    for name in ("duration", "ticket", "start"):
        if getattr(args, name):
            body[name] = getattr(args, name)
    answer = call(client, "POST", f"{PIM}/activations", json=body)
    activation_id = answer["activation_id"]
    view = _follow(client, activation_id)
    status = view["status"] if view else answer["status"]
    print_entry(console, activation_id, [status, _about(view)])
    return 0 if status not in ("denied", "failed") else 1


def _follow(client: Any, activation_id: str) -> dict[str, Any] | None:
    """The activation once it is active, waiting, or refused (or after FOLLOW_SECONDS)."""
    deadline = time.monotonic() + FOLLOW_SECONDS
    view = None
    while time.monotonic() < deadline:
        view = call(client, "GET", f"{PIM}/activations/{activation_id}")
        if view["status"] not in ("submitted", "granting"):
            return view
        time.sleep(0.2)
    return view


def _about(view: dict[str, Any] | None) -> str:
    if view is None:
        return ""
    if view["status"] == "granted":
        return f"active until {when(view['expires_at'])}"
    if view.get("waiting_on"):
        stage = view["waiting_on"]
        return f"waiting for {', '.join(stage['approvers'])} until {when(stage['deadline'])}"
    last = view["story"][-1]["text"] if view.get("story") else ""
    return escape(last)


def _active(args: argparse.Namespace, client: Any, console: Console) -> int:
    params = {} if args.all else {"status": "granted"}
    answer = call(client, "GET", f"{PIM}/activations", params=params)
    if not answer["activations"]:
        console.print("No activations." if args.all else "No role is active for you.")
    for item in answer["activations"]:
        facts = [escape(item["package_name"]), item["status"]]
        if item["expires_at"]:
            facts.append(f"until {when(item['expires_at'])}")
        print_entry(console, item["request_id"], facts)
    return 0


def _deactivate(args: argparse.Namespace, client: Any, console: Console) -> int:
    path = f"{PIM}/activations/{args.activation_id}/deactivate"
    answer = call(client, "POST", path, json={"reason": args.reason})
    console.print(escape(answer["message"]))
    return 0


def _extend(args: argparse.Namespace, client: Any, console: Console) -> int:
    body = {"duration": args.duration, "justification": args.justification}
    answer = call(client, "POST", f"{PIM}/activations/{args.activation_id}/extension", json=body)
    console.print(escape(answer["message"]))
    return 0


def _approvals(args: argparse.Namespace, client: Any, console: Console) -> int:
    answer = call(client, "GET", f"{PIM}/approvals")
    if not answer["activations"]:
        console.print("Nothing waits for your decision.")
    for item in answer["activations"]:
        stage = item.get("waiting_on") or {}
        print_entry(
            console,
            item["request_id"],
            [
                f"{item['beneficiary_id']} asks for {escape(item['package_name'])}",
                f"decide by {when(stage.get('deadline'))}",
            ],
        )
    return 0


def _decide(args: argparse.Namespace, client: Any, console: Console) -> int:
    body = {"decision": args.decision, "comment": args.comment}
    answer = call(client, "POST", f"{PIM}/activations/{args.activation_id}/decision", json=body)
    console.print(escape(answer["message"]))
    return 0


def _assign(args: argparse.Namespace, client: Any, console: Console) -> int:
    body: dict[str, Any] = {
        "employee_id": args.employee_id,
        "role_id": args.role_id,
        "permanent": args.permanent,
        "justification": args.justification,
    }
    if args.until:
        body["until"] = args.until
    answer = call(client, "POST", f"{PIM}/eligibilities", json=body)
    console.print(f"{args.employee_id} is being made eligible for {args.role_id}")
    console.print(f"  {answer['activation_id']}", soft_wrap=True)
    return 0


def _unassign(args: argparse.Namespace, client: Any, console: Console) -> int:
    path = f"{PIM}/eligibilities/{args.employee_id}/{args.role_id}"
    answer = call(client, "DELETE", path, json={"reason": args.reason})
    console.print(escape(answer["message"]))
    return 0


def _alerts(args: argparse.Namespace, client: Any, console: Console) -> int:
    params: dict[str, str] = {"all": "true"} if args.all else {}
    if args.kind:
        params["kind"] = args.kind
    answer = call(client, "GET", f"{PIM}/alerts", params=params)
    if not answer["alerts"]:
        console.print("No PIM alert is open." if not args.all else "No PIM alert was ever raised.")
    for alert in answer["alerts"]:
        state = f"resolved {when(alert['resolved_at'])}" if alert["resolved_at"] else "open"
        print_entry(
            console,
            alert["alert_id"],
            [
                escape(alert["text"]),
                state,
                f"first {when(alert['first_raised_at'])}",
                f"raised {alert['times_raised']}x" if alert["times_raised"] > 1 else "",
            ],
        )
    return 0


def _restore(args: argparse.Namespace, client: Any, console: Console) -> int:
    view = call(client, "POST", f"/v1/security/incidents/{args.incident_id}/restore")
    console.print(f"Incident {escape(view['incident_id'])}: {view['status']}")
    return 0


def _show_incident(args: argparse.Namespace, client: Any, console: Console) -> int:
    view = call(client, "GET", f"/v1/security/incidents/{args.incident_id}")
    console.print(
        f"[bold]{escape(view['incident_id'])}[/bold] {view['severity']} · {escape(view['title'])} "
        f"· {view['employee_id'] or view['user']} · {view['status']}"
    )
    for step in view["steps"]:
        console.print(f"  {when(step['at'])}  {escape(step['text'])}")
    return 0
