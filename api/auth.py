"""The intake token: HR sources authenticate with `Authorization: Bearer <token>`."""

from __future__ import annotations

import hmac

from api.problems import ProblemException


def bearer_token(authorization: str | None) -> str | None:
    """The token of a `Bearer` Authorization header (scheme is case-insensitive), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(presented: str | None, expected: str) -> bool:
    # Constant-time comparison, so response timing does not leak how much of a guess was right.
    return presented is not None and hmac.compare_digest(
        presented.encode("utf-8"), expected.encode("utf-8")
    )


def require_intake_token(authorization: str | None, expected: str) -> None:
    if not token_matches(bearer_token(authorization), expected):
        # Same answer for missing and wrong tokens: nothing to learn by probing.
        raise ProblemException(
            401,
            "Unauthorized",
            "A valid intake token is required: send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="tenure-intake"'},
        )
