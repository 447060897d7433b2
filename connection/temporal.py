"""How every Tenure process reaches Temporal: local dev server, self-hosted cluster or Temporal Cloud.

Settings come from the standard variables TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH (mTLS) and
TEMPORAL_TLS_SERVER_CA_CERT_PATH.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class TemporalSettingsError(ValueError):
    """The environment does not describe a usable Temporal connection; the message says what to set."""


@dataclass(frozen=True)
class TemporalSettings:
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    api_key: str | None = field(default=None, repr=False)
    tls: bool = False
    client_cert_path: str | None = None
    client_key_path: str | None = None
    server_ca_cert_path: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TemporalSettings:
        env = os.environ if environ is None else environ
        api_key = env.get("TEMPORAL_API_KEY") or None
        cert = env.get("TEMPORAL_TLS_CLIENT_CERT_PATH") or None
        key = env.get("TEMPORAL_TLS_CLIENT_KEY_PATH") or None
        if bool(cert) != bool(key):
            raise TemporalSettingsError(
                "set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH for mTLS, or neither"
            )
        return cls(
            address=env.get("TEMPORAL_ADDRESS") or cls.address,
            namespace=env.get("TEMPORAL_NAMESPACE") or cls.namespace,
            api_key=api_key,
            # Temporal Cloud takes API keys and client certificates over TLS only.
            tls=_flag(env, "TEMPORAL_TLS", default=bool(api_key or cert)),
            client_cert_path=cert,
            client_key_path=key,
            server_ca_cert_path=env.get("TEMPORAL_TLS_SERVER_CA_CERT_PATH") or None,
        )

    def tls_config(self) -> TLSConfig | bool:
        if not self.tls:
            return False
        if not (self.client_cert_path or self.server_ca_cert_path):
            return True
        return TLSConfig(
            client_cert=_read(self.client_cert_path, "TEMPORAL_TLS_CLIENT_CERT_PATH"),
            client_private_key=_read(self.client_key_path, "TEMPORAL_TLS_CLIENT_KEY_PATH"),
            server_root_ca_cert=_read(self.server_ca_cert_path, "TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
        )


async def connect(settings: TemporalSettings) -> Client:
    # Every process uses the pydantic converter: events and states must round-trip identically.
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key,
        tls=settings.tls_config(),
        data_converter=pydantic_data_converter,
    )


async def temporal_is_healthy(client: Client) -> bool:
    # GetSystemInfo rather than the gRPC health service: Temporal Cloud answers it too, and it
    # proves the credentials are accepted, not just that a port is open.
    try:
        await client.workflow_service.get_system_info(
            GetSystemInfoRequest(), retry=False, timeout=timedelta(seconds=3)
        )
        return True
    except Exception:
        return False


def _read(path: str | None, variable: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TemporalSettingsError(f"{variable}={path}: {err.strerror}") from err


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise TemporalSettingsError(f"{name}={env.get(name)!r}: expected true or false")
