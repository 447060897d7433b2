"""The CLI's login: whom `tenure login` signed in as, and an HTTP client that calls the API as them.

The session lives in `<TENURE_HOME>/cli-token.json` (owner-only), next to the stack it came from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from stack.stack_file import tenure_home

SESSION_FILE_NAME = "cli-token.json"


class NotLoggedInError(Exception):
    """No usable login: the message says what to run."""


@dataclass(frozen=True)
class Session:
    api_url: str
    token: str = field(repr=False)
    employee_id: str
    expires_at: datetime  # timezone-aware
    user_principal_name: str | None = None
    display_name: str | None = None
    roles: tuple[str, ...] = ()

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.expires_at

    def who(self) -> str:
        """`E1001 (Ada Lovelace, ada.lovelace@example.com)`, with what is known."""
        known = [x for x in (self.display_name, self.user_principal_name) if x]
        return self.employee_id + (f" ({', '.join(known)})" if known else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "employee_id": self.employee_id,
            "user_principal_name": self.user_principal_name,
            "display_name": self.display_name,
            "roles": list(self.roles),
            "expires_at": self.expires_at.astimezone(UTC).isoformat(),
            "api_url": self.api_url,
            "token": self.token,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Session:
        expires_at = datetime.fromisoformat(str(raw["expires_at"]))
        if expires_at.tzinfo is None:
            raise ValueError("expires_at has no timezone")
        return cls(
            api_url=str(raw["api_url"]),
            token=str(raw["token"]),
            employee_id=str(raw["employee_id"]),
            expires_at=expires_at,
            user_principal_name=raw.get("user_principal_name"),
            display_name=raw.get("display_name"),
            roles=tuple(str(r) for r in raw.get("roles") or ()),
        )


def session_path(home: Path | None = None) -> Path:
    return (home or tenure_home()) / SESSION_FILE_NAME


def load_session(home: Path | None = None) -> Session | None:
    """The stored login, expired or not; None when there is none (or it is unreadable)."""
    try:
        return Session.from_json(json.loads(session_path(home).read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # a damaged file is no login; `tenure login` writes a new one


def save_session(session: Session, home: Path | None = None) -> Path:
    path = session_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Created owner-only from the start and renamed into place: never readable by others, never
    # seen half-written.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(session.to_json(), file, indent=2)
        file.write("\n")
    tmp.replace(path)
    path.chmod(0o600)
    return path


def remove_session(home: Path | None = None) -> Session | None:
    """Forget the login; answer the one that was stored, if any."""
    session = load_session(home)
    session_path(home).unlink(missing_ok=True)
    return session


def authorized_client(home: Path | None = None, **client_options: Any) -> httpx.Client:
    """An httpx client for the API, sending the logged-in person's token; NotLoggedInError if none."""
    session = load_session(home)
    if session is None:
        raise NotLoggedInError("not logged in: run `tenure login --as <employee id>`")
    if session.expired():
        raise NotLoggedInError(
            f"the login as {session.employee_id} expired at {local_time(session.expires_at)}: "
            f"run `tenure login --as {session.employee_id}` again"
        )
    options: dict[str, Any] = {"timeout": 30.0, **client_options}
    headers = {
        **dict(options.pop("headers", None) or {}),
        "Authorization": f"Bearer {session.token}",
    }
    return httpx.Client(base_url=session.api_url, headers=headers, **options)


def local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")
