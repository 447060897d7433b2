"""People's bearer tokens: the Graph emulator as token issuer, the API's verifier, `tenure login`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import stat
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.caller import Caller, TokenSettings, TokenVerifier
from api.problems import ProblemException
from api.settings import ApiSettings, SettingsError
from cli import login_cmd
from cli.api_session import (
    NotLoggedInError,
    Session,
    authorized_client,
    load_session,
    save_session,
    session_path,
)
from cli.main import main as tenure
from emulators.graph.tokens import DEFAULT_TENANT_ID, EMULATED_USER_GRANT
from stack.credentials import Credentials, credentials_path
from stack.stack_file import write_stack_file
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
    running_graph_emulator,
)

DOMAIN = "tokens.example.com"
PEOPLE = [
    {"employeeId": "E1001", "displayName": "Ada Lovelace", "accountEnabled": True},
    {"employeeId": "E1002", "displayName": "Grace Hopper", "accountEnabled": True},
    {"employeeId": "E1003", "displayName": "Alan Turing", "accountEnabled": True},
    {"employeeId": "E1004", "displayName": "Left Already", "accountEnabled": False},
]
NO_EMPLOYEE_ID_UPN = f"mailbox@{DOMAIN}"


def upn(person: dict[str, Any]) -> str:
    return person["displayName"].lower().replace(" ", ".") + f"@{DOMAIN}"


@pytest.fixture(scope="module")
async def emulator() -> AsyncIterator[GraphEmulatorHandle]:
    async with running_graph_emulator() as handle:
        control = EmulatorControl(handle)
        users = [{"userPrincipalName": upn(p), **p} for p in PEOPLE]
        users.append({"userPrincipalName": NO_EMPLOYEE_ID_UPN, "displayName": "No employee id"})
        await control.seed(users=users)
        await control.set_app_roles("E1001", ["Tenure.Admin"])
        await control.set_app_roles("E1002", ["Tenure.Auditor"])
        await control.aclose()
        yield handle


@pytest.fixture
async def control(emulator: GraphEmulatorHandle) -> AsyncIterator[EmulatorControl]:
    ctl = EmulatorControl(emulator)
    yield ctl
    await ctl.aclose()


class Fetches:
    """An httpx client that records the URLs it fetched, and a clock the test moves."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls: list[str] = []
        self.now = 1000.0

        async def record(request: httpx.Request) -> None:
            self.urls.append(str(request.url))

        self.http = httpx.AsyncClient(transport=transport, event_hooks={"request": [record]})

    def clock(self) -> float:
        return self.now

    def count(self, suffix: str) -> int:
        return sum(url.endswith(suffix) for url in self.urls)


@pytest.fixture
async def fetches() -> AsyncIterator[Fetches]:
    f = Fetches()
    yield f
    await f.http.aclose()


@pytest.fixture
async def verifier(emulator: GraphEmulatorHandle) -> AsyncIterator[TokenVerifier]:
    v = TokenVerifier(TokenSettings(issuer=emulator.issuer, jwks_url=emulator.jwks_url))
    yield v
    await v.aclose()


async def rejection(verifier: TokenVerifier, authorization: str | None) -> ProblemException:
    with pytest.raises(ProblemException) as caught:
        await verifier.caller(authorization)
    return caught.value


def assert_invalid_token(problem: ProblemException, *words: str) -> None:
    assert problem.status == 401
    challenge = problem.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    for word in words:
        assert word in problem.detail, problem.detail
        assert word in challenge, challenge


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# ---- the emulator as token issuer ---------------------------------------------------------------


async def test_token_for_an_enabled_person_verifies_to_its_caller(
    control: EmulatorControl, verifier: TokenVerifier
) -> None:
    token = await control.token_for("E1001")

    caller = await verifier.caller(f"Bearer {token}")

    assert caller == Caller(
        employee_id="E1001",
        user_principal_name=f"ada.lovelace@{DOMAIN}",
        display_name="Ada Lovelace",
        roles=frozenset({"Tenure.Admin"}),
    )
    assert caller.is_admin and caller.is_auditor
    claims = claims_of(token)
    assert claims["ver"] == "2.0" and claims["tid"] == DEFAULT_TENANT_ID
    assert claims["sub"] == claims["oid"]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


async def test_roles_come_from_app_role_assignments(
    control: EmulatorControl, verifier: TokenVerifier
) -> None:
    auditor = await verifier.caller(f"Bearer {await control.token_for('E1002')}")
    assert auditor.is_auditor and not auditor.is_admin

    plain_token = await control.token_for("E1003")
    assert "roles" not in claims_of(plain_token)  # omitted when empty, as Entra does
    plain = await verifier.caller(f"bearer {plain_token}")  # the scheme is case-insensitive
    assert plain.roles == frozenset() and not plain.is_auditor

    assert (await control.app_roles())["E1001"] == ["Tenure.Admin"]


async def test_a_person_can_be_named_by_upn(
    control: EmulatorControl, verifier: TokenVerifier
) -> None:
    token = await control.token_for(username=f"GRACE.HOPPER@{DOMAIN}")
    assert (await verifier.caller(f"Bearer {token}")).employee_id == "E1002"


async def test_a_disabled_person_gets_invalid_grant(control: EmulatorControl) -> None:
    response = await control.request_token(
        grant_type=EMULATED_USER_GRANT, employee_id="E1004", scope="api://tenure/.default"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert "disabled" in body["error_description"] and "E1004" in body["error_description"]


async def test_an_unknown_person_gets_invalid_grant(control: EmulatorControl) -> None:
    response = await control.request_token(
        grant_type=EMULATED_USER_GRANT, employee_id="E9999", scope="api://tenure/.default"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "E9999" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"scope": "api://tenure/.default"}, "invalid_request"),  # no grant_type
        ({"grant_type": EMULATED_USER_GRANT, "scope": "api://tenure/.default"}, "invalid_request"),
        ({"grant_type": EMULATED_USER_GRANT, "employee_id": "E1001"}, "invalid_request"),
        (
            {"grant_type": EMULATED_USER_GRANT, "employee_id": "E1001", "scope": "x"},
            "invalid_scope",
        ),
        (
            {
                "grant_type": EMULATED_USER_GRANT,
                "employee_id": "E1001",
                "scope": "api://tenure/.default",
                "lifetime_seconds": "5",
            },
            "invalid_request",
        ),
    ],
)
async def test_token_endpoint_errors_are_oauth_shaped(
    control: EmulatorControl, form: dict[str, str], error: str
) -> None:
    response = await control.request_token(**form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]


async def test_token_endpoint_needs_the_control_token(emulator: GraphEmulatorHandle) -> None:
    form = {
        "grant_type": EMULATED_USER_GRANT,
        "employee_id": "E1001",
        "scope": "api://tenure/.default",
    }
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(emulator.token_endpoint, data=form)
        wrong = await http.post(
            emulator.token_endpoint, data=form, headers={"Authorization": "Bearer not-it"}
        )
        other_tenant = await http.post(
            emulator.token_endpoint.replace(DEFAULT_TENANT_ID, "contoso.example.com"),
            data=form,
            headers={"Authorization": f"Bearer {emulator.token}"},
        )
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert "access_token" not in response.text
    assert other_tenant.status_code == 400
    assert other_tenant.json()["error"] == "invalid_tenant"


async def test_discovery_and_keys_are_public_and_entra_shaped(
    emulator: GraphEmulatorHandle,
) -> None:
    async with httpx.AsyncClient() as http:
        metadata = (await http.get(f"{emulator.issuer}/.well-known/openid-configuration")).json()
        jwks = (await http.get(emulator.jwks_url)).json()
    assert metadata["issuer"] == emulator.issuer
    assert metadata["jwks_uri"] == emulator.jwks_url
    assert metadata["token_endpoint"] == emulator.token_endpoint
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert {key["kty"], key["use"], key["alg"]} == {"RSA", "sig", "RS256"}
        assert key["kid"] and key["n"] and key["e"] == "AQAB"
        assert "d" not in key and "p" not in key  # never the private parts


async def test_app_roles_accept_only_tenure_roles(control: EmulatorControl) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        await control.set_app_roles("E1003", ["Tenure.Admin", "Global Administrator"])
    assert caught.value.response.status_code == 400
    message = caught.value.response.json()["error"]["message"]
    assert "Global Administrator" in message and "Tenure.Auditor" in message
    assert "E1003" not in await control.app_roles()


# ---- the verifier -------------------------------------------------------------------------------


async def test_missing_or_non_bearer_authorization_is_401(verifier: TokenVerifier) -> None:
    for authorization in (None, "", "Basic dXNlcjpwYXNz", "Bearer "):
        problem = await rejection(verifier, authorization)
        assert problem.status == 401
        assert "Missing token" in problem.detail
        assert problem.headers["WWW-Authenticate"].startswith("Bearer realm=")


async def test_wrong_audience_is_401(control: EmulatorControl, verifier: TokenVerifier) -> None:
    token = await control.token_for("E1001", audience="api://someone-else")
    problem = await rejection(verifier, f"Bearer {token}")
    assert_invalid_token(problem, "wrong audience", "api://tenure")
    assert token not in problem.detail


async def test_wrong_issuer_is_401(emulator: GraphEmulatorHandle, control: EmulatorControl) -> None:
    token = await control.token_for("E1001")
    other = TokenSettings(issuer=f"{emulator.root}/another-tenant/v2.0", jwks_url=emulator.jwks_url)
    verifier = TokenVerifier(other)
    try:
        assert_invalid_token(await rejection(verifier, f"Bearer {token}"), "wrong issuer")
    finally:
        await verifier.aclose()


async def test_tampered_claims_fail_the_signature(
    control: EmulatorControl, verifier: TokenVerifier
) -> None:
    header, payload, signature = (await control.token_for("E1003")).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["Tenure.Admin"]  # a self-made admin
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert_invalid_token(await rejection(verifier, f"Bearer {forged}"), "bad signature")


async def test_a_token_signed_by_another_key_is_401(
    control: EmulatorControl, verifier: TokenVerifier
) -> None:
    genuine = await control.token_for("E1001")
    claims = claims_of(genuine)
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    published_kid = jwt.get_unverified_header(genuine)["kid"]
    same_kid = jwt.encode(claims, impostor, algorithm="RS256", headers={"kid": published_kid})
    own_kid = jwt.encode(claims, impostor, algorithm="RS256", headers={"kid": "impostor"})
    assert_invalid_token(await rejection(verifier, f"Bearer {same_kid}"), "bad signature")
    assert_invalid_token(await rejection(verifier, f"Bearer {own_kid}"), "bad signature")


async def test_alg_none_and_shared_secret_tokens_are_refused(
    control: EmulatorControl, verifier: TokenVerifier
) -> None:
    genuine = await control.token_for("E1001")
    claims = claims_of(genuine)
    kid = jwt.get_unverified_header(genuine)["kid"]
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    hmac_signed = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": kid})
    assert_invalid_token(await rejection(verifier, f"Bearer {unsigned}"), "'none'", "RS256")
    assert_invalid_token(await rejection(verifier, f"Bearer {hmac_signed}"), "'HS256'")
    assert_invalid_token(await rejection(verifier, "Bearer not.a.jwt"), "malformed")


async def test_a_token_without_employee_id_is_401(
    control: EmulatorControl, verifier: TokenVerifier
) -> None:
    token = await control.token_for(username=NO_EMPLOYEE_ID_UPN)
    assert "employeeid" not in claims_of(token)
    assert_invalid_token(await rejection(verifier, f"Bearer {token}"), "employee id")


class OwnIssuer:
    """A test issuer behind httpx.MockTransport, for tokens the emulator would never mint."""

    ISSUER = "https://login.example.test/tenant-x/v2.0"
    JWKS = "https://login.example.test/tenant-x/discovery/v2.0/keys"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}

        def answer(request: httpx.Request) -> httpx.Response:
            if str(request.url) == self.JWKS:
                return httpx.Response(200, json=self.jwks)
            return httpx.Response(404)

        self.transport = httpx.MockTransport(answer)

    def token(self, drop: tuple[str, ...] = (), **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.ISSUER,
            "aud": "api://tenure",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "employeeid": "E2001",
            **claims,
        }
        body = {k: v for k, v in body.items() if k not in drop}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
async def own() -> AsyncIterator[tuple[OwnIssuer, TokenVerifier]]:
    issuer = OwnIssuer()
    http = httpx.AsyncClient(transport=issuer.transport)
    verifier = TokenVerifier(
        TokenSettings(issuer=OwnIssuer.ISSUER, jwks_url=OwnIssuer.JWKS, leeway_seconds=60), http
    )
    yield issuer, verifier
    await verifier.aclose()
    await http.aclose()


async def test_expiry_and_not_before_honour_the_leeway(
    own: tuple[OwnIssuer, TokenVerifier],
) -> None:
    issuer, verifier = own
    now = int(time.time())
    within_leeway = issuer.token(exp=now - 30)
    assert (await verifier.caller(f"Bearer {within_leeway}")).employee_id == "E2001"

    expired = issuer.token(iat=now - 4000, nbf=now - 4000, exp=now - 120)
    assert_invalid_token(await rejection(verifier, f"Bearer {expired}"), "expired at")

    early = issuer.token(nbf=now + 600, exp=now + 1200)
    assert_invalid_token(await rejection(verifier, f"Bearer {early}"), "not valid yet")


async def test_required_claims(own: tuple[OwnIssuer, TokenVerifier]) -> None:
    issuer, verifier = own
    no_exp = issuer.token(drop=("exp",))
    assert_invalid_token(await rejection(verifier, f"Bearer {no_exp}"), "'exp' claim")
    blank_employee = issuer.token(employeeid="  ")
    assert_invalid_token(await rejection(verifier, f"Bearer {blank_employee}"), "employee id")


async def test_another_employee_id_claim_can_be_configured() -> None:
    issuer = OwnIssuer()
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        settings = TokenSettings(
            issuer=OwnIssuer.ISSUER, jwks_url=OwnIssuer.JWKS, employee_id_claim="employee_number"
        )
        verifier = TokenVerifier(settings, http)
        token = issuer.token(employee_number="E3003", preferred_username="x@example.com")
        caller = await verifier.caller(f"Bearer {token}")
    assert caller.employee_id == "E3003" and caller.user_principal_name == "x@example.com"


# ---- keys: discovery, rotation, persistence, outage ---------------------------------------------


async def test_keys_are_discovered_through_openid_configuration(
    emulator: GraphEmulatorHandle, control: EmulatorControl, fetches: Fetches
) -> None:
    verifier = TokenVerifier(TokenSettings(issuer=emulator.issuer), fetches.http)
    token = await control.token_for("E1001")

    assert (await verifier.caller(f"Bearer {token}")).employee_id == "E1001"
    assert (await verifier.caller(f"Bearer {token}")).employee_id == "E1001"

    assert fetches.urls == [
        f"{emulator.issuer}/.well-known/openid-configuration",
        emulator.jwks_url,
    ]


async def test_an_unknown_kid_refetches_the_keys_once(
    emulator: GraphEmulatorHandle, control: EmulatorControl, fetches: Fetches
) -> None:
    settings = TokenSettings(issuer=emulator.issuer, jwks_url=emulator.jwks_url)
    verifier = TokenVerifier(settings, fetches.http, clock=fetches.clock)
    keys = "/discovery/v2.0/keys"
    before = await control.token_for("E1001")
    assert (await verifier.caller(f"Bearer {before}")).employee_id == "E1001"
    assert fetches.count(keys) == 1

    new_kid = await control.rotate_signing_key()
    after = await control.token_for("E1001")
    assert jwt.get_unverified_header(after)["kid"] == new_kid

    # Just fetched: a new kid does not make the verifier fetch again at once (rate limit)...
    assert_invalid_token(await rejection(verifier, f"Bearer {after}"), "does not publish")
    assert fetches.count(keys) == 1
    # ...but a little later it looks once, and finds the rotated key.
    fetches.now += 31
    assert (await verifier.caller(f"Bearer {after}")).employee_id == "E1001"
    assert fetches.count(keys) == 2
    # The previous key is still published: tokens it signed verify without another fetch.
    assert (await verifier.caller(f"Bearer {before}")).employee_id == "E1001"
    assert (await verifier.caller(f"Bearer {after}")).employee_id == "E1001"
    assert fetches.count(keys) == 2

    # A kid the issuer never published costs one fetch per interval, never more.
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims_of(after), impostor, algorithm="RS256", headers={"kid": "nope"})
    fetches.now += 31
    for _ in range(3):
        assert_invalid_token(await rejection(verifier, f"Bearer {forged}"), "does not publish")
    assert fetches.count(keys) == 3


async def test_the_signing_key_survives_an_emulator_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "graph.db")
    async with running_graph_emulator(db) as first:
        control = EmulatorControl(first)
        await control.seed(users=[{"userPrincipalName": f"ada@{DOMAIN}", "employeeId": "E1001"}])
        token = await control.token_for("E1001")
        await control.aclose()
        async with httpx.AsyncClient() as http:
            kids_before = [k["kid"] for k in (await http.get(first.jwks_url)).json()["keys"]]

    async with running_graph_emulator(db, token=first.token) as second:
        async with httpx.AsyncClient() as http:
            kids_after = [k["kid"] for k in (await http.get(second.jwks_url)).json()["keys"]]
        # The issuer URL names the port, which changed: verify against the old issuer's name.
        verifier = TokenVerifier(TokenSettings(issuer=first.issuer, jwks_url=second.jwks_url))
        try:
            assert (await verifier.caller(f"Bearer {token}")).employee_id == "E1001"
        finally:
            await verifier.aclose()
    assert kids_after == kids_before


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_unreachable_keys_are_503(control: EmulatorControl) -> None:
    token = await control.token_for("E1001")
    verifier = TokenVerifier(TokenSettings(issuer=f"{closed_port_url()}/tenant/v2.0"))
    try:
        problem = await rejection(verifier, f"Bearer {token}")
    finally:
        await verifier.aclose()
    assert problem.status == 503
    assert problem.detail == "cannot verify tokens: the issuer's keys are unreachable"


# ---- settings -----------------------------------------------------------------------------------


def test_token_settings_from_env() -> None:
    assert TokenSettings.from_env({}) is None
    assert TokenSettings.from_env({"TENURE_API_TOKEN_ISSUER": "  "}) is None
    settings = TokenSettings.from_env(
        {
            "TENURE_API_TOKEN_ISSUER": "https://login.microsoftonline.com/t-1/v2.0",
            "TENURE_API_TOKEN_AUDIENCE": "0b6c1f7e-client-id",
            "TENURE_API_JWKS_URL": "https://login.microsoftonline.com/t-1/discovery/v2.0/keys",
            "TENURE_API_EMPLOYEE_ID_CLAIM": "employee_number",
        }
    )
    assert settings == TokenSettings(
        issuer="https://login.microsoftonline.com/t-1/v2.0",
        audience="0b6c1f7e-client-id",
        jwks_url="https://login.microsoftonline.com/t-1/discovery/v2.0/keys",
        employee_id_claim="employee_number",
    )
    defaults = TokenSettings.from_env({"TENURE_API_TOKEN_ISSUER": "https://x.example/t/v2.0"})
    assert defaults is not None
    assert (defaults.audience, defaults.jwks_url, defaults.employee_id_claim) == (
        "api://tenure",
        None,
        "employeeid",
    )
    assert defaults.discovery_url == "https://x.example/t/v2.0/.well-known/openid-configuration"


def test_api_settings_carry_the_token_settings() -> None:
    base = {"TENURE_INTAKE_TOKEN": "t"}
    assert ApiSettings.from_env(base).tokens is None
    issuer = "http://127.0.0.1:8710/t/v2.0"
    settings = ApiSettings.from_env({**base, "TENURE_API_TOKEN_ISSUER": issuer})
    assert settings.tokens == TokenSettings(issuer=issuer)
    with pytest.raises(SettingsError, match="TENURE_API_TOKEN_ISSUER"):
        ApiSettings.from_env({**base, "TENURE_API_TOKEN_ISSUER": "login.example"})


# ---- tenure login -------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TENURE_HOME", str(home))
    return home


def fake_stack(home: Path, emulator: GraphEmulatorHandle, **graph_extra: Any) -> None:
    """What a running stack leaves in TENURE_HOME, pointing at the test's emulator."""
    write_stack_file(
        {
            "api": {"url": "http://127.0.0.1:9", "token_audience": "api://tenure"},
            "graph": {"url": emulator.base_url, "control_url": emulator.control_url, **graph_extra},
            "supervisor_pid": os.getpid(),
        },
        home,
    )
    path = credentials_path(home)
    path.write_text(json.dumps(Credentials("intake", emulator.token).to_json()))


async def run(*argv: str) -> int:
    # The emulator serves on this event loop; the CLI's blocking calls must run beside it.
    return await asyncio.to_thread(tenure, list(argv))


async def test_login_stores_a_token_the_api_accepts(
    home: Path,
    emulator: GraphEmulatorHandle,
    verifier: TokenVerifier,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_stack(home, emulator, token_endpoint=emulator.token_endpoint)

    assert await run("login", "--as", "E1001") == 0

    out = capsys.readouterr().out
    assert "Logged in as E1001 (Ada Lovelace, ada.lovelace@" in out
    assert "roles: Tenure.Admin" in out
    path = session_path(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    session = load_session(home)
    assert session is not None
    assert (session.employee_id, session.api_url) == ("E1001", "http://127.0.0.1:9")
    assert timedelta(minutes=55) < session.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    caller = await verifier.caller(f"Bearer {session.token}")
    assert caller.employee_id == "E1001" and caller.is_admin

    with authorized_client(home) as http:
        assert http.headers["Authorization"] == f"Bearer {session.token}"
        assert str(http.base_url).startswith("http://127.0.0.1:9")

    assert await run("login", "--status") == 0
    assert "Logged in as E1001" in capsys.readouterr().out

    assert await run("logout") == 0
    assert "Logged out E1001" in capsys.readouterr().out
    assert not path.exists()
    assert await run("login", "--status") == 1
    assert "Nobody is logged in" in capsys.readouterr().out
    with pytest.raises(NotLoggedInError, match="tenure login --as"):
        authorized_client(home)


async def test_login_finds_the_token_endpoint_of_an_older_stack_file(
    home: Path, emulator: GraphEmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_stack(home, emulator)  # no token_endpoint: derived from the Graph URL
    assert await run("login", "--as", "E1002") == 0
    assert "Logged in as E1002 (Grace Hopper" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("employee_id", "says"),
    [
        ("E1004", "cannot log in as E1004: The user account with employeeId 'E1004'"),
        ("E9999", "cannot log in as E9999: No user with employeeId 'E9999'"),
    ],
)
async def test_login_refusals_are_one_clear_line(
    home: Path,
    emulator: GraphEmulatorHandle,
    capsys: pytest.CaptureFixture[str],
    employee_id: str,
    says: str,
) -> None:
    fake_stack(home, emulator, token_endpoint=emulator.token_endpoint)
    assert await run("login", "--as", employee_id) == 1
    err = capsys.readouterr().err
    assert says in err
    assert err.count("\n") == 1
    assert not session_path(home).exists()


async def test_login_without_a_stack(
    home: Path, emulator: GraphEmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("login", "--as", "E1001") == 1
    assert capsys.readouterr().err == "tenure login: no local stack: start it with `make run`\n"

    fake_stack(home, emulator, token_endpoint=emulator.token_endpoint)
    # A stack.json left by a stack that was killed: its supervisor pid is gone.
    write_stack_file({"graph": {"url": emulator.base_url}, "supervisor_pid": 2**22 + 12345}, home)
    assert await run("login", "--as", "E1001") == 1
    assert "no local stack: start it with `make run`" in capsys.readouterr().err


def test_an_expired_login_is_reported(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_session(
        Session(
            api_url="http://127.0.0.1:9",
            token="t",
            employee_id="E1001",
            expires_at=datetime.now(UTC) - timedelta(minutes=1),
        ),
        home,
    )
    assert tenure(["login", "--status"]) == 1
    assert "The login as E1001 expired at" in capsys.readouterr().out
    with pytest.raises(NotLoggedInError, match="expired"):
        authorized_client(home)


def test_token_endpoint_fallback_uses_the_tenant_of_the_stack_file() -> None:
    stack = {"graph": {"url": "http://127.0.0.1:8710/v1.0", "tenant_id": "t-9"}}
    assert login_cmd._token_endpoint(stack) == "http://127.0.0.1:8710/t-9/oauth2/v2.0/token"
