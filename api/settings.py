"""The API's settings, read once from the environment (12-factor style)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from api.caller import TokenSettings
from audit.store import URL_VAR, AccessRecordError, record_url_from_env
from connection.temporal import TemporalSettings, TemporalSettingsError
from domain.lifecycle.identity import IdentityContract
from domain.policy.file import DEFAULT_POLICY_PATH, policy_path_from_env
from domain.security.incident import IncidentContract


class SettingsError(ValueError):
    """The environment does not describe a usable API; the message says what to set."""


@dataclass(frozen=True)
class ApiSettings:
    # Secrets stay out of repr(), hence out of logs and tracebacks.
    intake_token: str = field(repr=False)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    task_queue: str = IdentityContract.TASK_QUEUE
    # Bearer JWTs of people (TENURE_API_TOKEN_*); None when no token issuer is configured.
    tokens: TokenSettings | None = None
    # The policy file (TENURE_POLICY): the access API validates requests against its packages.
    policy_path: Path = DEFAULT_POLICY_PATH
    # The access record the worker writes: a SQLite file (TENURE_ACCESS_RECORD_DB) or a database URL
    # (TENURE_ACCESS_RECORD_URL, which is used when set); without either the access endpoints that
    # read records answer 503. A URL's password never shows in repr().
    access_record_db: Path | None = None
    access_record_url: URL | None = None
    # The SIEM/SOAR tools' own bearer token for POST /v1/security/incidents (TENURE_SIEM_TOKEN
    # or TENURE_SIEM_TOKEN_FILE); None: that endpoint answers 503 saying what to set.
    siem_token: str | None = field(default=None, repr=False)
    # Where incidents run (the worker's TENURE_SECURITY_TASK_QUEUE).
    security_task_queue: str = IncidentContract.TASK_QUEUE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        try:
            temporal = TemporalSettings.from_env(env)
        except TemporalSettingsError as err:
            raise SettingsError(str(err)) from err
        try:
            tokens = TokenSettings.from_env(env)
        except ValueError as err:
            raise SettingsError(str(err)) from err
        return cls(
            intake_token=_intake_token(env),
            temporal=temporal,
            task_queue=env.get("TENURE_TASK_QUEUE") or cls.task_queue,
            tokens=tokens,
            policy_path=policy_path_from_env(env),
            access_record_db=_optional_path(env, "TENURE_ACCESS_RECORD_DB"),
            access_record_url=_access_record_url(env),
            siem_token=_secret(env, "TENURE_SIEM_TOKEN"),
            security_task_queue=env.get("TENURE_SECURITY_TASK_QUEUE") or cls.security_task_queue,
        )


def _access_record_url(env: Mapping[str, str]) -> URL | None:
    # Checks both variables (only one may be set) and the password file; None unless a URL is set.
    try:
        url = record_url_from_env(env, required=False)
    except AccessRecordError as err:
        raise SettingsError(str(err)) from err
    return url if env.get(URL_VAR, "").strip() else None


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser() if raw else None


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from `name`, else from the file `name_FILE`; None when neither is set."""
    value = env.get(name, "").strip()
    path = env.get(f"{name}_FILE", "").strip()
    if not value and path:
        try:
            value = Path(path).read_text().strip()
        except OSError as err:
            raise SettingsError(f"{name}_FILE={path}: {err.strerror}") from err
        if not value:
            raise SettingsError(f"{name}_FILE={path} is empty")
    return value or None


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
