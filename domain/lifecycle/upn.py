"""Deterministic user principal names: the same person always gets the same candidates, in order."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

# Graph limits mailNickname to 64 characters and the UPN's local part to 64 as well.
MAX_LOCAL_PART = 64
_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")


def _fold(name: str) -> str:
    """'Zoë O'Brien-Ünal' -> 'zoeobrien-unal': ASCII letters, digits and hyphens only."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _NOT_ALLOWED.sub("", ascii_only.replace(" ", "")).strip("-")


def mail_nickname_base(given_name: str, family_name: str, employee_id: str) -> str:
    parts = [p for p in (_fold(given_name), _fold(family_name)) if p]
    # A name with nothing usable in ASCII still needs a stable address: fall back to the employee id.
    base = ".".join(parts) if parts else _fold(employee_id) or "user"
    return base[:MAX_LOCAL_PART]


def mail_nickname_candidates(given_name: str, family_name: str, employee_id: str) -> Iterator[str]:
    """ada.lovelace, ada.lovelace2, ada.lovelace3, ... (trimmed so every candidate fits Graph's limit)."""
    base = mail_nickname_base(given_name, family_name, employee_id)
    yield base
    n = 2
    while True:
        suffix = str(n)
        yield base[: MAX_LOCAL_PART - len(suffix)] + suffix
        n += 1


def upn_for(mail_nickname: str, domain: str) -> str:
    return f"{mail_nickname}@{domain.lower()}"
