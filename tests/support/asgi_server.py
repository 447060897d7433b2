"""Serve an ASGI app (the Tenure API, say) over real HTTP in the test's event loop, on a free port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from api.server import server_config


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Yield the app's base URL (`http://127.0.0.1:PORT`) while uvicorn serves it."""
    # Bound here and handed to uvicorn: no window for another process to take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # The API's own limits (header sizes): what a client of the real server meets.
    server = uvicorn.Server(server_config(app, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the startup error
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
