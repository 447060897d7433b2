"""`tenure audit export`: every recorded access change as JSON lines, through the API (auditors).

tenure audit export -o changes.jsonl --since 2026-01-01 --employee E1001
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO

import httpx

from cli.api_calls import ApiError, api_client, instant, problem_line

ACCESS_CHANGES = "/v1/audit/access-changes"


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("audit", help="export the access record (auditors)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    export = commands.add_parser(
        "export",
        help="every access granted, extended or removed, as JSON lines",
        description="Writes one access change per line, oldest first, with its cause.",
    )
    export.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (default: standard output)"
    )
    export.add_argument("--since", type=instant, metavar="ISO", help="only changes from then on")
    export.add_argument("--employee", metavar="EMPLOYEE_ID", help="only this person's access")
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    params = {}
    if args.since is not None:
        params["since"] = args.since.isoformat()
    if args.employee:
        params["employee_id"] = args.employee
    try:
        with api_client() as client:
            if args.output is None:
                export_changes(client, params, sys.stdout)
                return 0
            # Written aside and renamed: a failed export never leaves half a file behind.
            partial = args.output.with_name(args.output.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8") as out:
                    count = export_changes(client, params, out)
                os.replace(partial, args.output)
            finally:
                partial.unlink(missing_ok=True)
    except ApiError as err:
        print(f"tenure: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"tenure: cannot write {args.output}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"Wrote {count} access change(s) to {args.output}", file=sys.stderr)
    return 0


def export_changes(client: httpx.Client, params: dict[str, str], out: IO[str]) -> int:
    """Stream the export into `out`, line by line; the number of lines written."""
    count = 0
    try:
        with client.stream("GET", ACCESS_CHANGES, params=params) as response:
            if response.is_error:
                response.read()
                raise ApiError(problem_line(response))
            for line in response.iter_lines():
                if line.strip():
                    out.write(line + "\n")
                    count += 1
    except httpx.TransportError as err:
        raise ApiError(f"cannot reach the Tenure API at {client.base_url}: {err}") from err
    return count
