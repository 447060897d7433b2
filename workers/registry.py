"""The one registry of what a Tenure worker runs: every workflow, and every activity checked
against the typed stubs workflows call (domain/stubs/).

The worker, the test harnesses and the replayer all take their lists from here, so a workflow
added to a capability is registered everywhere at once, and an activity a workflow calls but no
worker implements is found when the worker starts, not by a task retrying in production.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from domain.stubs import all_stubs
from workflows import access, detective, lifecycle, pim, reviews, security

# Each capability package exports its workflows; the worker runs them all.
LIFECYCLE_WORKFLOWS: list[type] = lifecycle.WORKFLOWS
ACCESS_WORKFLOWS: list[type] = access.WORKFLOWS
DETECTIVE_WORKFLOWS: list[type] = detective.WORKFLOWS
PIM_WORKFLOWS: list[type] = pim.WORKFLOWS
# Incidents run on their own queue too (IncidentContract.TASK_QUEUE).
SECURITY_WORKFLOWS: list[type] = security.WORKFLOWS
# The main task queue's workflows. Access reviews run on their own queue
# (ReviewContract.TASK_QUEUE), so a campaign's batches never queue ahead of a hire.
WORKFLOWS: list[type] = [
    *LIFECYCLE_WORKFLOWS,
    *ACCESS_WORKFLOWS,
    *DETECTIVE_WORKFLOWS,
    *PIM_WORKFLOWS,
]
REVIEW_WORKFLOWS: list[type] = reviews.WORKFLOWS
ALL_WORKFLOWS: list[type] = [*WORKFLOWS, *REVIEW_WORKFLOWS, *SECURITY_WORKFLOWS]


class RegistryError(ValueError):
    """The activities given do not match the stubs (missing, twice, or another signature)."""


def workflow_names(workflows: Iterable[type] = ALL_WORKFLOWS) -> set[str]:
    names = set()
    for cls in workflows:
        defn = workflow._Definition.must_from_class(cls)
        assert defn.name is not None
        names.add(defn.name)
    return names


def activity_name(fn: Callable[..., Any]) -> str:
    defn = activity._Definition.from_callable(fn)
    if defn is None or defn.name is None:
        raise RegistryError(f"{fn!r} is not an activity (no @activity.defn with a name)")
    return defn.name


def stubs_by_name() -> dict[str, Callable[..., Any]]:
    return {activity_name(stub): stub for stub in all_stubs()}


def defined_activities(source: object) -> list[Callable[..., Any]]:
    """The activities of one source: a callable that is one, or every @activity.defn method of
    an object (an activity class instance) or of a class (for checks without clients)."""
    if callable(source) and activity._Definition.from_callable(source) is not None:
        return [source]
    found = []
    for name in sorted(dir(source)):
        if name.startswith("__"):
            continue
        member = getattr(source, name)
        if callable(member) and activity._Definition.from_callable(member) is not None:
            found.append(member)
    return found


def activities(*sources: object, complete: bool = True) -> list[Callable[..., Any]]:
    """Every activity of the sources, checked against the stubs.

    `complete=True` (a real worker): every stub must have exactly one implementation. A test
    harness that wires only some adapters passes `complete=False`: each missing activity is then
    one that fails at once, saying it is not wired here, instead of a task that never completes.
    """
    stubs = stubs_by_name()
    chosen: dict[str, Callable[..., Any]] = {}
    for source in sources:
        for fn in defined_activities(source):
            name = activity_name(fn)
            if name in chosen:
                raise RegistryError(f"activity {name!r} is implemented twice")
            stub = stubs.get(name)
            if stub is None:
                raise RegistryError(
                    f"activity {name!r} has no stub in domain/stubs/: no workflow can call it"
                )
            _check_signature(name, stub, fn)
            chosen[name] = fn
    missing = sorted(set(stubs) - set(chosen))
    if missing and complete:
        raise RegistryError(f"no implementation of: {', '.join(missing)}")
    return [*chosen.values(), *(_not_wired(stubs[name]) for name in missing)]


def _check_signature(name: str, stub: Callable[..., Any], fn: Callable[..., Any]) -> None:
    want, got = _signature(stub), _signature(fn)
    if want != got:
        raise RegistryError(
            f"activity {name!r}: the stub takes {want[0]} and returns {want[1]}, "
            f"the implementation takes {got[0]} and returns {got[1]}"
        )


def _signature(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    target = inspect.unwrap(fn)
    hints = typing.get_type_hints(target)
    params = [
        hints.get(p.name) for p in inspect.signature(target).parameters.values() if p.name != "self"
    ]
    return params, hints.get("return", type(None))


def _not_wired(stub: Callable[..., Any]) -> Callable[..., Any]:
    name = activity_name(stub)

    @activity.defn(name=name)
    async def not_wired(*args: Any) -> None:
        raise ApplicationError(
            f"activity {name!r} is not wired in this worker", type="NotWired", non_retryable=True
        )

    return not_wired
