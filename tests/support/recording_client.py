"""A Temporal client that notes every workflow the API starts (or signals-with-start), so a test can
tell whether anything of a request reached Temporal."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client


class RecordingClient:
    """Delegates to a real client; `started` lists the ids of `start_workflow` calls, in order."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.started: list[str] = []

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        self.started.append(str(kwargs.get("id")))
        return await self._client.start_workflow(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
