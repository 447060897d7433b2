"""`POST /v1/security/incidents` at the door: the SIEM's own token, and malformed reports named
field by field, before anything reaches Temporal (the response itself is tested on the
time-skipping server, tests/pim/test_incident.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.http_api.conftest import SIEM_TOKEN
from tests.support.recording_client import RecordingClient
from tests.support.token_issuer import Issuer

GOOD = {
    "incident_id": "INC-42",
    "user": "E1001",
    "severity": "high",
    "title": "impossible travel",
    "source": "sentinel",
}


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {SIEM_TOKEN}"])
async def test_bad_credentials_get_401(
    api: httpx.AsyncClient, recording: RecordingClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    before = len(recording.started)
    response = await api.post("/v1/security/incidents", json=GOOD, headers=headers)
    assert response.status_code == 401
    assert "SIEM token" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(recording.started) == before  # nothing reached Temporal


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"severity": "apocalyptic"}, "severity"),
        ({"incident_id": "has spaces"}, "incident_id"),
        ({"user": ""}, "user"),
        ({"colour": "red"}, "colour"),
        ({"title": None}, "title"),
    ],
)
async def test_malformed_reports_get_422_naming_the_field(
    api: httpx.AsyncClient, change: dict, field: str
) -> None:
    body = {**GOOD, **change}
    response = await api.post(
        "/v1/security/incidents", json=body, headers={"Authorization": f"Bearer {SIEM_TOKEN}"}
    )
    assert response.status_code == 422
    assert field in response.text


async def test_a_person_token_is_not_a_siem_token(api: httpx.AsyncClient, issuer: Issuer) -> None:
    token = await issuer.token("E1001")
    response = await api.post(
        "/v1/security/incidents", json=GOOD, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
