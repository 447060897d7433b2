"""Shared by the token tests: the people the Graph emulator issues tokens for, and helpers to read
tokens and the verifier's refusals."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.caller import TokenVerifier
from api.problems import ProblemException

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
