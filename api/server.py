"""How the API is served: uvicorn with explicit limits, for `python -m api` and the tests alike."""

from __future__ import annotations

from typing import Any

import uvicorn

from api.limits import SERVER_HEADER_LIMIT


def server_config(app: Any, **options: Any) -> uvicorn.Config:
    """A uvicorn config with Tenure's limits; `options` are uvicorn's (host, port, log_level...)."""
    return uvicorn.Config(
        app,
        # h11 explicitly, with a header buffer well above what `api.limits` answers itself.
        http="h11",
        h11_max_incomplete_event_size=SERVER_HEADER_LIMIT,
        # lifespan "on": a Temporal that cannot be reached fails startup loudly.
        lifespan="on",
        **options,
    )
