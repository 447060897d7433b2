"""The emulator as the local token issuer: Entra-shaped discovery, JWKS and a local-only grant.

Entra ID signs access tokens with RS256 keys it publishes at `/{tenant}/discovery/v2.0/keys` and
names in `/{tenant}/v2.0/.well-known/openid-configuration`; the emulator does the same, so the API
verifies local tokens with exactly the code that verifies Entra's. Only the way a token is obtained
differs: there is no sign-in page here, so a grant that exists only locally
(`urn:tenure:params:oauth:grant-type:emulated-user`) mints a token for a person of the emulated
directory, authorised by the emulator's control token because it can impersonate anybody.

Signing keys live in the emulator's SQLite file (a local dev key, stored unencrypted), so tokens
survive a restart on the same file; an in-memory directory gets a fresh key per process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.graph.errors import bad_request
from emulators.graph.store import Directory
from emulators.graph.workloads import signin_activity

# uuid5(NAMESPACE_URL, "https://tenure.local/graph-emulator/tenant"): fixed, so issuer URLs and
# tokens stay valid across runs, and recognisably not a real tenant.
DEFAULT_TENANT_ID = "b4fde5c4-34f8-5d18-84cc-13304d9a0510"
EMULATED_USER_GRANT = "urn:tenure:params:oauth:grant-type:emulated-user"
APP_ROLES = ("Tenure.Admin", "Tenure.Auditor")


def emulated_user_token_form(employee_id: str, audience: str, mfa: bool = False) -> dict[str, str]:
    """The token endpoint's form for a person's token (POSTed with the emulator's control token).

    `mfa` asks for a token as after a multifactor sign-in (`amr` ["pwd", "mfa"]).
    """
    form = {
        "grant_type": EMULATED_USER_GRANT,
        "employee_id": employee_id,
        "scope": f"{audience}/.default",
    }
    if mfa:
        form["mfa"] = "true"
    return form


ALGORITHM = "RS256"
KEY_BITS = 2048
DEFAULT_LIFETIME_S = 3600
MIN_LIFETIME_S, MAX_LIFETIME_S = 60, 86400
# Keys published in the JWKS, newest first: older ones stay listed after a rotation so tokens they
# signed still verify until they expire, as Entra keeps a retired key published for a while.
PUBLISHED_KEYS = 3
DEFAULT_SUFFIX = "/.default"
CLAIMS = (
    "iss aud tid sub oid preferred_username name employeeid roles amr iat nbf exp ver jti".split()
)
# The optional `mfa` form field: present, it asks for a token as after a multifactor sign-in.
MFA_TRUE = frozenset({"true", "1", "yes"})
_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


class OAuthError(Exception):
    """An RFC 6749 error answer: `{"error": ..., "error_description": ...}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        return cls(_thumbprint(private_key.public_key()), private_key)

    @classmethod
    def from_pem(cls, kid: str, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"signing key {kid} is not an RSA key")
        return cls(kid, key)

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": ALGORITHM,
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a key id derived from the key itself."""
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class TokenIssuer:
    """Signing keys, app role assignments and the claims of the tokens the emulator mints."""

    def __init__(self, directory: Directory, tenant_id: str = DEFAULT_TENANT_ID) -> None:
        if not _TENANT_ID.match(tenant_id):
            raise ValueError(f"tenant id {tenant_id!r}: use letters, digits, '-' and '.' only")
        self.dir = directory
        self.tenant_id = tenant_id
        # The first key is made when first needed: most emulator runs (tests, benchmarks) never are.
        self._keys = [SigningKey.from_pem(kid, pem) for kid, pem in directory.signing_keys()]

    # ---- keys ----------------------------------------------------------------------------------

    def rotate_key(self) -> str:
        """Sign with a new key from now on (the previous ones stay published); answer its kid."""
        key = SigningKey.generate()
        self.dir.add_signing_key(key.kid, key.private_pem())
        self._keys.append(key)
        return key.kid

    def _current_key(self) -> SigningKey:
        if not self._keys:
            self.rotate_key()
        return self._keys[-1]

    def jwks(self) -> dict[str, Any]:
        self._current_key()
        return {"keys": [key.public_jwk() for key in reversed(self._keys[-PUBLISHED_KEYS:])]}

    # ---- metadata ------------------------------------------------------------------------------

    def issuer(self, root: str) -> str:
        """`{root}/{tenant}/v2.0`, as Entra's `https://login.microsoftonline.com/{tid}/v2.0`."""
        return f"{root}/{self.tenant_id}/v2.0"

    def openid_configuration(self, root: str) -> dict[str, Any]:
        base = f"{root}/{self.tenant_id}"
        return {
            "issuer": self.issuer(root),
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "grant_types_supported": [EMULATED_USER_GRANT],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "claims_supported": list(CLAIMS),
        }

    # ---- app roles -----------------------------------------------------------------------------

    def assign_roles(self, employee_id: str, body: Any) -> dict[str, Any]:
        """Replace a person's app roles (by employee id, whether or not they exist yet)."""
        employee_id = employee_id.strip()
        if not employee_id:
            raise bad_request("An employee id is required: PUT /_emulator/app-roles/{employeeId}.")
        roles = body.get("roles") if isinstance(body, dict) else None
        allowed = ", ".join(APP_ROLES)
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise bad_request(f'Body must be {{"roles": [...]}} with role names among: {allowed}.')
        unknown = [r for r in roles if r not in APP_ROLES]
        if unknown:
            raise bad_request(
                f"Unknown app role(s) {', '.join(repr(r) for r in unknown)}: allowed are {allowed}."
            )
        unique = list(dict.fromkeys(roles))
        self.dir.set_app_roles(employee_id, unique)
        return {"employeeId": employee_id, "roles": unique}

    def role_assignments(self) -> list[dict[str, Any]]:
        return [
            {"employeeId": employee_id, "roles": list(roles)}
            for employee_id, roles in self.dir.app_roles.items()
        ]

    # ---- the token endpoint --------------------------------------------------------------------

    def token_response(self, form: dict[str, str], root: str) -> dict[str, Any]:
        """Answer a token request (the caller's control token is already checked) or OAuthError."""
        grant_type = form.get("grant_type", "").strip()
        if not grant_type:
            raise OAuthError(
                400, "invalid_request", "The request body must contain the parameter 'grant_type'."
            )
        if grant_type != EMULATED_USER_GRANT:
            raise OAuthError(
                400,
                "unsupported_grant_type",
                f"The grant type '{grant_type}' is not supported by the Graph emulator; "
                f"it issues tokens only through '{EMULATED_USER_GRANT}'.",
            )
        scope, audience = _audience(form.get("scope", ""))
        lifetime = _lifetime(form.get("lifetime_seconds"))
        mfa = _mfa(form.get("mfa"))
        user = self._user(form)
        token = self.mint(user, audience, root, lifetime, mfa)
        self._signed_in(user)
        return {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def _signed_in(self, user: dict[str, Any]) -> None:
        """A token is a successful interactive sign-in: Entra updates the user's signInActivity
        with it (what access-review recommendations read)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        activity = signin_activity({"lastSignInDateTime": now, "lastSuccessfulSignInDateTime": now})
        self.dir.set_sign_in(user["id"], activity)

    def _user(self, form: dict[str, str]) -> dict[str, Any]:
        employee_id = form.get("employee_id", "").strip()
        username = form.get("username", "").strip()
        if bool(employee_id) == bool(username):
            raise OAuthError(
                400,
                "invalid_request",
                "Name the person with exactly one of 'employee_id' or 'username' (a UPN).",
            )
        if employee_id:
            who = f"employeeId '{employee_id}'"
            ids = self.dir.user_index.lookup("employeeId", employee_id)
            if len(ids) > 1:
                raise OAuthError(
                    400,
                    "invalid_grant",
                    f"{len(ids)} users carry {who} in the emulated directory; expected one.",
                )
            user = self.dir.users[ids[0]] if ids else None
        else:
            who = f"userPrincipalName '{username}'"
            user = self.dir.user_by_upn(username)
        if user is None:
            raise OAuthError(
                400, "invalid_grant", f"No user with {who} exists in the emulated directory."
            )
        if user.get("accountEnabled") is not True:
            raise OAuthError(
                400,
                "invalid_grant",
                f"The user account with {who} ({user.get('userPrincipalName')}) is disabled "
                "(accountEnabled is false), as a leaver's is: it cannot sign in.",
            )
        return user

    def mint(
        self, user: dict[str, Any], audience: str, root: str, lifetime: int, mfa: bool = False
    ) -> str:
        """A signed access token for `user`, Entra v2 style; `mfa` as after a multifactor sign-in."""
        now = int(time.time())
        employee_id = user.get("employeeId")
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer(root),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "name": user.get("displayName"),
            "oid": user["id"],
            "preferred_username": user.get("userPrincipalName"),
            "sub": user["id"],
            "tid": self.tenant_id,
            "ver": "2.0",
            "jti": str(uuid.uuid4()),
            # Entra emits employeeId only as a configured optional claim; the emulator always does.
            "employeeid": employee_id,
            "roles": list(self.dir.app_roles.get(employee_id, ())) if employee_id else None,
            # How the person signed in, as Entra says it: a password, and a second factor or not.
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
        }
        claims = {k: v for k, v in claims.items() if v not in (None, [])}
        key = self._current_key()
        return jwt.encode(
            claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
        )


def _audience(scope: str) -> tuple[str, str]:
    """The scope as sent and the audience it names: `api://tenure/.default` -> `api://tenure`."""
    scopes = scope.split()
    if not scopes:
        raise OAuthError(
            400, "invalid_request", "The request body must contain the parameter 'scope'."
        )
    if len(scopes) != 1 or not scopes[0].endswith(DEFAULT_SUFFIX):
        raise OAuthError(
            400,
            "invalid_scope",
            f"The scope '{scope}' is not valid: ask for one resource's '{DEFAULT_SUFFIX}' scope, "
            f"e.g. 'api://tenure{DEFAULT_SUFFIX}'.",
        )
    audience = scopes[0][: -len(DEFAULT_SUFFIX)]
    if not audience:
        raise OAuthError(400, "invalid_scope", f"The scope '{scope}' names no resource.")
    return scopes[0], audience


def _mfa(raw: str | None) -> bool:
    """The optional `mfa` field: absent is a password-only sign-in; true (or 1, yes) adds MFA.

    Anything else is refused rather than read as false, so a typo never passes for a choice.
    """
    if raw is None:
        return False
    if raw.strip().lower() in MFA_TRUE:
        return True
    if raw.strip().lower() in ("false", "0", "no"):
        return False
    raise OAuthError(
        400,
        "invalid_request",
        f"The parameter 'mfa' must be 'true' or 'false' (or '1'/'0', 'yes'/'no'), or be left "
        f"out; got '{raw}'.",
    )


def _lifetime(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return DEFAULT_LIFETIME_S
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not MIN_LIFETIME_S <= value <= MAX_LIFETIME_S:
        raise OAuthError(
            400,
            "invalid_request",
            f"lifetime_seconds must be a whole number from {MIN_LIFETIME_S} to {MAX_LIFETIME_S}.",
        )
    return value
