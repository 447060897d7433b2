"""The API's TokenVerifier: the Caller it makes of a token, the tokens it refuses, how it discovers
and rotates the issuer's keys, and its settings."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api.caller import TokenSettings, TokenVerifier
from api.settings import ApiSettings, SettingsError
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
)
from tests.support.tokens import (
    NO_EMPLOYEE_ID_UPN,
    Fetches,
    OwnIssuer,
    assert_invalid_token,
    b64url,
    claims_of,
    rejection,
)

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
