"""The Tenure worker: wires policy, Graph and SCIM clients into activities and runs the workflows.

Run with `python -m workers.main`. Configuration comes from the environment: TEMPORAL_* (see
connection/temporal.py), TENURE_POLICY, TENURE_GRAPH_* (activities/graph/client.py) and
TENURE_SCIM_<APP>_URL / _TOKEN for every app the policy names, and TENURE_ACCESS_RECORD_DB (the
access record store, audit/store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.access.requests import AccessActivities
from activities.detective.sod import SodActivities
from activities.detective.sweep import SweepActivities
from activities.graph.activities import GraphActivities
from activities.graph.client import GraphSettings, build_graph_client
from activities.pim.alerts import PimAlertActivities
from activities.pim.graph import PimGraphActivities
from activities.pim.tickets import TicketActivities, TicketingSettings
from activities.policy import PolicyActivities
from activities.record import AccessRecordActivities
from activities.reviews.activities import ReviewActivities
from activities.reviews.inventory import ReviewGraph
from activities.scim.activities import ScimActivities
from activities.scim.client import (
    ScimSettingsError,
    new_http_client,
    scim_app_clients,
    scim_apps_from_env,
)
from activities.security.incidents import IncidentActivities, IncidentGraph
from audit.store import AccessRecordError, AccessRecordStore
from connection.temporal import TemporalSettings, TemporalSettingsError, connect
from domain.lifecycle.identity import IdentityContract
from domain.policy.file import PolicyFileError, load_policy, policy_path_from_env
from domain.reviews.campaign import ReviewContract
from domain.security.incident import IncidentContract
from workers import registry

log = logging.getLogger("tenure.worker")


def workflow_runner() -> WorkflowRunner:
    """How workflow code runs (TENURE_WORKFLOW_SANDBOX).

    `off` (default): no sandbox. Measured on the joiner benchmark, the sandbox cost 25-30 % of
    throughput (module re-imports and proxied calls on every run). Determinism is guarded instead
    by the test suite, which runs every workflow in the SDK's strict sandbox, and by replay tests
    of recorded histories. `passthrough`: the sandbox still refuses non-deterministic calls but
    does not re-import modules. `strict`: the SDK's default, fully isolating sandbox.
    """
    mode = os.environ.get("TENURE_WORKFLOW_SANDBOX", "off").strip().lower()
    if mode == "off":
        return UnsandboxedWorkflowRunner()
    if mode == "strict":
        return SandboxedWorkflowRunner()
    if mode == "passthrough":
        return SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
        )
    raise ValueError(f"TENURE_WORKFLOW_SANDBOX={mode!r}: expected passthrough, strict or off")


async def run_worker() -> None:
    policy_path = policy_path_from_env()
    policy = load_policy(policy_path)
    temporal = TemporalSettings.from_env()
    graph_client = build_graph_client(GraphSettings.from_env())
    graph = GraphActivities(graph_client)
    http = new_http_client()
    scim_clients = scim_app_clients(scim_apps_from_env(policy.apps), http)
    scim = ScimActivities(scim_clients)
    client = await connect(temporal)
    # The orphan sweep reads Temporal's visibility for the identities Tenure manages.
    sweep = SweepActivities(graph_client, scim_clients, client)
    # Access requests reach identity entities through Temporal, and keep their record in a store
    # that outlives Temporal's retention.
    access = AccessActivities(client, graph)
    store = AccessRecordStore.from_env()
    record = AccessRecordActivities(store)
    plans = PolicyActivities(policy)
    reviews = ReviewActivities(
        store, policy, ReviewGraph(graph_client), scim_clients, scim, client, access
    )
    task_queue = os.environ.get("TENURE_TASK_QUEUE") or IdentityContract.TASK_QUEUE
    review_queue = os.environ.get("TENURE_REVIEW_TASK_QUEUE") or ReviewContract.TASK_QUEUE
    security_queue = os.environ.get("TENURE_SECURITY_TASK_QUEUE") or IncidentContract.TASK_QUEUE
    # Checked against the stubs workflows call: a missing one stops the worker here.
    pim_graph = PimGraphActivities(graph_client)
    tickets = TicketActivities(TicketingSettings.from_env(), http)
    # An incident's cut-off makes the leaver's and the activations' Graph calls itself.
    incidents = IncidentActivities(
        client, IncidentGraph(graph_client), policy, store, graph, pim_graph
    )
    alerts = PimAlertActivities(graph_client, store, policy)
    sod = SodActivities(client, store, policy)
    activities = registry.activities(
        plans,
        access,
        record,
        graph,
        scim,
        sweep,
        reviews,
        pim_graph,
        tickets,
        incidents,
        alerts,
        sod,
    )

    queues = {"identity": task_queue, "reviews": review_queue, "security": security_queue}
    chosen = worker_queues(os.environ.get("TENURE_WORKER_QUEUES", ""))
    workers = []
    if "identity" in chosen:
        workers.append(
            Worker(
                client,
                workflow_runner=workflow_runner(),
                # Identity workflows live for years and stay cached between events; a cache
                # smaller than the people in flight evicts running joiners and replays them.
                max_cached_workflows=int(os.environ.get("TENURE_MAX_CACHED_WORKFLOWS", "5000")),
                task_queue=task_queue,
                workflows=registry.WORKFLOWS,
                activities=activities,
            )
        )
    if "reviews" in chosen:
        # Campaign work polls its own queue with its own slots: a 100k-item review keeps its
        # batches and removals there, and hires on the main queue do not wait behind them.
        workers.append(
            Worker(
                client,
                workflow_runner=workflow_runner(),
                task_queue=review_queue,
                workflows=registry.REVIEW_WORKFLOWS,
                activities=activities,
                max_concurrent_activities=int(os.environ.get("TENURE_REVIEW_ACTIVITIES", "8")),
            )
        )
    if "security" in chosen:
        # Incidents have their own queue and slots (and, where the process runs only this
        # queue, their own CPU): an emergency revoke is picked up at once whatever the backlog.
        # Every incident is a new run, and a new run's first task comes from the queue's shared
        # (non-sticky) side, which the SDK's defaults poll with one poller: fifty incidents at
        # once then waited 5-9 s in turn for it. Most of the pollers go to that side.
        polls = security_workflow_polls(os.environ.get("TENURE_SECURITY_WORKFLOW_POLLS", ""))
        workers.append(
            Worker(
                client,
                workflow_runner=workflow_runner(),
                task_queue=security_queue,
                workflows=registry.SECURITY_WORKFLOWS,
                activities=activities,
                workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=polls),
                nonsticky_to_sticky_poll_ratio=SECURITY_NEW_RUN_POLL_SHARE,
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling %s on %s (namespace %s) with policy %s",
        ", ".join(repr(queues[name]) for name in chosen),
        temporal.address,
        temporal.namespace,
        policy_path,
    )
    async with contextlib.AsyncExitStack() as running:
        for one in workers:
            await running.enter_async_context(one)
        await stop.wait()
    await http.aclose()
    log.info("worker stopped")


WORKER_QUEUES = ("identity", "reviews", "security")
SECURITY_WORKFLOW_POLLS = 20
SECURITY_NEW_RUN_POLL_SHARE = 0.75  # of them for new runs (15 of 20); the rest for runs cached here


def security_workflow_polls(raw: str) -> int:
    """TENURE_SECURITY_WORKFLOW_POLLS: workflow-task polls the security queue keeps open."""
    if not raw.strip():
        return SECURITY_WORKFLOW_POLLS
    try:
        polls = int(raw)
    except ValueError:
        polls = 0
    if polls < 2:
        raise ValueError(f"TENURE_SECURITY_WORKFLOW_POLLS={raw!r}: expected a whole number >= 2")
    return polls


def worker_queues(raw: str) -> list[str]:
    """TENURE_WORKER_QUEUES: which queues this process polls (default all three), so incidents
    can have a process of their own: `identity,reviews` here, `security` there."""
    names = [n.strip().lower() for n in raw.split(",") if n.strip()] or list(WORKER_QUEUES)
    unknown = [n for n in names if n not in WORKER_QUEUES]
    if unknown:
        raise ValueError(
            f"TENURE_WORKER_QUEUES={raw!r}: unknown {', '.join(unknown)} "
            f"(expected some of {', '.join(WORKER_QUEUES)})"
        )
    return list(dict.fromkeys(names))


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("TENURE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    # httpx logs every request at INFO: thousands of lines a minute and measurable CPU.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        asyncio.run(run_worker())
    except (
        PolicyFileError,
        ScimSettingsError,
        TemporalSettingsError,
        AccessRecordError,
        registry.RegistryError,
        ValueError,
    ) as err:
        # Configuration errors are the operator's to fix: say what is wrong, no traceback.
        print(f"tenure worker: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
