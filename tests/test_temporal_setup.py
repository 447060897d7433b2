"""`tenure temporal setup` on a dev server started bare, as a new namespace is; then every workflow
kind runs on it with its search attributes on, and visibility finds each run by them.

One server, three namespaces: `setup-fresh` and `setup-clash` for the command itself, `default` for
the workflows (set up by the command in the `env` fixture, as an operator would before the first
worker). The time-skipping server cannot hold custom search attributes, which is why the workflow
harnesses there turn them off; here they stay on, so an attribute the setup forgot fails a test.
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from cli.main import main
from connection.search_attributes_setup import (
    Outcome,
    SearchAttributeSetupError,
    ensure_search_attributes,
)
from domain import search_attributes
from domain.access.request import (
    AccessRequestContract,
    AccessRequestInput,
    Actor,
    RequestStatus,
    RequestView,
    RevokeInput,
    request_workflow_id,
)
from domain.detective.sweep import GRAPH, SweepSettings
from domain.lifecycle.identity import (
    IdentityContract,
    IdentityState,
    LifecycleStage,
)
from domain.policy.model import Policy
from domain.search_attributes import EMPLOYEE_ID
from tests import test_orphan_sweep as sweep_harness
from tests.support.access import (
    AccessHarness,
    access_test_policy,
    access_worker,
    until_status,
    until_waiting,
)
from tests.support.fake_directory import FakeDirectory
from tests.support.lifecycle import until
from tests.support.temporal_dev import target_host, temporal_dev_server

FRESH, CLASH, WORKFLOWS = "setup-fresh", "setup-clash", "default"
TENURE_NAMES = [key.name for key in search_attributes.ALL]
GRACE = timedelta(seconds=2)

# The orphan sweep's world (Graph emulator, a SCIM app, stand-in identities, its worker) from its
# own tests, here on the `env` below.
world = sweep_harness.world


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def reported(self) -> dict[str, tuple[str, str]]:
        """The command's lines `  <name>  <type>  <outcome>`, by name."""
        lines = (line.split(maxsplit=2) for line in self.out.splitlines() if line.startswith("  "))
        return {name: (kind, outcome) for name, kind, outcome in lines}


async def tenure_setup(server: WorkflowEnvironment, namespace: str, *args: str) -> Ran:
    """`tenure temporal setup ARGS` with only TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE set."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    environ |= {"TEMPORAL_ADDRESS": target_host(server), "TEMPORAL_NAMESPACE": namespace}

    def run() -> Ran:
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, environ, clear=True), redirect_stdout(out):
            with redirect_stderr(err):
                code = main(["temporal", "setup", *args])
        return Ran(code, out.getvalue(), err.getvalue())

    # The command runs its own event loop (asyncio.run): it gets a thread of its own.
    return await asyncio.to_thread(run)


async def registered(client: Client, namespace: str) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server(
        search_attributes=(), extra_args=["--namespace", FRESH, "--namespace", CLASH]
    ) as server:
        yield server


@pytest.fixture(scope="module")
async def env(server: WorkflowEnvironment) -> WorkflowEnvironment:
    ran = await tenure_setup(server, WORKFLOWS)
    assert ran.code == 0, ran.err
    return server


def short_policy() -> Policy:
    """The access tests' policy, with a 2-second grace period on Finance's birthright and no
    retention: a whole life runs in seconds of real time."""
    raw = access_test_policy().model_dump()
    for rule in raw["birthright"]:
        if rule["name"] == "finance":
            rule["remove_after"] = GRACE
    raw["leaver"]["retention_days"] = 0
    return Policy.model_validate(raw)


@pytest.fixture(scope="module")
async def org(
    env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AccessHarness]:
    store = tmp_path_factory.mktemp("setup-record") / "record.db"
    async with access_worker(env, short_policy(), FakeDirectory(), store) as harness:
        yield harness


async def request(org: AccessHarness, package_id: str, beneficiary_id: str) -> WorkflowHandle:
    request_id = request_workflow_id(beneficiary_id, package_id, str(uuid.uuid4()))
    handle = await org.env.client.start_workflow(
        AccessRequestContract.WORKFLOW,
        AccessRequestInput(
            request_id=request_id,
            package_id=package_id,
            beneficiary_id=beneficiary_id,
            requester_id=beneficiary_id,
            justification="quarter close",
            submitted_at=await org.env.get_current_time(),
        ),
        id=request_id,
        task_queue=org.queue,
        result_type=RequestView,
        search_attributes=TypedSearchAttributes([SearchAttributePair(EMPLOYEE_ID, beneficiary_id)]),
    )
    org.requests.append(handle)
    return handle


async def until_listed(client: Client, query: str, expected: set[str]) -> None:
    """Visibility is eventually consistent: poll until `query` lists exactly these workflow ids."""
    found: set[str] = set()
    for _ in range(100):
        found = {execution.id async for execution in client.list_workflows(query)}
        if found == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query} lists {sorted(found)}, expected {sorted(expected)}")


# --- the command --------------------------------------------------------------------------------


async def test_setup_registers_every_attribute_once(server: WorkflowEnvironment) -> None:
    before = await tenure_setup(server, FRESH, "--check")
    assert before.code == 1
    assert before.reported() == dict.fromkeys(TENURE_NAMES, ("Keyword", "missing"))
    assert f"{len(TENURE_NAMES)} missing" in before.err and "tenure temporal setup" in before.err
    assert await registered(server.client, FRESH) == {}  # --check changed nothing

    first = await tenure_setup(server, FRESH)
    assert first.code == 0, first.err
    assert f"namespace {FRESH} at {target_host(server)}" in first.out
    assert first.reported() == dict.fromkeys(TENURE_NAMES, ("Keyword", "registered"))
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert await registered(server.client, FRESH) == dict.fromkeys(TENURE_NAMES, keyword)

    second = await tenure_setup(server, FRESH)
    assert second.code == 0, second.err
    assert second.reported() == dict.fromkeys(TENURE_NAMES, ("Keyword", "already registered"))

    after = await tenure_setup(server, FRESH, "--check")
    assert after.code == 0 and after.err == ""
    assert after.reported() == dict.fromkeys(TENURE_NAMES, ("Keyword", "already registered"))


async def test_a_type_clash_is_an_error_and_changes_nothing(server: WorkflowEnvironment) -> None:
    # Someone registered AccessPackage as Text before Tenure came along.
    await ensure_search_attributes(
        server.client, CLASH, [SearchAttributeKey.for_text("AccessPackage")]
    )
    ran = await tenure_setup(server, CLASH)
    assert ran.code == 2
    assert "AccessPackage is registered as Text, Tenure writes it as Keyword" in ran.err
    assert "Nothing was changed" in ran.err
    text = IndexedValueType.INDEXED_VALUE_TYPE_TEXT
    assert await registered(server.client, CLASH) == {"AccessPackage": text}
    assert (await tenure_setup(server, CLASH, "--check")).code == 2  # still refused, still named


async def test_an_unknown_namespace_is_named(server: WorkflowEnvironment) -> None:
    ran = await tenure_setup(server, "no-such-namespace")
    assert ran.code == 2
    assert "'no-such-namespace'" in ran.err and "NOT_FOUND" in ran.err


class LaggingOperatorService:
    """An OperatorService whose list shows an add only after `lag` more lists, as a dev server's
    may; `raced` answers the add ALREADY_EXISTS, as when another setup added them first."""

    def __init__(self, lag: int, raced: bool = False) -> None:
        self.lag, self.raced = lag, raced
        self.attributes: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.adds = 0

    async def list_search_attributes(self, req: object, **_: object) -> object:
        if self.pending and self.lag == 0:
            self.attributes |= self.pending
            self.pending = {}
        self.lag -= 1
        return mock.Mock(custom_attributes=dict(self.attributes))

    async def add_search_attributes(self, req: Any, **_: object) -> None:
        self.adds += 1
        self.pending = dict(req.search_attributes)
        if self.raced:
            raise RPCError("already exists", RPCStatusCode.ALREADY_EXISTS, b"")


def lagging_client(service: LaggingOperatorService) -> Any:
    return mock.Mock(namespace=WORKFLOWS, operator_service=service)


async def test_setup_waits_until_a_lagging_server_lists_what_it_added() -> None:
    service = LaggingOperatorService(lag=3)
    found = await ensure_search_attributes(lagging_client(service))
    assert {s.outcome for s in found} == {Outcome.REGISTERED} and service.adds == 1
    assert service.attributes.keys() == set(TENURE_NAMES)


async def test_setup_says_so_when_the_server_never_lists_them() -> None:
    service = LaggingOperatorService(lag=10_000)
    with pytest.raises(SearchAttributeSetupError, match="still does not list them"):
        await ensure_search_attributes(lagging_client(service), settle_within_s=0.5)


async def test_a_concurrent_setup_that_added_the_same_attributes_is_fine() -> None:
    service = LaggingOperatorService(lag=1, raced=True)
    found = await ensure_search_attributes(lagging_client(service))
    assert [s.name for s in found] == TENURE_NAMES and service.adds == 1


# --- every workflow kind, with its search attributes ---------------------------------------------


async def test_the_orphan_sweep_reads_identities_by_their_attributes(
    env: WorkflowEnvironment, world: tuple[sweep_harness.Directories, str]
) -> None:
    # The sweep finds managed identities by EmployeeId and leavers by LifecycleStage.
    _, queue = world
    settings = SweepSettings(dry_run=True, max_changes=10, protected=[sweep_harness.BREAK_GLASS])
    report = await sweep_harness._sweep(env.client, queue, settings)
    assert report.managed_identities == 2
    assert sweep_harness._keys(report.orphans) == {(GRAPH, "X1"), (GRAPH, "BG1")}
    app = sweep_harness.APP
    assert sweep_harness._keys(report.active_leavers) == {(GRAPH, "L1"), (app, "L1")}


async def test_an_access_request_is_found_by_package_and_status(
    env: WorkflowEnvironment, org: AccessHarness
) -> None:
    await org.hire("SAM", as_intake=True)
    await org.hire("SA1", manager_id="SAM", as_intake=True)
    handle = await request(org, "receivables", "SA1")
    await until_waiting(handle, 0)
    ours = 'AccessPackage = "receivables" AND EmployeeId = "SA1"'
    await until_listed(env.client, f'{ours} AND RequestStatus = "pending_approval"', {handle.id})

    await org.decide(handle, "SAM")
    await until_status(handle, RequestStatus.GRANTED)
    assert ("Receivables", "SA1") in org.directory.memberships
    await until_listed(env.client, f'{ours} AND RequestStatus = "granted"', {handle.id})

    await org.update(
        handle,
        AccessRequestContract.UPDATE_REVOKE,
        RevokeInput(actor=Actor(employee_id="ADMIN"), reason="audit finding"),
    )
    await until_status(handle, RequestStatus.REVOKED)
    assert ("Receivables", "SA1") not in org.directory.memberships
    await until_listed(env.client, f'{ours} AND RequestStatus = "revoked"', {handle.id})
    await until_listed(env.client, 'RequestStatus = "granted"', set())


async def test_an_identity_is_found_through_every_transition(
    env: WorkflowEnvironment, org: AccessHarness
) -> None:
    handle = await org.hire("SL1", as_intake=True)
    identity = f'EmployeeId = "SL1" AND WorkflowType = "{IdentityContract.WORKFLOW}"'
    await until_listed(env.client, f'{identity} AND LifecycleStage = "active"', {handle.id})

    # A move out of Finance: Ledger Readers stays for the grace period, then goes.
    await org.move("SL1", "Sales")
    moved = await until(
        handle,
        lambda s: any(h.type == "grace_removal" for h in s.history),
        "moved, and the grace period's removal done",
    )
    assert not any(a.target == "Ledger Readers" for a in moved.access)
    assert ("Ledger Readers", "SL1") not in org.directory.memberships

    # A leave today, and no retention: disabled, then deleted.
    await org.terminate("SL1")
    gone = await until(handle, lambda s: s.stage is LifecycleStage.DELETED, "deleted")
    await until_listed(env.client, f'{identity} AND LifecycleStage = "deleted"', {handle.id})

    # Every transition ran as a child workflow that visibility finds by its TransitionType.
    for transition, ids in _transitions(gone).items():
        query = f'EmployeeId = "SL1" AND TransitionType = "{transition}"'
        await until_listed(env.client, query, ids)


def _transitions(state: IdentityState) -> dict[str, set[str]]:
    """The child workflows the identity's log names, by the TransitionType each one carries."""
    kinds = {
        "hire": "joiner",
        "update": "mover",
        "grace_removal": "mover",
        "terminate": "leaver",
        "retention": "retention",
    }
    found: dict[str, set[str]] = {kind: set() for kind in kinds.values()}
    for entry in state.history:
        if entry.transition_workflow_id:
            found[kinds[entry.type]].add(entry.transition_workflow_id)
    assert {k: len(v) for k, v in found.items()} == {
        "joiner": 1,
        "mover": 2,  # the mover, then the removal after its grace period
        "leaver": 1,
        "retention": 1,
    }, state.history
    return found
