"""Serve one local SCIM 2.0 target application that keeps its data in a SQLite file.

    python -m emulators.scim --host 127.0.0.1 --port 9001 --token T --db .tenure/crm.db --name crm

The token may also come from TENURE_SCIM_SERVER_TOKEN, so it need not appear in a process listing.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import uvicorn

from emulators.scim.app import build_app

log = logging.getLogger("emulators.scim")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.scim",
        description="A SCIM 2.0 target (scim2-server) whose Users and Groups survive restarts.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--token",
        default=os.environ.get("TENURE_SCIM_SERVER_TOKEN"),
        help="bearer token clients must send (default: $TENURE_SCIM_SERVER_TOKEN)",
    )
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created if absent)")
    parser.add_argument("--name", default="scim", help="application name, for the logs")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a bearer token is required: --token or TENURE_SCIM_SERVER_TOKEN")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.db.parent.mkdir(parents=True, exist_ok=True)
    app, storage = build_app(args.db, args.token)
    log.info("SCIM app %r on http://%s:%d/v2 (data: %s)", args.name, args.host, args.port, args.db)
    try:
        # uvicorn handles SIGINT/SIGTERM: in-flight requests finish, then we close the database.
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on")
    finally:
        storage.close()


if __name__ == "__main__":
    main()
