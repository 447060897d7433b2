"""Header limits, enforced before routing, so an oversize request gets a problem document.

uvicorn (h11) drops a connection whose headers outgrow its buffer with a bare `400 Invalid HTTP
request`; `api.server` sets that buffer to `SERVER_HEADER_LIMIT`, well above the limits here, so
everything between gets an answer a client can read: 431 for headers too large altogether, 401 for a
bearer token larger than any identity provider issues.
"""

from __future__ import annotations

import json
from typing import Any

from api.problems import PROBLEM_MEDIA_TYPE

# Entra access tokens run to a few KB (more with many group claims, which Entra caps at 200).
MAX_TOKEN_BYTES = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024
# What uvicorn buffers before it gives up on a connection (see api.server).
SERVER_HEADER_LIMIT = 1024 * 1024

Scope = dict[str, Any]


class HeaderLimits:
    """Pure ASGI middleware: refuse oversize headers and credentials with problem+json."""

    def __init__(
        self,
        app: Any,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_token_bytes: int = MAX_TOKEN_BYTES,
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_token_bytes = max_token_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await _answer(send, *refusal)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str, dict[str, str]] | None:
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        path = scope.get("path", "")
        for name, value in headers:
            # A credential only /v1/ reads: elsewhere it is just one more header (431 below).
            if (
                name.lower() == b"authorization"
                and len(value) > self.max_token_bytes
                and path.startswith("/v1/")
            ):
                realm = "tenure-intake" if path.startswith("/v1/hr/") else "tenure"
                return (
                    401,
                    "Unauthorized",
                    f"Invalid bearer token: it takes {len(value)} bytes; no token this API "
                    f"accepts is larger than {self.max_token_bytes}.",
                    {
                        "WWW-Authenticate": f'Bearer realm="{realm}", error="invalid_token", '
                        'error_description="token too large"'
                    },
                )
        # The credential first (a clearer answer for the commonest oversize header), then the rest.
        total = sum(len(name) + len(value) + 4 for name, value in headers)
        if total > self.max_header_bytes:
            return (
                431,
                "Request Header Fields Too Large",
                f"The request's headers take {total} bytes; at most {self.max_header_bytes} "
                "are accepted.",
                {},
            )
        return None


async def _answer(send: Any, status: int, title: str, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    raw_headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        # The rest of an oversize request is not read: close rather than reuse the connection.
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body.encode()})
