"""The worker registry: every activity and child workflow any workflow calls is registered, every
stub has one implementation of the same signature, and an activity a worker lacks fails its step
at once instead of retrying for ever."""

from __future__ import annotations

import ast
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.access.requests import AccessActivities
from activities.detective.sod import SodActivities
from activities.detective.sweep import SweepActivities
from activities.graph.activities import GraphActivities
from activities.pim.alerts import PimAlertActivities
from activities.pim.graph import PimGraphActivities
from activities.pim.tickets import TicketActivities
from activities.policy import PolicyActivities
from activities.record import AccessRecordActivities
from activities.reviews.activities import ReviewActivities
from activities.scim.activities import ScimActivities
from activities.security.incidents import IncidentActivities
from domain.provisioning import UserIdInput
from tests.support.unregistered_call import CallsAnUnregisteredActivity
from workers import registry

ROOT = Path(__file__).resolve().parent.parent
ACTIVITY_CALLS = {
    "execute_activity",
    "start_activity",
    "execute_local_activity",
    "start_local_activity",
}
CHILD_CALLS = {"execute_child_workflow", "start_child_workflow"}
PRODUCTION = (
    PolicyActivities,
    AccessActivities,
    AccessRecordActivities,
    GraphActivities,
    ScimActivities,
    SweepActivities,
    ReviewActivities,
    PimGraphActivities,
    TicketActivities,
    IncidentActivities,
    PimAlertActivities,
    SodActivities,
)


def _calls(kinds: set[str]) -> list[tuple[Path, ast.Call]]:
    """Calls of `kinds` in the workflows. A helper that passes its own parameter on (such as
    IdentityCore._run_child) counts as one of the kinds: its callers' arguments are checked."""
    modules = [(p, ast.parse(p.read_text())) for p in sorted((ROOT / "workflows").rglob("*.py"))]
    kinds = set(kinds)
    for _, tree in modules:
        for fn in ast.walk(tree):
            if isinstance(fn, ast.AsyncFunctionDef | ast.FunctionDef):
                params = {a.arg for a in fn.args.args}
                for call in ast.walk(fn):
                    if _is_call(call, kinds) and _forwards(call, params):
                        kinds.add(fn.name)
    found = []
    for path, tree in modules:
        for node in ast.walk(tree):
            if _is_call(node, kinds) and not _forwards(node, _params_around(tree, node)):
                found.append((path, node))
    return found


def _is_call(node: ast.AST, kinds: set[str]) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in kinds
        and bool(node.args)
    )


def _forwards(call: ast.Call, params: set[str]) -> bool:
    first = call.args[0]
    return isinstance(first, ast.Name) and first.id in params


def _params_around(tree: ast.AST, node: ast.AST) -> set[str]:
    for fn in ast.walk(tree):
        if isinstance(fn, ast.AsyncFunctionDef | ast.FunctionDef) and any(
            n is node for n in ast.walk(fn)
        ):
            return {a.arg for a in fn.args.args}
    return set()


def _resolve(path: Path, expr: ast.expr) -> object:
    """Evaluate a call's first argument in the namespace of the module that makes the call."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    namespace = vars(__import__(module, fromlist=["_"]))
    return eval(compile(ast.Expression(expr), str(path), "eval"), dict(namespace))


def test_workflows_call_activities_only_through_registered_stubs() -> None:
    calls = _calls(ACTIVITY_CALLS)
    assert len(calls) >= 30  # the scan sees the workflows' calls
    implemented = {registry.activity_name(fn) for fn in registry.activities(*PRODUCTION)}
    for path, call in calls:
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        target = _resolve(path, call.args[0])
        assert not isinstance(target, str), f"{where}: an activity called by name, not a stub"
        assert not any(k.arg == "result_type" for k in call.keywords), f"{where}: result_type"
        assert registry.activity_name(target) in implemented, f"{where}: not registered"


def test_workflows_start_only_registered_children() -> None:
    calls = _calls(CHILD_CALLS)
    assert len(calls) >= 5
    names = registry.workflow_names()
    for path, call in calls:
        target = _resolve(path, call.args[0])
        name = target if isinstance(target, str) else None
        if name is None:
            defn = workflow._Definition.from_run_fn(target)
            name = defn.name if defn else None
        assert name in names, f"{path.relative_to(ROOT)}:{call.lineno}: {name!r} not registered"


def test_the_production_worker_implements_every_stub() -> None:
    chosen = registry.activities(*PRODUCTION)
    assert {registry.activity_name(fn) for fn in chosen} == set(registry.stubs_by_name())


def test_the_registry_refuses_missing_duplicate_and_mismatched_activities() -> None:
    with pytest.raises(registry.RegistryError, match=r"no implementation of: .*graph\.delete_user"):
        registry.activities(*(c for c in PRODUCTION if c is not GraphActivities))
    with pytest.raises(registry.RegistryError, match="implemented twice"):
        registry.activities(*PRODUCTION, ScimActivities)

    @activity.defn(name="graph.delete_user")
    async def wrong(input: str) -> None: ...

    with pytest.raises(registry.RegistryError, match=r"the stub takes .*UserIdInput"):
        registry.activities(wrong, complete=False)

    @activity.defn(name="graph.no_such_thing")
    async def stray(input: UserIdInput) -> None: ...

    with pytest.raises(registry.RegistryError, match="has no stub"):
        registry.activities(stray, complete=False)


async def _run_calling_workflow(env: WorkflowEnvironment, activities: list) -> str:
    queue = f"registry-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[CallsAnUnregisteredActivity], activities=activities
    ):
        return await env.client.execute_workflow(
            CallsAnUnregisteredActivity.run,
            id=f"registry-{uuid.uuid4()}",
            task_queue=queue,
            execution_timeout=timedelta(minutes=5),
        )


async def test_an_activity_no_worker_registered_fails_its_step_instead_of_retrying(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    result = await _run_calling_workflow(time_skipping_env, [_unrelated])
    assert result == "NotFoundError: attempts ended"


async def test_a_harness_activity_not_wired_fails_at_once(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    # Only the policy is wired: graph.delete_user is a stand-in that refuses at once.
    wired = registry.activities(PolicyActivities, complete=False)
    not_wired = [fn for fn in wired if registry.activity_name(fn) == "graph.delete_user"]
    assert await _run_calling_workflow(time_skipping_env, not_wired) == "NotWired: attempts ended"


@activity.defn(name="test.unrelated")
async def _unrelated() -> None: ...
