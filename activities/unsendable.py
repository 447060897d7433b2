"""Failures raised before a request reaches the wire, shared by the Graph and SCIM clients.

A header or URL that cannot hold a value (h11's protocol check on a line break, an encoding error on
a non-ASCII header), or a malformed URL: every retry would fail the same way, so the activity must
fail for good rather than retry forever (docs/architecture.md, rule 4).
"""

from __future__ import annotations

import httpx

UNSENDABLE: tuple[type[BaseException], ...] = (
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
    UnicodeError,
)
