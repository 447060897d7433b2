"""The request and reply shapes shared by the HTTP front, $batch and the resource handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Call:
    """One Graph request, whether it arrived over HTTP or inside a $batch."""

    method: str
    path: str  # below /v1.0, percent-decoded, e.g. "/users/ada@contoso.com"
    query: dict[str, str]  # keys lower-cased and without the "$" prefix: "filter", "top", ...
    body: Any
    service_root: str  # e.g. "http://127.0.0.1:8123/v1.0", for nextLink and @odata.context
    client_request_id: str | None = None


@dataclass(slots=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
