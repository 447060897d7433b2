"""`python -m emulators.graph --port 8710 --db .tenure/graph.db` (token from TENURE_GRAPH_EMULATOR_TOKEN)

The token may also be given as `--token=T`; the environment keeps it out of process listings.
The emulator is also the local token issuer (Entra-shaped discovery, JWKS and token endpoint under
`/{tenant id}/`); `--tenant-id` or TENURE_GRAPH_EMULATOR_TENANT_ID changes the tenant id.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from emulators.graph.app import create_app
from emulators.graph.tokens import DEFAULT_TENANT_ID


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Microsoft Graph v1.0 emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8710)
    parser.add_argument("--db", default=None, help="SQLite file (omit for in-memory state)")
    parser.add_argument(
        "--token",
        default=os.environ.get("TENURE_GRAPH_EMULATOR_TOKEN"),
        help="bearer token clients must present (default: $TENURE_GRAPH_EMULATOR_TOKEN)",
    )
    parser.add_argument(
        "--tenant-id",
        default=os.environ.get("TENURE_GRAPH_EMULATOR_TENANT_ID") or DEFAULT_TENANT_ID,
        help="tenant id in the token issuer's URLs and tokens "
        f"(default: $TENURE_GRAPH_EMULATOR_TENANT_ID, else {DEFAULT_TENANT_ID})",
    )
    args = parser.parse_args()
    if not args.token:
        parser.error("a bearer token is required: --token or TENURE_GRAPH_EMULATOR_TOKEN")
    uvicorn.run(
        create_app(args.db, args.token, args.tenant_id),
        host=args.host,
        port=args.port,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
