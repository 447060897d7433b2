"""The ASGI app of a local SCIM target: scim2-server's own app, our SQLite storage, a bearer token.

Everything SCIM (endpoints, validation, PATCH, filters, ETags, errors) is scim2-server's; this
module only wires its pieces together and refuses requests without the app's token.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path

from scim2_models import ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.requests import ScimRequest
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from emulators.scim.storage import AsyncSqliteStorage, SqliteStorage


class BearerTokenASGIApplication(ASGIApplication):
    """scim2-server's ASGI application, answering 401 to a request without one of the tokens."""

    def __init__(
        self, storage: AsyncSqliteStorage, provider: ScimProvider, tokens: Iterable[str]
    ) -> None:
        super().__init__(storage, provider)
        self.tokens = [t.encode() for t in tokens]

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        # Constant-time comparison: the token is the only thing guarding the app.
        if scheme.lower() != "bearer" or not any(
            hmac.compare_digest(token.encode(), known) for known in self.tokens
        ):
            raise UnauthorizedException


def build_provider() -> ScimProvider:
    """RFC 7643 Users (with the enterprise extension) and Groups, announcing bearer-token auth."""
    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    return ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )


def build_app(db_path: str | Path, token: str) -> tuple[BearerTokenASGIApplication, SqliteStorage]:
    """The app and its storage (the caller closes the storage when the server stops)."""
    provider = build_provider()
    storage = SqliteStorage(db_path, provider)
    return BearerTokenASGIApplication(AsyncSqliteStorage(storage), provider, [token]), storage
