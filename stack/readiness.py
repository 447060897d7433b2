"""Probes telling when each part of the stack answers: None when ready, else the reason why not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client

from stack.processes import Child

TASK_QUEUE = "tenure-identity"
RPC_TIMEOUT = timedelta(seconds=3)

Probe = Callable[[], Awaitable[str | None]]


class NotReadyError(Exception):
    """A part of the stack did not become ready; the message names it and its log file."""


async def tcp_open(host: str, port: int, within_s: float = 1.0) -> str | None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within_s)
    except (OSError, TimeoutError) as exc:
        return f"{host}:{port} does not accept connections ({exc.__class__.__name__})"
    writer.close()
    return None


async def http_ok(url: str, token: str | None = None, within_s: float = 2.0) -> str | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=within_s) as http:
            response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return f"GET {url}: {exc.__class__.__name__}"
    if response.status_code != 200:
        return f"GET {url}: HTTP {response.status_code}"
    return None


async def temporal_ready(address: str, namespace: str) -> str | None:
    """The frontend answers its health check and knows the namespace."""
    host, _, port = address.rpartition(":")
    if reason := await tcp_open(host, int(port)):
        return reason
    try:
        client = await asyncio.wait_for(Client.connect(address, namespace=namespace), 5)
        if not await client.service_client.check_health(timeout=RPC_TIMEOUT):
            return "Temporal health check is not SERVING"
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=RPC_TIMEOUT
        )
    except Exception as exc:  # any RPC failure just means "not yet"
        return f"Temporal at {address}: {exc.__class__.__name__}: {exc}"
    return None


async def worker_polling(
    client: Client, namespace: str, since_epoch: float, task_queue: str = TASK_QUEUE
) -> str | None:
    """A worker polls the workflow task queue, and polled after `since_epoch`.

    The server lists pollers for minutes after they go away, so a poller last seen before this
    worker started (a previous run's, or the worker this one replaces) does not count.
    """
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        timeout=RPC_TIMEOUT,
    )
    for poller in response.pollers:
        if poller.last_access_time.ToDatetime().timestamp() >= since_epoch:
            return None
    return f"no worker polls task queue {task_queue!r} yet"


async def wait_ready(child: Child, probe: Probe, what: str, within_s: float) -> None:
    """Poll `probe` until it answers None; fail early if the child dies, late if time runs out."""
    deadline = time.monotonic() + within_s
    reason = "not checked yet"
    while True:
        if not child.alive():
            raise NotReadyError(
                f"{what} ({child.name}) {child.exit_text()} before it was ready; "
                f"see {child.log_path}\n{_indent(child.log_tail())}"
            )
        try:
            reason = await probe()
        except Exception as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
        if reason is None:
            return
        if time.monotonic() >= deadline:
            raise NotReadyError(
                f"{what} ({child.name}) was not ready after {within_s:.0f}s: {reason}; "
                f"see {child.log_path}\n{_indent(child.log_tail())}"
            )
        await asyncio.sleep(0.25)


def _indent(text: str) -> str:
    if not text:
        return "    | (log is empty)"
    return "\n".join(f"    | {line}" for line in text.splitlines())
