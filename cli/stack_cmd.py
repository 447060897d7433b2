"""`tenure stack run | status`: the local stack (Temporal, emulators, worker, API) on this host."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from rich.console import Console
from rich.table import Table

from domain.policy.file import PolicyFileError
from stack.config import StackConfig, StackConfigError
from stack.credentials import load_or_create_credentials
from stack.stack_file import read_stack_file, stack_file_path, tenure_home
from stack.status import check_stack, pid_alive
from stack.supervisor import clear_stale_stack_file, home_lock, run_stack


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stack", help="run or inspect the local stack")
    commands = parser.add_subparsers(dest="stack_command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="start Temporal, the emulators, the worker and the API; Ctrl-C stops them",
        description="Start the local stack and keep it running until Ctrl-C. State persists in "
        "TENURE_HOME (default ./.tenure); ports come from TENURE_*_PORT variables.",
    )
    run.add_argument(
        "--no-demo",
        action="store_true",
        help="don't post the demo HR feed (also: TENURE_DEMO=0)",
    )
    run.set_defaults(handler=run_command)

    status = commands.add_parser("status", help="check every endpoint of the running stack")
    status.set_defaults(handler=status_command)


def _demo_enabled(args: argparse.Namespace) -> bool:
    return not args.no_demo and os.environ.get("TENURE_DEMO", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def _console() -> Console:
    # Piped into a log or a test, rich would assume 80 columns and wrap every table row.
    return Console(width=None if sys.stdout.isatty() else 132)


def run_command(args: argparse.Namespace) -> int:
    console = _console()
    try:
        config = StackConfig.from_env()
        with home_lock(config.home):
            clear_stale_stack_file(config.home)
            config.check_ports_free()
            creds = load_or_create_credentials(config.home, config.apps)
            return asyncio.run(run_stack(config, creds, _demo_enabled(args), console))
    except (StackConfigError, PolicyFileError, ValueError) as exc:
        console.print(
            f"[bold red]Cannot start the stack:[/] {exc}", highlight=False, soft_wrap=True
        )
        return 2


def status_command(args: argparse.Namespace) -> int:
    console = _console()
    home = tenure_home()
    stack = read_stack_file(home)
    if stack is None:
        console.print(f"No stack is running from {home} (no {stack_file_path(home)}).")
        console.print("Start one with `tenure stack run` (or `make run`).")
        return 1
    if not pid_alive(stack.get("supervisor_pid")):
        console.print(
            f"No stack is running from {home}: {stack_file_path(home)} is left from a stack that "
            "was killed. `tenure stack run` will replace it."
        )
        return 1
    checks = asyncio.run(check_stack(stack))
    table = Table(title=f"Tenure local stack ({home})", title_justify="left")
    table.add_column("part")
    table.add_column("where")
    table.add_column("status")
    for check in checks:
        status = "[green]ok[/]" if check.ok else f"[red]{check.problem}[/]"
        table.add_row(check.part, check.where, status)
    console.print(table)
    return 0 if all(check.ok for check in checks) else 1
