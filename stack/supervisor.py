"""`tenure stack run`: start the local stack in order, wait until each part answers, keep it up.

Temporal and the emulators hold state, so if one of them dies the stack stops rather than limp on;
the worker and the API are stateless and are restarted (with backoff) when they die.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from temporalio.client import Client
from temporalio.service import RPCError

from connection.schedules_sync import Action, ScheduleSyncError, sync_schedules
from connection.search_attributes_setup import (
    Outcome,
    SearchAttributeSetupError,
    ensure_search_attributes,
)
from domain.lifecycle.identity import IdentityContract
from domain.pim.alert_scan import PimAlertContract
from domain.security.incident import IncidentContract
from stack import children, readiness
from stack.banner import print_banner, print_demo_people
from stack.config import StackConfig, StackConfigError
from stack.credentials import Credentials
from stack.demo import ensure_demo_feed, post_feed
from stack.demo_requests import (
    DemoEndpoints,
    DemoRequestError,
    identity_active,
    run_demo_requests,
)
from stack.processes import Child
from stack.readiness import NotReadyError
from stack.stack_file import read_stack_file, remove_stack_file, write_stack_file
from stack.status import pid_alive

READY_TIMEOUT = {"temporal": 60.0, "emulator": 30.0, "worker": 90.0, "api": 60.0}
RESTARTABLE = (children.WORKER, children.SECURITY_WORKER, children.API)
# A child that dies sooner than this after its start counts as a quick failure.
QUICK_FAILURE_SECONDS = 30.0
MAX_QUICK_FAILURES = 5
STOP_TIMEOUT = 10.0


class StackFailedError(Exception):
    """The stack cannot go on; the message says what failed and where its log is."""


class Stack:
    def __init__(self, config: StackConfig, creds: Credentials, console: Console) -> None:
        self.config = config
        self.creds = creds
        self.console = console
        self.children: dict[str, Child] = {}
        self.client: Client | None = None
        self.quick_failures: dict[str, int] = {}
        self.background: set[asyncio.Task[None]] = set()

    def say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.console.print(f"[dim]{stamp}[/] {message}", highlight=False, soft_wrap=True)

    # --- starting ---------------------------------------------------------------------------

    def _spawn(self, child: Child) -> Child:
        self.children[child.name] = child
        child.start()
        return child

    async def start(self) -> None:
        config, creds = self.config, self.creds
        config.logs_dir.mkdir(parents=True, exist_ok=True)
        # Temporal and the emulators don't depend on each other: start them together, then wait for
        # each in order, so a slow machine pays the start-up time once.
        self.say("starting Temporal, the Graph emulator and SCIM apps: " + ", ".join(config.apps))
        temporal = self._spawn(children.temporal_child(config))
        graph = self._spawn(children.graph_child(config, creds))
        scims = {app: self._spawn(children.scim_child(config, creds, app)) for app in config.apps}

        await readiness.wait_ready(
            temporal,
            lambda: readiness.temporal_ready(config.temporal_address, config.namespace),
            "Temporal dev server",
            READY_TIMEOUT["temporal"],
        )
        self.client = await Client.connect(config.temporal_address, namespace=config.namespace)
        await self._register_search_attributes()
        await readiness.wait_ready(
            graph,
            lambda: readiness.http_ok(f"{config.graph_root}/_emulator/health", creds.graph_token),
            "Graph emulator",
            READY_TIMEOUT["emulator"],
        )
        # Seed before the worker starts, so no activity ever looks for a group that isn't there yet.
        await self._seed_graph(graph)
        for app, scim in scims.items():
            url = f"{config.scim_url(app)}/ServiceProviderConfig"
            token = creds.scim_tokens[app]
            await readiness.wait_ready(
                scim,
                lambda url=url, token=token: readiness.http_ok(url, token),
                f"SCIM app {app!r}",
                READY_TIMEOUT["emulator"],
            )

        self.say("starting the Tenure worker and API")
        worker = self._spawn(children.worker_child(config, creds))
        security = self._spawn(children.worker_child(config, creds, children.SECURITY_WORKER))
        api = self._spawn(children.api_child(config, creds))
        await self._wait_worker(worker)
        await self._wait_worker(security)
        await self._ensure_schedules()
        await self._wait_api(api)

    async def _register_search_attributes(self) -> None:
        """What the workflows write, before the worker starts: as `tenure temporal setup` does."""
        assert self.client is not None
        try:
            found = await ensure_search_attributes(self.client, self.config.namespace)
        except SearchAttributeSetupError as exc:
            raise StackFailedError(f"Temporal search attributes: {exc}") from None
        added = [status.name for status in found if status.outcome is Outcome.REGISTERED]
        self.say(
            f"search attributes registered: {', '.join(added)}"
            if added
            else "search attributes: all registered already"
        )

    async def _ensure_schedules(self) -> None:
        """The policy's schedules (orphan sweep, recurring reviews), as `tenure schedules sync`."""
        assert self.client is not None
        try:
            report = await sync_schedules(
                self.client, self.config.policy, IdentityContract.TASK_QUEUE
            )
        except (RPCError, ScheduleSyncError) as exc:
            # The rest of the stack works without them: say so rather than stop.
            self.say(f"[yellow]schedules not brought in line with the policy:[/] {exc}")
            return
        if not report.entries:
            self.say("schedules: none in the policy")
            return
        self.say(f"schedules: {report.summary()}")
        for entry in report.entries:
            if entry.action is Action.CONFLICT:
                self.say(f"[yellow]schedule {entry.schedule_id!r}:[/] {entry.note}")

    async def _wait_worker(self, worker: Child) -> None:
        assert self.client is not None
        client, since = self.client, time.time() - (time.monotonic() - worker.started_at)
        security = worker.name == children.SECURITY_WORKER
        queue = IncidentContract.TASK_QUEUE if security else readiness.TASK_QUEUE
        await readiness.wait_ready(
            worker,
            lambda: readiness.worker_polling(client, self.config.namespace, since, queue),
            "Tenure security worker" if security else "Tenure worker",
            READY_TIMEOUT["worker"],
        )

    async def _wait_api(self, api: Child) -> None:
        await readiness.wait_ready(
            api,
            lambda: readiness.http_ok(f"{self.config.api_url}/healthz"),
            "Tenure API",
            READY_TIMEOUT["api"],
        )

    async def _seed_graph(self, graph: Child) -> None:
        """The policy's groups and the notification mailbox; the emulator's seed is idempotent."""
        tenant = self.config.policy.tenant
        body = {
            "groups": [{"displayName": name} for name in self.config.policy.groups],
            "users": [
                {
                    "userPrincipalName": tenant.mail_sender,
                    "displayName": "Tenure notifications",
                    "accountEnabled": True,
                    "mailNickname": tenant.mail_sender.split("@", 1)[0],
                }
            ],
        }
        url = f"{self.config.graph_root}/_emulator/seed"
        headers = {"Authorization": f"Bearer {self.creds.graph_token}"}
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                response = await http.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StackFailedError(
                f"seeding the Graph emulator failed: POST {url}: {exc!r}; see {graph.log_path}"
            ) from None
        if response.status_code >= 300:
            raise StackFailedError(
                f"seeding the Graph emulator failed: POST {url} answered {response.status_code}: "
                f"{response.text[:300]}; see {graph.log_path}"
            )
        self.say(
            f"Graph emulator seeded: {len(body['groups'])} groups, mailbox {tenant.mail_sender}"
        )

    # --- describing -------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The content of stack.json (docs/architecture.md#the-local-stack)."""
        config, creds = self.config, self.creds
        return {
            "temporal": {
                "address": config.temporal_address,
                "namespace": config.namespace,
                "ui_url": f"http://{config.host}:{config.temporal_ui_port}",
            },
            "api": {
                "url": config.api_url,
                "intake_token": creds.intake_token,
                "siem_token": creds.siem_token,
                "docs_url": f"{config.api_url}/docs",
                "token_issuer": config.token_issuer,
                "token_audience": config.token_audience,
            },
            "graph": {
                "url": config.graph_url,
                "token": creds.graph_token,
                "control_url": f"{config.graph_root}/_emulator",
                "tenant_id": config.graph_tenant_id,
                "token_endpoint": config.token_endpoint,
            },
            "scim_apps": {
                app: {"url": config.scim_url(app), "token": creds.scim_tokens[app]}
                for app in config.apps
            },
            "home": str(config.home),
            "policy": str(config.policy_path),
            "logs": str(config.logs_dir),
            "supervisor_pid": os.getpid(),
            "processes": {name: child.pid for name, child in self.children.items()},
        }

    def write_stack_file(self) -> Path:
        return write_stack_file(self.describe(), self.config.home)

    # --- supervising ------------------------------------------------------------------------

    async def supervise(self, stop: asyncio.Event) -> None:
        """Until `stop`: restart the worker or API when they die; fail if anything else dies."""
        while not stop.is_set():
            for name, child in list(self.children.items()):
                if child.alive():
                    continue
                if name not in RESTARTABLE:
                    raise StackFailedError(
                        f"{name} {child.exit_text()}; the stack cannot go on without it. "
                        f"See {child.log_path}\n{child.log_tail()}"
                    )
                await self._restart(child, stop)
                if stop.is_set():
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def _restart(self, child: Child, stop: asyncio.Event) -> None:
        ran_for = time.monotonic() - child.started_at
        quick = ran_for < QUICK_FAILURE_SECONDS
        failures = self.quick_failures.get(child.name, 0) + 1 if quick else 1
        self.quick_failures[child.name] = failures
        if failures > MAX_QUICK_FAILURES:
            raise StackFailedError(
                f"{child.name} died {MAX_QUICK_FAILURES} times in quick succession; giving up. "
                f"See {child.log_path}\n{child.log_tail()}"
            )
        delay = 0.5 * 2 ** (failures - 1)
        self.say(
            f"[yellow]{child.name} {child.exit_text()}[/] after {ran_for:.0f}s; restarting in "
            f"{delay:.1f}s (see {child.log_path})"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return
        child.start()
        self.write_stack_file()  # processes.<name> must name the live pid
        self.say(f"{child.name} restarted (pid {child.pid})")
        task = asyncio.create_task(self._report_ready(child))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _report_ready(self, child: Child) -> None:
        workers = (children.WORKER, children.SECURITY_WORKER)
        wait = self._wait_worker if child.name in workers else self._wait_api
        try:
            await wait(child)
        except NotReadyError as exc:
            # The supervise loop sees the death (if any) and restarts again; just say what happened.
            self.say(f"[yellow]{exc}[/]")
            return
        self.say(
            f"{child.name} is ready again ({time.monotonic() - child.started_at:.1f}s after start)"
        )

    # --- stopping ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop children in reverse start order; whatever a child did is on disk by then."""
        for task in list(self.background):
            task.cancel()
        for name, child in reversed(self.children.items()):
            if child.alive():
                self.say(f"stopping {name} (pid {child.pid})")
                await child.stop(STOP_TIMEOUT)


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """One `tenure stack run` per TENURE_HOME: two would share databases and stack.json."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "stack.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackConfigError(
                f"another `tenure stack run` is using {home}; stop it, or set TENURE_HOME elsewhere"
            ) from None
        yield


def clear_stale_stack_file(home: Path) -> None:
    """A stack.json left by a supervisor that was killed outright is not a running stack."""
    stale = read_stack_file(home)
    if stale is None:
        return
    if pid_alive(stale.get("supervisor_pid")):
        raise StackConfigError(
            f"a stack is already running from {home} (pid {stale['supervisor_pid']}); "
            "stop it first, or set TENURE_HOME elsewhere"
        )
    remove_stack_file(home)


async def _post_demo(stack: Stack) -> None:
    path, events = ensure_demo_feed(stack.config.home)
    print_demo_people(stack.console, events)
    try:
        accepted = await post_feed(stack.config.api_url, stack.creds.intake_token, events)
    except (httpx.HTTPError, RuntimeError) as exc:
        stack.say(f"[red]demo HR feed not accepted:[/] {exc}")
        return
    stack.say(
        f"demo HR feed ({path}): {accepted} of {len(events)} hire events accepted; "
        "repeats from earlier runs are acknowledged and applied once"
    )
    await _make_demo_requests(stack)


async def _make_demo_requests(stack: Stack) -> None:
    """The demo's access requests; a failure is reported, and the stack goes on without them."""
    config, client = stack.config, stack.client
    assert client is not None
    endpoints = DemoEndpoints(
        api_url=config.api_url,
        token_endpoint=config.token_endpoint,
        control_url=f"{config.graph_root}/_emulator",
        graph_token=stack.creds.graph_token,
        audience=config.token_audience,
    )
    try:
        await run_demo_requests(
            endpoints, lambda employee_id: identity_active(client, employee_id), stack.say
        )
        # The role planted outside Tenure shows in `tenure pim alerts` now, not in an hour.
        await client.get_schedule_handle(PimAlertContract.SCHEDULE_ID).trigger()
        stack.say("demo PIM: alert scan run now (tenure pim alerts)")
    except DemoRequestError as exc:
        stack.say(f"[yellow]demo requests not made:[/] {exc}")
    except Exception as exc:  # the demo never takes the stack down
        stack.say(f"[red]demo requests failed:[/] {exc!r}")


async def run_stack(config: StackConfig, creds: Credentials, demo: bool, console: Console) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until the stack fails (exit 1)."""
    stack = Stack(config, creds, console)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    exit_code = 0
    try:
        # Start-up is interruptible: Ctrl-C while waiting for Temporal stops what was started.
        starting = asyncio.create_task(stack.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        else:
            stopping.cancel()
            starting.result()  # raises what made start-up fail
            path = stack.write_stack_file()
            print_banner(console, stack.describe(), str(path), demo=demo)
            if demo:
                task = asyncio.create_task(_post_demo(stack))
                stack.background.add(task)
                task.add_done_callback(stack.background.discard)
            console.print("Ctrl-C stops everything.\n")
            await stack.supervise(stop)
    except (NotReadyError, StackFailedError, StackConfigError, OSError) as exc:
        console.print(f"[bold red]The stack stopped:[/] {exc}", highlight=False, soft_wrap=True)
        exit_code = 1
    finally:
        remove_stack_file(config.home)
        await stack.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    console.print("Stopped." if exit_code == 0 else "Stopped after a failure.")
    return exit_code
