"""Which methods a path takes, across every route that serves it (for 405 and OPTIONS answers).

Asked of the routes themselves (Starlette's `matches`), so included routers count as well.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Match

_CANDIDATES = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: Any, scope: dict[str, Any]) -> list[str]:
    """The methods some route of `app` serves at the scope's path, plus OPTIONS; [] if none."""
    allowed = [
        method
        for method in _CANDIDATES
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in app.routes)
    ]
    return [*allowed, "OPTIONS"] if allowed else []
