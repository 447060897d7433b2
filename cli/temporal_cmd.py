"""`tenure temporal setup`: register the search attributes Tenure's workflows write on a namespace.

    tenure temporal setup            # self-hosted cluster or dev server: TEMPORAL_* as the worker
    tenure temporal setup --check    # only report what is missing (exit 1 if anything is)
    tenure temporal setup --cloud    # Temporal Cloud: TEMPORAL_NAMESPACE=<name>.<account id>,
                                     # TEMPORAL_CLOUD_API_KEY (or TEMPORAL_API_KEY)

Exit codes: 0 all registered, 1 (--check) something missing, 2 the namespace could not be checked
or changed (a type clash, an unreachable server, refused credentials); nothing is changed then.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace

from connection.cloud_search_attributes import (
    CloudSettings,
    connect_cloud,
    ensure_cloud_search_attributes,
)
from connection.search_attributes_setup import (
    AttributeStatus,
    Outcome,
    SearchAttributeSetupError,
    ensure_search_attributes,
)
from connection.temporal import TemporalSettings, TemporalSettingsError, connect


def register(groups: argparse._SubParsersAction) -> None:
    temporal = groups.add_parser("temporal", help="prepare a Temporal namespace for Tenure")
    commands = temporal.add_subparsers(dest="command", required=True, metavar="COMMAND")
    setup = commands.add_parser(
        "setup",
        help="register the search attributes Tenure's workflows write (safe to run again)",
        description="Registers every search attribute Tenure's workflows write, with its type, on "
        "the namespace the worker uses (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, "
        "TEMPORAL_TLS*). Attributes already there are left alone; one registered with another "
        "type stops the setup before anything changes. Run it before the first worker starts: "
        "workflows writing an unknown attribute fail their tasks until it exists.",
    )
    setup.add_argument(
        "--check",
        action="store_true",
        help="change nothing; list what is missing and exit 1 if anything is",
    )
    setup.add_argument(
        "--cloud",
        action="store_true",
        help="Temporal Cloud: change the namespace through the Cloud Operations API "
        "(API key in TEMPORAL_CLOUD_API_KEY or TEMPORAL_API_KEY)",
    )
    setup.add_argument(
        "--namespace",
        metavar="NAMESPACE",
        help="default TEMPORAL_NAMESPACE; with --cloud the namespace id <name>.<account id>",
    )
    setup.set_defaults(handler=_setup)


def _setup(args: argparse.Namespace) -> int:
    try:
        found, where = asyncio.run(_run(args))
    except (SearchAttributeSetupError, TemporalSettingsError) as err:
        print(f"tenure: {err}", file=sys.stderr)
        return 2
    print(f"Search attributes on {where}:")
    width = max(len(status.name) for status in found)
    for status in found:
        print(f"  {status.name:<{width}}  {status.type_name:<8}  {status.outcome}")
    missing = [status.name for status in found if status.outcome is Outcome.MISSING]
    if missing:
        print(
            f"tenure: {len(missing)} missing ({', '.join(missing)}): "
            f"run `tenure temporal setup{' --cloud' if args.cloud else ''}`",
            file=sys.stderr,
        )
        return 1
    return 0


async def _run(args: argparse.Namespace) -> tuple[list[AttributeStatus], str]:
    if args.cloud:
        cloud = CloudSettings.from_env(args.namespace)
        try:
            client = await connect_cloud(cloud)
        except RuntimeError as err:  # the SDK's "Failed client connect"
            raise SearchAttributeSetupError(
                f"cannot reach the Cloud Operations API at {cloud.address}: {err}"
            ) from err
        found = await ensure_cloud_search_attributes(
            client, cloud.namespace_id, check_only=args.check
        )
        return found, f"Temporal Cloud namespace {cloud.namespace_id}"

    settings = TemporalSettings.from_env()
    if args.namespace:
        settings = replace(settings, namespace=args.namespace)
    try:
        client = await connect(settings)
    except RuntimeError as err:
        raise SearchAttributeSetupError(
            f"cannot reach Temporal at {settings.address} (TEMPORAL_ADDRESS): {err}"
        ) from err
    found = await ensure_search_attributes(client, settings.namespace, check_only=args.check)
    return found, f"namespace {settings.namespace} at {settings.address}"
