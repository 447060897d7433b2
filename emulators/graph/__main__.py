"""`python -m emulators.graph --port 8090 --db .tenure/graph.db --token T`"""

from __future__ import annotations

import argparse

import uvicorn

from emulators.graph.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Microsoft Graph v1.0 emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--db", default=None, help="SQLite file (omit for in-memory state)")
    parser.add_argument("--token", required=True, help="bearer token clients must present")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.db, args.token),
        host=args.host,
        port=args.port,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
