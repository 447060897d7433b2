"""Where the local stack lives and which ports it uses: everything comes from TENURE_* variables."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from audit.location import URL_VAR, parse_record_url
from audit.model import AccessRecordError
from domain.policy.file import load_policy, policy_path_from_env
from domain.policy.model import Policy
from emulators.graph.tokens import DEFAULT_TENANT_ID

HOST = "127.0.0.1"

# (variable, default) of each fixed port; SCIM apps take base, base+1, ... in policy order.
TEMPORAL_PORT = ("TENURE_TEMPORAL_PORT", 7233)
TEMPORAL_UI_PORT = ("TENURE_TEMPORAL_UI_PORT", 8233)
API_PORT = ("TENURE_API_PORT", 8700)
GRAPH_PORT = ("TENURE_GRAPH_PORT", 8710)
SCIM_BASE_PORT = ("TENURE_SCIM_BASE_PORT", 8720)
GRAPH_TENANT_ID = ("TENURE_GRAPH_EMULATOR_TENANT_ID", DEFAULT_TENANT_ID)
# The audience of the API's tokens (Entra: the API app's Application ID URI or client id).
API_TOKEN_AUDIENCE = "api://tenure"


class StackConfigError(Exception):
    """The stack cannot start with these settings; the message says which variable to change."""


@dataclass(frozen=True)
class PortUse:
    """One port the stack binds, who binds it and the variable that moves it."""

    owner: str
    port: int
    env_var: str


def _port_from_env(env_var: str, default: int) -> int:
    raw = os.environ.get(env_var, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackConfigError(f"{env_var}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise StackConfigError(f"{env_var}={port} is outside 1-65535")
    return port


def _record_url_from_env() -> str | None:
    raw = os.environ.get(URL_VAR, "").strip()
    if not raw:
        return None
    try:
        parse_record_url(raw, source=URL_VAR)  # refused here rather than by both children
    except AccessRecordError as err:
        raise StackConfigError(str(err)) from None
    return raw


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the servers themselves use it: a lingering TIME_WAIT is not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


@dataclass(frozen=True)
class StackConfig:
    home: Path
    policy_path: Path
    policy: Policy
    namespace: str
    temporal_port: int
    temporal_ui_port: int
    api_port: int
    graph_port: int
    scim_base_port: int
    host: str = HOST
    graph_tenant_id: str = DEFAULT_TENANT_ID
    # TENURE_ACCESS_RECORD_URL as given (e.g. a PostgreSQL database), for the worker and the API;
    # None: the record is the SQLite file in the stack's home.
    record_url: str | None = None

    @classmethod
    def from_env(cls) -> StackConfig:
        """Read TENURE_* settings and load the policy (PolicyFileError if it is invalid)."""
        home = Path(os.environ.get("TENURE_HOME", ".tenure")).expanduser().resolve()
        policy_path = policy_path_from_env().expanduser().resolve()
        config = cls(
            home=home,
            policy_path=policy_path,
            policy=load_policy(policy_path),
            namespace=os.environ.get("TENURE_NAMESPACE", "").strip() or "default",
            temporal_port=_port_from_env(*TEMPORAL_PORT),
            temporal_ui_port=_port_from_env(*TEMPORAL_UI_PORT),
            api_port=_port_from_env(*API_PORT),
            graph_port=_port_from_env(*GRAPH_PORT),
            scim_base_port=_port_from_env(*SCIM_BASE_PORT),
            graph_tenant_id=os.environ.get(GRAPH_TENANT_ID[0], "").strip() or GRAPH_TENANT_ID[1],
            record_url=_record_url_from_env(),
        )
        config._check_distinct()
        return config

    # --- where things are -------------------------------------------------------------------

    @property
    def apps(self) -> list[str]:
        return list(self.policy.apps)

    @property
    def scim_ports(self) -> dict[str, int]:
        return {app: self.scim_base_port + i for i, app in enumerate(self.apps)}

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.temporal_port}"

    @property
    def temporal_ui_url(self) -> str:
        return f"http://{self.host}:{self.temporal_ui_port}/namespaces/{self.namespace}/workflows"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def graph_root(self) -> str:
        return f"http://{self.host}:{self.graph_port}"

    @property
    def graph_url(self) -> str:
        return f"{self.graph_root}/v1.0"

    @property
    def token_issuer(self) -> str:
        """The Graph emulator plays Entra's token issuer: `{root}/{tenant}/v2.0`."""
        return f"{self.graph_root}/{self.graph_tenant_id}/v2.0"

    @property
    def token_endpoint(self) -> str:
        return f"{self.graph_root}/{self.graph_tenant_id}/oauth2/v2.0/token"

    @property
    def token_audience(self) -> str:
        return API_TOKEN_AUDIENCE

    def scim_url(self, app: str) -> str:
        return f"http://{self.host}:{self.scim_ports[app]}/v2"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    # --- ports ------------------------------------------------------------------------------

    def port_uses(self) -> list[PortUse]:
        uses = [
            PortUse("Temporal", self.temporal_port, TEMPORAL_PORT[0]),
            PortUse("Temporal UI", self.temporal_ui_port, TEMPORAL_UI_PORT[0]),
            PortUse("API", self.api_port, API_PORT[0]),
            PortUse("Graph emulator", self.graph_port, GRAPH_PORT[0]),
        ]
        for app, port in self.scim_ports.items():
            uses.append(PortUse(f"SCIM app {app!r}", port, SCIM_BASE_PORT[0]))
        return uses

    def _check_distinct(self) -> None:
        seen: dict[int, PortUse] = {}
        for use in self.port_uses():
            if use.port > 65535:
                raise StackConfigError(
                    f"{use.owner} would need port {use.port}: lower {use.env_var}"
                )
            if use.port in seen:
                other = seen[use.port]
                raise StackConfigError(
                    f"{use.owner} and {other.owner} would both use port {use.port}: "
                    f"change {use.env_var} or {other.env_var}"
                )
            seen[use.port] = use

    def check_ports_free(self) -> None:
        """Fail before starting anything, rather than with a half-started stack."""
        for use in self.port_uses():
            if not port_is_free(use.port, self.host):
                raise StackConfigError(
                    f"port {use.port} ({use.owner}) is already in use on {self.host}: "
                    f"stop what uses it or set {use.env_var} to a free port"
                )
