"""Typed references to every activity, for workflows to call (DESIGN: workflows decide, activities act).

Workflows cannot import the activity classes (they pull in msgraph and httpx), so each activity has
a stub here: the registered name, the input model and the result type, and no body. A workflow calls
`workflow.execute_activity(graph.ensure_user, EnsureGraphUserInput(...), **PROVISIONING)` and the
SDK takes the name and the result type from the stub. `workers/registry.py` checks at start-up that
every stub has exactly one implementation with the same signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.stubs import (
    access,
    graph,
    lifecycle,
    pim,
    pim_alerts,
    pim_graph,
    record,
    reviews,
    scim,
    security,
    sod,
    sweep,
)


def all_stubs() -> list[Callable[..., Any]]:
    """Every activity stub, from every capability and adapter."""
    return [
        fn
        for module in (
            lifecycle,
            access,
            record,
            graph,
            scim,
            sweep,
            reviews,
            pim,
            pim_graph,
            pim_alerts,
            security,
            sod,
        )
        for fn in (getattr(module, name) for name in module.__all__)
    ]
