"""`python -m audit migrate`: bring the access record the environment names to the newest schema.

The store does the same whenever it opens (the worker and the API migrate the record at start), so
this is only needed to migrate ahead of a rollout, or to check which revision a record is at. It
reads TENURE_ACCESS_RECORD_URL or TENURE_ACCESS_RECORD_DB (and TENURE_ACCESS_RECORD_PASSWORD_FILE),
as the worker and the API do.
"""

from __future__ import annotations

import argparse
import logging
import sys

from audit.migrate import head_revision
from audit.model import AccessRecordError
from audit.store import AccessRecordStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the record to the newest schema")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        store = AccessRecordStore.from_env()
    except AccessRecordError as err:
        print(f"tenure access record: {err}", file=sys.stderr)
        return 2
    store.close()
    print(
        f"access record {store.where}: schema revision {store.revision} (newest {head_revision()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
