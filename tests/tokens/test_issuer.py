"""The Graph emulator as token issuer: its token endpoint, its published keys (JWKS), the signing
key's persistence and the app roles it puts in tokens."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from api.caller import Caller, TokenSettings, TokenVerifier
from emulators.graph.tokens import (
    DEFAULT_TENANT_ID,
    EMULATED_USER_GRANT,
    emulated_user_token_form,
)
from tests.support.graph_emulator import (
    EmulatorControl,
    GraphEmulatorHandle,
    running_graph_emulator,
)
from tests.support.tokens import (
    DOMAIN,
    claims_of,
)

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


# ---- sign-in method: with and without MFA (the `amr` claim) ------------------------------------


async def test_a_token_says_how_its_person_signed_in(control: EmulatorControl) -> None:
    assert claims_of(await control.token_for("E1003"))["amr"] == ["pwd"]
    assert claims_of(await control.token_for("E1003", mfa=True))["amr"] == ["pwd", "mfa"]
    for value in ("1", "YES", "True"):
        response = await control.request_token(
            grant_type=EMULATED_USER_GRANT,
            employee_id="E1003",
            scope="api://tenure/.default",
            mfa=value,
        )
        assert response.status_code == 200, value
        assert claims_of(response.json()["access_token"])["amr"] == ["pwd", "mfa"]
    form = emulated_user_token_form("E1003", "api://tenure", mfa=True)
    assert claims_of((await control.request_token(**form)).json()["access_token"])["amr"] == [
        "pwd",
        "mfa",
    ]
    assert "mfa" not in emulated_user_token_form("E1003", "api://tenure")


@pytest.mark.parametrize("value", ["maybe", "off", ""])
async def test_any_other_mfa_value_is_an_invalid_request(
    control: EmulatorControl, value: str
) -> None:
    response = await control.request_token(
        grant_type=EMULATED_USER_GRANT,
        employee_id="E1003",
        scope="api://tenure/.default",
        mfa=value,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "'mfa'" in response.json()["error_description"]
