"""Dev credentials of the local stack: random on the first run, kept in TENURE_HOME, reused after.

Reusing them matters: the SCIM and Graph databases outlive a run, so must the tokens guarding them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

CREDENTIALS_FILE_NAME = "credentials.json"


def _new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Credentials:
    intake_token: str
    graph_token: str
    scim_tokens: dict[str, str] = field(default_factory=dict)
    # The local SIEM's bearer token for POST /v1/security/incidents ("" in files from before it).
    siem_token: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "intake_token": self.intake_token,
            "graph_token": self.graph_token,
            "scim_tokens": dict(self.scim_tokens),
            "siem_token": self.siem_token,
        }


def credentials_path(home: Path) -> Path:
    return home / CREDENTIALS_FILE_NAME


def _write(path: Path, creds: Credentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Created with mode 0600 from the start, so the tokens are never readable by others.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(creds.to_json(), file, indent=2)
        file.write("\n")
    tmp.replace(path)
    path.chmod(0o600)


def read_credentials(home: Path) -> Credentials | None:
    """The stored credentials, None if there are none yet; ValueError if the file is unreadable."""
    path = credentials_path(home)
    try:
        raw = json.loads(path.read_text())
        return Credentials(
            intake_token=str(raw["intake_token"]),
            graph_token=str(raw["graph_token"]),
            scim_tokens={str(k): str(v) for k, v in dict(raw.get("scim_tokens", {})).items()},
            siem_token=str(raw.get("siem_token") or ""),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: unreadable credentials ({exc}); delete it to generate new dev credentials"
        ) from None


def load_or_create_credentials(home: Path, apps: list[str]) -> Credentials:
    """The stored credentials, with a new token for any app the policy gained since."""
    path = credentials_path(home)
    creds = read_credentials(home)
    changed = creds is None
    if creds is None:
        creds = Credentials(intake_token=_new_token(), graph_token=_new_token())
    if not creds.siem_token:
        creds.siem_token = _new_token()
        changed = True
    for app in apps:
        if app not in creds.scim_tokens:
            creds.scim_tokens[app] = _new_token()
            changed = True
    if changed:
        _write(path, creds)
    return creds
