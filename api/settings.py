"""The API's settings, read once from the environment (12-factor style)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from domain.identity import IdentityContract

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """The environment does not describe a usable API; the message says what to set."""


@dataclass(frozen=True)
class ApiSettings:
    # Secrets stay out of repr(), hence out of logs and tracebacks.
    intake_token: str = field(repr=False)
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: str | None = field(default=None, repr=False)
    temporal_tls: bool = False
    task_queue: str = IdentityContract.TASK_QUEUE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        api_key = env.get("TEMPORAL_API_KEY") or None
        return cls(
            intake_token=_intake_token(env),
            temporal_address=env.get("TEMPORAL_ADDRESS") or cls.temporal_address,
            temporal_namespace=env.get("TEMPORAL_NAMESPACE") or cls.temporal_namespace,
            temporal_api_key=api_key,
            # Temporal Cloud takes API keys over TLS only: a key implies TLS unless told otherwise.
            temporal_tls=_flag(env, "TEMPORAL_TLS", default=api_key is not None),
            task_queue=env.get("TENURE_TASK_QUEUE") or cls.task_queue,
        )


def _intake_token(env: Mapping[str, str]) -> str:
    token = env.get("TENURE_INTAKE_TOKEN", "").strip()
    token_file = env.get("TENURE_INTAKE_TOKEN_FILE", "").strip()
    if not token and token_file:
        # A file lets Kubernetes/compose secrets be mounted rather than put in the environment.
        try:
            token = Path(token_file).read_text().strip()
        except OSError as err:
            raise SettingsError(f"TENURE_INTAKE_TOKEN_FILE={token_file}: {err.strerror}") from err
        if not token:
            raise SettingsError(f"TENURE_INTAKE_TOKEN_FILE={token_file} is empty")
    if not token:
        raise SettingsError(
            "no intake token: set TENURE_INTAKE_TOKEN, "
            "or TENURE_INTAKE_TOKEN_FILE to the path of a file holding it"
        )
    return token


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true or false")
