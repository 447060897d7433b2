"""Unknown query parameters are refused, not ignored: `?stauts=granted` would otherwise quietly
list everything, and a caller would read the answer as filtered."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.problems import ProblemException


async def only_declared_query_parameters(request: Request) -> None:
    """A dependency for every operation: 422 naming each query parameter it does not declare."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    declared = _declared(dependant)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise ProblemException(
            422,
            "Invalid request",
            f"Unknown query parameter(s): {listed}"
            + (f"; this operation takes {', '.join(sorted(declared))}." if declared else "."),
            errors=[
                {"field": f"query.{name}", "message": "not a parameter of this operation"}
                for name in unknown
            ],
        )


def _declared(dependant: Any) -> set[str]:
    """Query parameter names of an operation and of every dependency it uses."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return names
