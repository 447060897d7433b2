"""The access API against hostile callers: authentication comes before anything is read, only hired
Tenure identities get in, every answer is a documented problem, and oversize headers get one too."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from tests.support.access_api import (
    INTAKE,
    LEAVER,
    OUTSIDER,
    PROBLEM,
    REQUESTER,
    REQUESTS,
    auth,
    payables,
    problem,
    submit,
)
from tests.support.recording_client import RecordingClient
from tests.support.token_issuer import Issuer

SOME_REQUEST = f"{REQUESTS}/access-request-E1001-accounts-payable-0123456789"
BODY_ENDPOINTS = [
    REQUESTS,
    f"{SOME_REQUEST}/decision",
    f"{SOME_REQUEST}/extension",
    f"{SOME_REQUEST}/cancel",
    f"{SOME_REQUEST}/revoke",
]


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
@pytest.mark.parametrize("content", [b"not json", b"\xff\xfe\x00", b"[" * 5000, b"{}"])
async def test_no_token_is_401_whatever_the_body(
    api: httpx.AsyncClient, path: str, content: bytes
) -> None:
    anonymous = problem(await api.post(path, content=content), 401)
    assert anonymous["detail"].startswith("Missing token")
    forged = await api.post(path, content=content, headers={"Authorization": "Bearer x.y.z"})
    assert problem(forged, 401)["detail"].startswith("Invalid bearer token")


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_with_a_token_bad_bodies_are_422_problems(
    api: httpx.AsyncClient, issuer: Issuer, path: str
) -> None:
    headers = await auth(issuer, REQUESTER)
    not_utf8 = problem(await api.post(path, content=b'{"a": "\xff"}', headers=headers), 422)
    assert not_utf8["errors"] == [
        {"field": "(body)", "message": "not UTF-8: invalid byte at position 7"}
    ]
    deep = problem(await api.post(path, content=b"[" * 1000 + b"]" * 1000, headers=headers), 422)
    assert "nested 1000 levels deep" in deep["errors"][0]["message"]
    not_json = problem(await api.post(path, content=b"{", headers=headers), 422)
    assert not_json["errors"][0]["message"].startswith("not valid JSON")


async def test_access_timestamps_and_text_follow_the_inbound_rules(
    api: httpx.AsyncClient, issuer: Issuer, recording: RecordingClient
) -> None:
    headers = await auth(issuer, REQUESTER)
    before = len(recording.started)
    numeric = await api.post(REQUESTS, json=payables(requested_end=1796000000), headers=headers)
    assert [e["field"] for e in problem(numeric, 422)["errors"]] == ["requested_end"]
    spoofed = await api.post(
        REQUESTS, json=payables(justification="pay \u202eecnanif"), headers=headers
    )
    assert "bidirectional control (U+202E)" in problem(spoofed, 422)["errors"][0]["message"]
    assert recording.started[before:] == []
    extension = await api.post(f"{SOME_REQUEST}/extension", json={"new_end": 0}, headers=headers)
    assert [e["field"] for e in problem(extension, 422)["errors"]] == ["new_end"]
    audit = await api.get("/v1/audit/access-changes", params={"since": "0"}, headers=headers)
    assert [e["field"] for e in problem(audit, 422)["errors"]] == ["query.since"]
    # A justification may run over several lines.
    request_id = await submit(
        api, headers, payables(justification="Month-end close.\nTicket FIN-7.")
    )
    assert request_id.startswith("access-request-E1001-")


async def test_a_directory_user_who_is_no_identity_is_refused_with_403(
    api: httpx.AsyncClient, app: FastAPI, issuer: Issuer, recording: RecordingClient
) -> None:
    headers = await auth(issuer, OUTSIDER)
    gate = app.state.access.known_callers
    lookups = gate.lookups
    before = len(recording.started)

    approvals = problem(await api.get("/v1/access/approvals", headers=headers), 403)
    assert approvals["title"] == "Not a Tenure identity"
    assert f"'{OUTSIDER}' is not an identity Tenure manages" in approvals["detail"]
    problem(await api.post(REQUESTS, json=payables(), headers=headers), 403)
    problem(await api.get(REQUESTS, headers=headers), 403)
    assert recording.started[before:] == []
    # One Temporal round trip for the token, however many calls it makes.
    assert gate.lookups == lookups + 1


async def test_a_leaver_with_a_valid_token_is_refused_naming_the_stage(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    refused = await api.get("/v1/access/approvals", headers=await auth(issuer, LEAVER))
    assert f"'{LEAVER}' is not hired in Tenure (stage disabled)" in problem(refused, 403)["detail"]


async def test_unknown_query_parameters_are_refused_after_authentication(
    api: httpx.AsyncClient, issuer: Issuer
) -> None:
    typo = {"stauts": "granted"}
    problem(await api.get(REQUESTS, params=typo), 401)
    answer = problem(
        await api.get(REQUESTS, params=typo, headers=await auth(issuer, REQUESTER)), 422
    )
    assert answer["errors"] == [
        {"field": "query.stauts", "message": "not a parameter of this operation"}
    ]
    assert answer["detail"].endswith("this operation takes limit, status.")
    intake = await api.post("/v1/hr/events?dry_run=1", json={"events": []}, headers=INTAKE)
    assert problem(intake, 422)["errors"][0]["field"] == "query.dry_run"


async def test_options_and_405_list_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    options = await api.options(REQUESTS)
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, POST, OPTIONS"
    wrong = await api.delete(REQUESTS)
    assert problem(wrong, 405)["detail"] == (
        "DELETE is not allowed here; allowed: GET, POST, OPTIONS."
    )
    assert wrong.headers["allow"] == "GET, POST, OPTIONS"
    assert (await api.options("/v1/hr/events")).headers["allow"] == "POST, OPTIONS"
    problem(await api.options("/v1/nothing-here"), 404)


async def test_the_openapi_document_is_honest_about_errors_and_bodies(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if (path, status) == ("/healthz", "503"):
                    continue  # the health document itself, saying what is unreachable
                if status.startswith(("4", "5")):
                    assert list(answer["content"]) == [PROBLEM], (path, method, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    decision = spec["paths"][f"{REQUESTS}/{{request_id}}/decision"]["post"]
    assert decision["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DecisionBody"
    }
    assert {"401", "403", "413", "422"} <= decision["responses"].keys()


# ---- header limits, on the real server ----------------------------------------------------------


async def test_an_oversize_token_is_401_not_a_dropped_connection(served: str) -> None:
    huge = "Bearer " + "a" * 134_000
    async with httpx.AsyncClient(base_url=served) as http:
        for path in ("/v1/access/approvals", "/v1/hr/events"):
            response = await http.request(
                "GET" if "approvals" in path else "POST",
                path,
                headers={"Authorization": huge},
                content=b"{}",
            )
            answer = problem(response, 401)
            assert "no token this API accepts is larger than 16384" in answer["detail"]
            assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_oversize_headers_are_431_and_normal_calls_still_work(
    served: str, issuer: Issuer
) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        stuffed = {f"X-Filler-{i}": "f" * 8000 for i in range(9)}
        answer = problem(await http.get("/v1/access/approvals", headers=stuffed), 431)
        assert "at most 65536 are accepted" in answer["detail"]
        fine = await http.get("/v1/access/approvals", headers=await auth(issuer, REQUESTER))
        assert fine.status_code == 200, fine.text
        intake = await http.post(
            "/v1/hr/events", content=json.dumps({"events": "x"}).encode(), headers=INTAKE
        )
        assert problem(intake, 422)["errors"][0]["field"] == "events"
