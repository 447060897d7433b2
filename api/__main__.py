"""`python -m api --host 127.0.0.1 --port 8000`: serve the Tenure API with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from api.app import create_app
from api.server import server_config
from api.settings import ApiSettings, SettingsError
from audit.store import AccessRecordError
from domain.policy.file import PolicyFileError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description="Serve the Tenure API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    try:
        settings = ApiSettings.from_env()
    except SettingsError as err:
        print(f"tenure api: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        # The policy file is read once, here: a bad one stops the API before it serves anything;
        # so is the access record opened (and migrated): one it cannot open stops it too.
        app = create_app(settings)
    except (PolicyFileError, AccessRecordError) as err:
        print(f"tenure api: {err}", file=sys.stderr)
        return 2
    server = uvicorn.Server(
        server_config(app, host=args.host, port=args.port, log_level=args.log_level)
    )
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
