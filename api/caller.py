"""Who is calling: the bearer JWT on an API call, verified against its issuer's published keys.

In production the issuer is Entra ID; locally the Graph emulator plays it with the same endpoint
shapes. A token is accepted only when it is signed with RS256 by a key the issuer publishes in its
JWKS, names the configured issuer and audience, is within its validity window (with leeway), and
carries the employee id claim. The caller's identity comes from these claims and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from api.auth import bearer_token
from api.problems import ProblemException

log = logging.getLogger(__name__)

ADMIN_ROLE = "Tenure.Admin"
AUDITOR_ROLE = "Tenure.Auditor"
ALGORITHM = "RS256"  # what Entra signs with; "none" and HS* (shared secrets) are never accepted
REALM = "tenure"
DEFAULT_AUDIENCE = "api://tenure"
DEFAULT_EMPLOYEE_ID_CLAIM = "employeeid"
# An unknown key id makes the verifier fetch the JWKS again (the issuer may have rotated its keys),
# at most once per this many seconds, so forged kids cannot make it hammer the issuer.
REFETCH_INTERVAL_S = 30.0
# Keys are fetched again after this long even when every kid is known (a key may be withdrawn).
KEYS_MAX_AGE_S = 3600.0
_PRINTABLE_ALG = re.compile(r"^[A-Za-z0-9]{1,16}$")


@dataclass(frozen=True)
class Caller:
    """The authenticated person behind an API call."""

    employee_id: str
    user_principal_name: str | None
    display_name: str | None
    roles: frozenset[str] = frozenset()
    # The sign-in used multi-factor authentication: the token's `amr` names `mfa` (RFC 8176).
    mfa: bool = False
    # The token's `exp` (seconds since 1970): what is learned about the caller lasts no longer.
    token_expires_at: float | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    @property
    def is_auditor(self) -> bool:
        return AUDITOR_ROLE in self.roles or self.is_admin


@dataclass(frozen=True)
class TokenSettings:
    """Which tokens the API accepts. Entra: issuer `https://login.microsoftonline.com/{tid}/v2.0`."""

    issuer: str
    audience: str = DEFAULT_AUDIENCE
    # None: read `jwks_uri` from the issuer's OpenID configuration (see `discovery_url`).
    jwks_url: str | None = None
    employee_id_claim: str = DEFAULT_EMPLOYEE_ID_CLAIM
    leeway_seconds: int = 60

    @property
    def discovery_url(self) -> str:
        # Entra's v2 issuer ends in /v2.0, and its metadata is below it:
        # .../{tid}/v2.0/.well-known/openid-configuration (as OpenID Connect Discovery has it).
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TokenSettings | None:
        """From TENURE_API_TOKEN_*; None when TENURE_API_TOKEN_ISSUER is unset (no user tokens)."""
        env = os.environ if environ is None else environ
        issuer = env.get("TENURE_API_TOKEN_ISSUER", "").strip()
        if not issuer:
            return None
        jwks_url = env.get("TENURE_API_JWKS_URL", "").strip() or None
        for name, url in (("TENURE_API_TOKEN_ISSUER", issuer), ("TENURE_API_JWKS_URL", jwks_url)):
            if url is not None and not url.startswith(("https://", "http://")):
                raise ValueError(f"{name}={url!r} is not an http(s) URL")
        return cls(
            issuer=issuer,
            audience=env.get("TENURE_API_TOKEN_AUDIENCE", "").strip() or DEFAULT_AUDIENCE,
            jwks_url=jwks_url,
            employee_id_claim=env.get("TENURE_API_EMPLOYEE_ID_CLAIM", "").strip()
            or DEFAULT_EMPLOYEE_ID_CLAIM,
        )


class _KeysUnavailable(Exception):
    """The issuer's keys could not be fetched; the message says where and why (for the log)."""


def _header_safe(text: str) -> str:
    # RFC 6750 error_description: printable ASCII without '"' and '\'.
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "'" for c in text)


def _unauthorized(reason: str) -> ProblemException:
    return ProblemException(
        401,
        "Unauthorized",
        f"Invalid bearer token: {reason}.",
        headers={
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{_header_safe(reason)}"'
        },
    )


def _missing_token() -> ProblemException:
    # RFC 6750 3.1: a request without credentials gets no error code, only the challenge.
    return ProblemException(
        401,
        "Unauthorized",
        "Missing token: send 'Authorization: Bearer <access token>'.",
        headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
    )


def _keys_unreachable() -> ProblemException:
    return ProblemException(
        503,
        "Service Unavailable",
        "cannot verify tokens: the issuer's keys are unreachable",
        headers={"Retry-After": "5"},
    )


class TokenVerifier:
    """Turns an Authorization header into a `Caller`, or raises a 401 (or 503) ProblemException.

    One per process: it caches the issuer's keys. Pass `http` to share a client (it is then not
    closed by `aclose`); `clock` and the intervals are for tests.
    """

    def __init__(
        self,
        settings: TokenSettings,
        http: httpx.AsyncClient | None = None,
        *,
        refetch_interval_s: float = REFETCH_INTERVAL_S,
        keys_max_age_s: float = KEYS_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        self._owns_http = http is None
        self._refetch_interval_s = refetch_interval_s
        self._keys_max_age_s = keys_max_age_s
        self._clock = clock
        self._jwks_url = settings.jwks_url
        self._keys: dict[str, RSAPublicKey] = {}
        self._loaded_at: float | None = None  # last successful fetch
        self._attempted_at = float("-inf")  # last fetch, successful or not
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # ---- verifying -----------------------------------------------------------------------------

    async def caller(self, authorization: str | None) -> Caller:
        token = bearer_token(authorization)
        if token is None:
            raise _missing_token()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _unauthorized("malformed token (not a JWT)") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            shown = alg if isinstance(alg, str) and _PRINTABLE_ALG.match(alg) else "?"
            raise _unauthorized(f"algorithm '{shown}' is not accepted (only {ALGORITHM})")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("the token header names no signing key (kid)")
        key = await self._signing_key(kid)
        if key is None:
            raise _unauthorized("bad signature: signed by a key the issuer does not publish")
        claims = self._decode(token, key)
        return self._caller_from(claims)

    def _decode(self, token: str, key: RSAPublicKey) -> dict[str, Any]:
        s = self.settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            reason = "expired"
            exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
            if isinstance(exp, int | float):
                at = datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                reason = f"expired at {at}"
        except jwt.ImmatureSignatureError:
            reason = "not valid yet (nbf or iat lies in the future)"
        except jwt.InvalidAudienceError:
            reason = f"wrong audience (this API accepts '{s.audience}')"
        except jwt.InvalidIssuerError:
            reason = f"wrong issuer (this API accepts '{s.issuer}')"
        except jwt.MissingRequiredClaimError as err:
            reason = f"the required '{err.claim}' claim is missing"
        except jwt.InvalidSignatureError:
            reason = "bad signature"
        except jwt.InvalidTokenError:
            reason = "malformed token"
        raise _unauthorized(reason)

    def _caller_from(self, claims: dict[str, Any]) -> Caller:
        claim = self.settings.employee_id_claim
        employee_id = claims.get(claim)
        if not isinstance(employee_id, str) or not employee_id.strip():
            raise _unauthorized(f"no employee id claim ('{claim}') in the token")
        roles = claims.get("roles")
        upn = claims.get("preferred_username") or claims.get("upn")
        name = claims.get("name")
        exp = claims.get("exp")
        amr = claims.get("amr")
        return Caller(
            employee_id=employee_id.strip(),
            user_principal_name=upn if isinstance(upn, str) else None,
            display_name=name if isinstance(name, str) else None,
            roles=frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else frozenset(),
            mfa=isinstance(amr, list) and "mfa" in amr,
            token_expires_at=float(exp) if isinstance(exp, int | float) else None,
        )

    # ---- the issuer's keys ---------------------------------------------------------------------

    async def _signing_key(self, kid: str) -> RSAPublicKey | None:
        async with self._lock:
            now = self._clock()
            if self._loaded_at is None:
                await self._load(now)
            elif (
                now - self._loaded_at >= self._keys_max_age_s
                and now - self._attempted_at >= self._refetch_interval_s
            ):
                # Due for a refresh; if the issuer is down, the keys already held still serve.
                await self._load(now, keep_stale=True)
            key = self._keys.get(kid)
            if key is None and now - self._attempted_at >= self._refetch_interval_s:
                # Perhaps the issuer rotated its keys since: look once more.
                await self._load(now)
                key = self._keys.get(kid)
            return key

    async def _load(self, now: float, keep_stale: bool = False) -> None:
        self._attempted_at = now
        try:
            keys = await self._fetch_keys()
        except _KeysUnavailable as err:
            if keep_stale and self._keys:
                log.warning(
                    "cannot refresh the token issuer's keys, keeping the last ones: %s", err
                )
                return
            log.warning("cannot fetch the token issuer's keys: %s", err)
            raise _keys_unreachable() from None
        self._keys = keys
        self._loaded_at = now

    async def _fetch_keys(self) -> dict[str, RSAPublicKey]:
        if self._jwks_url is None:
            metadata = await self._get_json(self.settings.discovery_url)
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise _KeysUnavailable(f"{self.settings.discovery_url} names no jwks_uri")
            self._jwks_url = jwks_uri
        jwks = await self._get_json(self._jwks_url)
        keys: dict[str, RSAPublicKey] = {}
        for jwk in jwks.get("keys") or []:
            if not isinstance(jwk, dict) or not _usable(jwk):
                continue
            try:
                key = RSAAlgorithm.from_jwk(jwk)
            except (jwt.InvalidKeyError, ValueError, TypeError) as err:
                log.warning(
                    "ignoring unreadable key %r in %s: %s", jwk.get("kid"), self._jwks_url, err
                )
                continue
            if isinstance(key, RSAPublicKey):
                keys[jwk["kid"]] = key
        if not keys:
            raise _KeysUnavailable(f"{self._jwks_url} publishes no {ALGORITHM} signing key")
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as err:
            raise _KeysUnavailable(f"GET {url}: {err!r}") from None
        if not isinstance(body, dict):
            raise _KeysUnavailable(f"GET {url}: not a JSON object")
        return body


def _usable(jwk: dict[str, Any]) -> bool:
    """An RSA public signing key for RS256, with a key id."""
    return (
        jwk.get("kty") == "RSA"
        and jwk.get("use", "sig") == "sig"
        and jwk.get("alg", ALGORITHM) == ALGORITHM
        and isinstance(jwk.get("kid"), str)
        and bool(jwk["kid"])
        and "d" not in jwk
    )
