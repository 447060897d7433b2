"""`tenure`: the operator's command line. Each command group lives in its own module."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cli import (
    audit_cmd,
    hr_cmd,
    identity_cmd,
    login_cmd,
    pim_cmd,
    requests_cmd,
    reviews_cmd,
    schedules_cmd,
    sod_cmd,
    stack_cmd,
    temporal_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tenure",
        description="Identity lifecycle and access governance on Temporal.",
        epilog="Before the first worker runs against a namespace of your own, register the "
        "search attributes the workflows write: `tenure temporal setup` (add --cloud for "
        "Temporal Cloud), then the policy's schedules: `tenure schedules sync`. The local stack "
        "does both for itself.",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    stack_cmd.register(groups)
    hr_cmd.register(groups)
    identity_cmd.register(groups)
    login_cmd.register(groups)
    requests_cmd.register(groups)
    reviews_cmd.register(groups)
    pim_cmd.register(groups)
    sod_cmd.register(groups)
    audit_cmd.register(groups)
    temporal_cmd.register(groups)
    schedules_cmd.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Every command module sets `handler` on its parser: it returns the process exit code.
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    code = main()
    # Skip interpreter teardown: the Temporal client's Rust threads can abort a short-lived
    # process there after its work is done (temporalio/sdk-python#300, seen on `schedules sync`).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
