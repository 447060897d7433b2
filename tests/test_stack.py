"""Fast checks of the local stack's settings, dev credentials and demo roster (no process is started)."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from domain.access.request import request_workflow_id
from domain.access.rules import answer_errors, requested_end_error
from domain.lifecycle.events import HrEvent
from domain.policy.model import Policy
from emulators.graph.tokens import DEFAULT_TENANT_ID
from stack.banner import print_demo_hint
from stack.children import app_env_prefix, graph_child, tenure_env
from stack.config import StackConfig, StackConfigError
from stack.credentials import credentials_path, load_or_create_credentials
from stack.demo import CHANGES, ROSTER, demo_feed_path, ensure_demo_feed
from stack.demo_requests import APP_ROLES, DEMO_REQUESTS, WAITING, WAITING_APPROVER, demo_people

PORT_VARS = (
    "TENURE_TEMPORAL_PORT",
    "TENURE_TEMPORAL_UI_PORT",
    "TENURE_API_PORT",
    "TENURE_GRAPH_PORT",
    "TENURE_SCIM_BASE_PORT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        *PORT_VARS,
        "TENURE_POLICY",
        "TENURE_NAMESPACE",
        "TENURE_GRAPH_EMULATOR_TENANT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TENURE_HOME", str(tmp_path / "home"))


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


# --- config ---------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = StackConfig.from_env()
    assert config.home == (tmp_path / "home").resolve()
    assert (config.temporal_port, config.temporal_ui_port) == (7233, 8233)
    assert (config.api_port, config.graph_port, config.scim_base_port) == (8700, 8710, 8720)
    assert config.namespace == "default"
    assert config.policy_path.name == "policy.yaml"
    # One SCIM server per policy app, on consecutive ports in policy order.
    assert config.scim_ports == {"collab": 8720, "ledger": 8721}


def test_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, port in zip(PORT_VARS, (17233, 18233, 18700, 18710, 18720), strict=True):
        monkeypatch.setenv(name, str(port))
    monkeypatch.setenv("TENURE_NAMESPACE", "tenure-dev")
    monkeypatch.setenv("TENURE_HOME", str(tmp_path / "elsewhere"))
    config = StackConfig.from_env()
    assert config.temporal_address == "127.0.0.1:17233"
    assert config.temporal_ui_port == 18233
    assert config.api_url == "http://127.0.0.1:18700"
    assert config.graph_url == "http://127.0.0.1:18710/v1.0"
    assert config.scim_url("ledger") == "http://127.0.0.1:18721/v2"
    assert config.namespace == "tenure-dev"
    assert config.home == (tmp_path / "elsewhere").resolve()


def test_bad_port_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENURE_API_PORT", "eighty")
    with pytest.raises(StackConfigError, match="TENURE_API_PORT"):
        StackConfig.from_env()


def test_overlapping_ports_name_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENURE_API_PORT", "8721")  # the ledger app's port
    with pytest.raises(StackConfigError, match="TENURE_SCIM_BASE_PORT or TENURE_API_PORT"):
        StackConfig.from_env()


@pytest.mark.parametrize("busy_var", ["TENURE_GRAPH_PORT", "TENURE_SCIM_BASE_PORT"])
def test_busy_port_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, listening_port: int, busy_var: str
) -> None:
    for name, port in zip(PORT_VARS, free_ports(len(PORT_VARS)), strict=True):
        monkeypatch.setenv(name, str(port))
    monkeypatch.setenv(busy_var, str(listening_port))
    config = StackConfig.from_env()
    with pytest.raises(StackConfigError, match=f"set {busy_var} to a free port"):
        config.check_ports_free()


def test_free_ports_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    ports = free_ports(len(PORT_VARS))
    for name, port in zip(PORT_VARS, ports, strict=True):
        monkeypatch.setenv(name, str(port))
    # The SCIM base port's neighbour is taken by the ledger app: pick a base with room above it.
    monkeypatch.setenv("TENURE_SCIM_BASE_PORT", str(_free_pair()))
    StackConfig.from_env().check_ports_free()


def _free_pair() -> int:
    for _ in range(50):
        (base,) = free_ports(1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    pytest.skip("no two consecutive free ports")


# --- credentials ----------------------------------------------------------------------------


def test_credentials_created_once_then_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = load_or_create_credentials(home, ["collab", "ledger"])
    path = credentials_path(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len({first.intake_token, first.graph_token, *first.scim_tokens.values()}) == 4
    second = load_or_create_credentials(home, ["collab", "ledger"])
    assert second == first


def test_credentials_gain_a_token_for_a_new_app(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = load_or_create_credentials(home, ["collab"])
    second = load_or_create_credentials(home, ["collab", "crm"])
    assert second.scim_tokens["collab"] == first.scim_tokens["collab"]
    assert second.scim_tokens["crm"]
    assert json.loads(credentials_path(home).read_text())["scim_tokens"].keys() == {"collab", "crm"}


def test_worker_env_names_every_app() -> None:
    config = StackConfig.from_env()
    creds = load_or_create_credentials(config.home, config.apps)
    env = tenure_env(config, creds)
    assert env["TENURE_GRAPH_URL"].endswith("/v1.0")
    assert env["TENURE_SCIM_LEDGER_URL"] == config.scim_url("ledger")
    assert env["TENURE_SCIM_COLLAB_TOKEN"] == creds.scim_tokens["collab"]
    assert app_env_prefix("hr-portal") == "TENURE_SCIM_HR_PORTAL"
    # One access record for the worker (which writes it) and the API (which reads it).
    assert env["TENURE_ACCESS_RECORD_DB"] == str(config.home / "access-record.db")


def test_api_env_names_the_emulator_as_token_issuer() -> None:
    config = StackConfig.from_env()
    creds = load_or_create_credentials(config.home, config.apps)
    env = tenure_env(config, creds)
    graph_root = env["TENURE_GRAPH_URL"].removesuffix("/v1.0")
    assert env["TENURE_API_TOKEN_ISSUER"] == f"{graph_root}/{DEFAULT_TENANT_ID}/v2.0"
    assert env["TENURE_API_TOKEN_AUDIENCE"] == "api://tenure"
    # The emulator is told its tenant, so its `iss` is what the API expects.
    assert graph_child(config, creds).argv[-2:] == ["--tenant-id", DEFAULT_TENANT_ID]


def test_emulator_tenant_id_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENURE_GRAPH_EMULATOR_TENANT_ID", "contoso-dev")
    config = StackConfig.from_env()
    assert config.token_issuer == f"{config.graph_root}/contoso-dev/v2.0"
    assert config.token_endpoint == f"{config.graph_root}/contoso-dev/oauth2/v2.0/token"


# --- demo roster ----------------------------------------------------------------------------


def test_roster_shape() -> None:
    assert len(ROSTER) >= 24
    ids = [p.employee_id for p in ROSTER]
    assert len(set(ids)) == len(ids)
    assert ROSTER[0].employee_id == "E0001" and ROSTER[0].manager_id is None
    assert {p.department for p in ROSTER} == {"Finance", "Engineering", "Sales", "People"}
    assert {p.location for p in ROSTER} == {"London", "Berlin", "Remote"}
    assert sum(p.employment_type == "contractor" for p in ROSTER) == 2
    assert any(p.attributes.get("on_call") == "yes" for p in ROSTER)
    assert any(p.job_title in ("Finance Manager", "Controller") for p in ROSTER)
    names = [p.name for p in ROSTER]
    assert any(names.count(n) > 1 for n in names), "a shared name shows UPN clash resolution"


def test_managers_precede_their_reports() -> None:
    seen: set[str] = set()
    ids = {p.employee_id for p in ROSTER}
    for person in ROSTER:
        if person.manager_id is not None:
            assert person.manager_id in ids
            assert person.manager_id in seen, f"{person.employee_id} comes before its manager"
        seen.add(person.employee_id)


def test_feed_is_valid_hr_events_with_some_future_hires(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    path, events = ensure_demo_feed(tmp_path, now=now)
    assert path == demo_feed_path(tmp_path)
    parsed = [HrEvent.model_validate(e) for e in events]
    hires = [e for e in parsed if e.event_id.startswith("demo-hire-")]
    # The hires keep their ids and come first; the changes follow.
    assert [e.event_id for e in parsed[: len(ROSTER)]] == [
        f"demo-hire-{p.employee_id}" for p in ROSTER
    ]
    assert [e.event_id for e in parsed[len(ROSTER) :]] == [c.event_id for c in CHANGES]
    future = [e for e in hires if e.effective_at > now]
    assert len(future) == 4
    assert all(10 <= (e.effective_at - now).days <= 45 for e in future)
    assert all(0 <= (now - e.effective_at).days <= 30 for e in hires if e not in future)


def test_feed_has_movers_leavers_and_a_rehire(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    _, events = ensure_demo_feed(tmp_path, now=now)
    parsed = [HrEvent.model_validate(e) for e in events]
    hired = {e.worker.employee_id: e for e in parsed if e.event_id.startswith("demo-hire-")}
    moves = [e for e in parsed if e.type.value == "update"]
    assert len(moves) == 2
    for move in moves:
        before = hired[move.worker.employee_id]
        assert before.effective_at < move.effective_at < now
        assert move.worker.department != before.worker.department
        assert move.worker.manager_id != before.worker.manager_id
        assert move.worker.given_name == before.worker.given_name  # a full record
    leaves = {e.worker.employee_id: e for e in parsed if e.type.value == "terminate"}
    assert len(leaves) == 3
    assert sum(9 <= (e.effective_at - now).days <= 11 for e in leaves.values()) == 1
    assert sum(e.effective_at.date() == now.date() for e in leaves.values()) == 1
    [rehire] = [e for e in parsed if e.event_id.startswith("demo-rehire-")]
    left = leaves[rehire.worker.employee_id]
    assert hired[rehire.worker.employee_id].effective_at < left.effective_at < rehire.effective_at
    assert (now - left.effective_at).days in (19, 20) and (now - rehire.effective_at).days <= 2


def test_feed_is_written_once_and_reused(tmp_path: Path) -> None:
    path, first = ensure_demo_feed(tmp_path, now=datetime(2026, 3, 2, tzinfo=UTC))
    text = path.read_text()
    # A later run, days later, sends the very same events (same ids, same dates).
    _, again = ensure_demo_feed(tmp_path, now=datetime(2026, 3, 20, tzinfo=UTC))
    assert again == first
    assert path.read_text() == text
    assert len(text.splitlines()) == len(ROSTER) + len(CHANGES)


# --- demo requests --------------------------------------------------------------------------


def test_demo_requests_are_made_by_people_who_stay_and_fit_the_policy(demo_policy: Policy) -> None:
    """Whoever the demo requests need is hired before the first run and neither leaves nor moves
    (a leaver's request would be cancelled, a mover's might change approver), and each request
    passes the API's own checks against the demo policy."""
    people = {p.employee_id: p for p in ROSTER}
    changed = {c.employee_id for c in CHANGES}
    for employee_id in demo_people():
        assert people[employee_id].hire_offset_days < 0, employee_id
        assert employee_id not in changed, employee_id
    now = datetime(2026, 3, 2, tzinfo=UTC)
    for request in DEMO_REQUESTS:
        body = request.body(now)
        package = demo_policy.access.packages[request.package_id]
        assert answer_errors(package.policy, body["justification"], body.get("answers", {})) == []
        end = datetime.fromisoformat(body["requested_end"]) if "requested_end" in body else None
        assert requested_end_error(package.policy.expiry, now, end) is None
        if request.approver_id:
            assert people[request.requester_id].manager_id == request.approver_id
    assert people[WAITING.requester_id].manager_id == WAITING_APPROVER
    ids = [r.request_id for r in DEMO_REQUESTS]
    assert len(set(ids)) == len(ids)
    # The same keys name the same requests on every run (as the API derives them).
    assert ids[2] == request_workflow_id("E0010", "production-db-read", f"E0010:{WAITING.key}")
    for employee_id in APP_ROLES:
        assert employee_id in people


def test_banner_says_how_to_decide_the_waiting_demo_request() -> None:
    console = Console(record=True, width=200)
    print_demo_hint(console)
    text = console.export_text()
    assert f"tenure login --as {WAITING_APPROVER}" in text
    assert "tenure requests approvals" in text
    assert f"tenure requests approve {WAITING.request_id}" in text
