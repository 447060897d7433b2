"""Checks a ticket number against the organisation's ticketing system, for roles whose ticket
setting says `verify: true` (Entra only records the number; correlation is ours).

The endpoint is `GET {TENURE_TICKETS_URL}/{ticket}` with `Authorization: Bearer
{TENURE_TICKETS_TOKEN}` (or the token read from TENURE_TICKETS_TOKEN_FILE): 200 means the ticket
exists (a body `{"open": false}` means it is closed, which refuses too), 404 that it does not.
Anything else is the ticketing system's trouble, retried by Temporal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.pim.activation import PimActivityNames, TicketVerdict, VerifyTicketInput


@dataclass(frozen=True)
class TicketingSettings:
    url: str
    token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TicketingSettings | None:
        env = os.environ if environ is None else environ
        url = env.get("TENURE_TICKETS_URL", "").strip()
        if not url:
            return None
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"TENURE_TICKETS_URL={url!r} is not an http(s) URL")
        token = env.get("TENURE_TICKETS_TOKEN", "").strip() or None
        token_file = env.get("TENURE_TICKETS_TOKEN_FILE", "").strip()
        if token is None and token_file:
            token = Path(token_file).read_text().strip() or None
        return cls(url=url.rstrip("/"), token=token)


class TicketActivities:
    def __init__(self, settings: TicketingSettings | None, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    @activity.defn(name=PimActivityNames.VERIFY_TICKET)
    async def verify_ticket(self, input: VerifyTicketInput) -> TicketVerdict:
        settings = self._settings
        if settings is None:
            raise ApplicationError(
                f"role {input.role_id} checks tickets, but TENURE_TICKETS_URL is not set",
                type="TicketingNotConfigured",
                non_retryable=True,
            )
        headers = {"Accept": "application/json"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        url = f"{settings.url}/{quote(input.ticket, safe='')}"
        try:
            response = await self._http.get(url, headers=headers, timeout=10.0)
        except httpx.HTTPError as err:
            raise ApplicationError(
                f"ticketing system unreachable: {err!r}", type="TicketingUnavailable"
            ) from None
        if response.status_code == 404:
            return TicketVerdict(
                valid=False, reason=f"ticket {input.ticket!r} is not known to the ticketing system"
            )
        if response.status_code != 200:
            raise ApplicationError(
                f"ticketing system answered {response.status_code} for {input.ticket!r}",
                type="TicketingUnavailable",
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("open") is False:
            return TicketVerdict(valid=False, reason=f"ticket {input.ticket!r} is closed")
        return TicketVerdict(valid=True)
