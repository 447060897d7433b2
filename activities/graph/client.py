"""Build the official msgraph-sdk client: for a real tenant or for the local emulator.

Temporal owns retries (docs/architecture.md, rule 4), so the SDK's retry handler is switched off: a 429 or 503
reaches our error mapping with its Retry-After intact, not retried behind Temporal's back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    AuthenticationProvider,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.request_adapter import RequestAdapter
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware import ParametersNameDecodingHandler, UserAgentHandler
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler
from temporalio import activity

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]


@dataclass(frozen=True)
class GraphSettings:
    base_url: str = DEFAULT_GRAPH_URL
    # A static bearer token (the local emulator); otherwise the client-secret credentials below.
    token: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:
        # Keep secrets out of logs and tracebacks that print the settings.
        return f"GraphSettings(base_url={self.base_url!r}, static_token={self.token is not None})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GraphSettings:
        env = os.environ if env is None else env
        token = env.get("TENURE_GRAPH_TOKEN") or None
        token_file = env.get("TENURE_GRAPH_TOKEN_FILE")
        if token is None and token_file:
            token = Path(token_file).read_text().strip()
        settings = cls(
            base_url=(env.get("TENURE_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/"),
            token=token,
            tenant_id=env.get("AZURE_TENANT_ID") or None,
            client_id=env.get("AZURE_CLIENT_ID") or None,
            client_secret=env.get("AZURE_CLIENT_SECRET") or None,
        )
        if token is None and not (
            settings.tenant_id and settings.client_id and settings.client_secret
        ):
            raise ValueError(
                "Graph credentials missing: set TENURE_GRAPH_TOKEN or TENURE_GRAPH_TOKEN_FILE, "
                "or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
            )
        return settings

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


class StaticTokenProvider(AccessTokenProvider):
    """Hands out one fixed token, and only to the configured Graph host."""

    def __init__(self, token: str, allowed_hosts: list[str]) -> None:
        self._token = token
        self._validator = AllowedHostsValidator(allowed_hosts)

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return self._token if self._validator.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


def _auth_provider(settings: GraphSettings) -> AuthenticationProvider:
    if settings.token is not None:
        return BaseBearerTokenAuthenticationProvider(
            StaticTokenProvider(settings.token, [settings.host])
        )
    # Imported here: only deployments against a real tenant need azure-identity at all.
    from azure.identity.aio import ClientSecretCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )

    credential = ClientSecretCredential(
        settings.tenant_id or "", settings.client_id or "", settings.client_secret or ""
    )
    return AzureIdentityAuthenticationProvider(
        credential, scopes=GRAPH_SCOPES, allowed_hosts=[settings.host]
    )


async def tag_with_activity_attempt(request: httpx.Request) -> None:
    """Say which activity attempt sends each call, so a request log can tie a retry to its throttle.

    Workflow ids carry HR event ids, which may hold any printable character: percent-encoded, the
    header stays ASCII (an `é` or a line break would otherwise fail every attempt to send).
    """
    if activity.in_activity():
        info = activity.info()
        tag = f"{info.workflow_id}:{info.activity_id}:{info.attempt}"
        request.headers["x-tenure-activity"] = header_safe(tag)


def header_safe(text: str) -> str:
    """`text` as printable ASCII for a header value: everything else percent-encoded (UTF-8)."""
    return quote(text, safe=":/@!$&'()*+,;=-._~")


async def send_for_json(adapter: RequestAdapter, request: RequestInformation) -> dict[str, Any]:
    """Send a request the SDK built and read the answer as plain JSON.

    The SDK's typed parse of a user (a model of hundreds of properties, imported lazily on every
    parse) cost more CPU than the rest of a joiner's Graph work; we read a few fields.
    """
    raw = await adapter.send_primitive_async(request, "bytes", {"XXX": ODataError})
    return json.loads(raw or b"{}")


def build_graph_client(settings: GraphSettings) -> GraphServiceClient:
    # Temporal owns retries (docs/architecture.md, rule 4), so the SDK's RetryHandler is left out of the
    # pipeline altogether, with the redirect, URL-rewrite and inspection handlers Tenure never
    # needs: each costs CPU on every call. Kept: $-parameter decoding and Graph's telemetry headers.
    http_client = GraphClientFactory.create_with_custom_middleware(
        middleware=[ParametersNameDecodingHandler(), UserAgentHandler(), GraphTelemetryHandler()],
        client=httpx.AsyncClient(
            timeout=settings.timeout_seconds, event_hooks={"request": [tag_with_activity_attempt]}
        ),
    )
    adapter = GraphRequestAdapter(_auth_provider(settings), client=http_client)
    # Without a trailing slash, or the SDK builds ".../v1.0//users".
    adapter.base_url = settings.base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)
