"""The demo's privileged access: an eligibility and a just-in-time activation, made through the
API as the demo's people would, and one role planted outside Tenure for the PIM alerts to find.

1. E0001 (an administrator) makes E0003 eligible for `user-admin` for the role's 90 days.
2. E0003 signs in with MFA and activates it for an hour, with a justification and a ticket:
   visible in Temporal UI (`pim-activation-E0003-user-admin-…`), in `tenure pim active`, and in
   the emulator's role assignments, until it ends by itself.
3. E0004 is given Global Administrator directly in the emulator, as someone might in the Entra
   portal: an assignment Tenure did not make.

The activation carries a fixed Idempotency-Key, so a second `make run` finds the same one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from emulators.graph.tokens import emulated_user_token_form

ADMIN = "E0001"
HOLDER = "E0003"
ROLE = "user-admin"
PLANTED = ("E0004", "62e90394-69f5-4237-9190-012177145e10")  # Global Administrator


async def run_demo_pim(
    http: httpx.AsyncClient,
    api_url: str,
    control_url: str,
    token_endpoint: str,
    control_token: str,
    audience: str,
    auth: Callable[[str], dict[str, str]],
    say: Callable[[str], None],
) -> None:
    """Each step says how it went; none takes the demo down."""
    control = {"Authorization": f"Bearer {control_token}"}
    assigned = await http.post(
        f"{api_url}/v1/pim/eligibilities",
        json={"employee_id": HOLDER, "role_id": ROLE, "justification": "on-call identity admin"},
        headers=auth(ADMIN),
    )
    if assigned.status_code not in (202, 409):
        say(f"[yellow]demo eligibility not made:[/] {assigned.status_code} {assigned.text[:200]}")
        return
    form = emulated_user_token_form(HOLDER, audience, mfa=True)
    token = await http.post(token_endpoint, data=form, headers=control)
    if token.status_code != 200:
        say(f"[yellow]demo MFA token not issued:[/] {token.status_code} {token.text[:200]}")
        return
    mfa = {"Authorization": f"Bearer {token.json()['access_token']}"}
    body: dict[str, Any] = {
        "role_id": ROLE,
        "duration": "1h",
        "justification": "unlock a locked-out account",
        "ticket": "INC-1001",
    }
    activated = await _activate(http, api_url, {**mfa, "Idempotency-Key": "demo-pim-1"}, body)
    say(activated)
    graph = control_url.removesuffix("/_emulator") + "/v1.0"
    found = await http.get(
        f"{graph}/users",
        params={"$filter": f"employeeId eq '{PLANTED[0]}'", "$select": "id"},
        headers=control,
    )
    users = found.json().get("value", []) if found.status_code == 200 else []
    if not users:
        say(f"[yellow]demo role not planted:[/] {PLANTED[0]} is not in the directory")
        return
    planted = {"principal": users[0]["id"], "role": PLANTED[1], "permanent": True}
    seeded = await http.post(
        f"{control_url}/seed", json={"roleAssignments": [planted]}, headers=control
    )
    if seeded.status_code == 200:
        say(f"demo PIM: {PLANTED[0]} holds Global Administrator outside Tenure (tenure pim alerts)")
    else:
        say(f"[yellow]demo role not planted:[/] {seeded.status_code} {seeded.text[:200]}")


async def _activate(
    http: httpx.AsyncClient, api_url: str, headers: dict[str, str], body: dict[str, Any]
) -> str:
    # The eligibility is written to Graph by its own run: the first attempts may find none yet.
    for _ in range(30):
        answer = await http.post(f"{api_url}/v1/pim/activations", json=body, headers=headers)
        if answer.status_code != 202:
            return f"[yellow]demo activation refused:[/] {answer.status_code} {answer.text[:200]}"
        activation = answer.json()["activation_id"]
        view = await _settled(http, f"{api_url}/v1/pim/activations/{activation}", headers)
        status = view.get("status", "?")
        if status != "denied" or "not eligible" not in str(view.get("story", [])[-1:]):
            return f"demo PIM: {HOLDER} activated {ROLE}: {status} ({activation})"
        headers = {**headers, "Idempotency-Key": f"{headers['Idempotency-Key']}-again"}
        await _pause()
    return f"[yellow]demo activation not made:[/] {HOLDER} never became eligible"


async def _settled(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for _ in range(60):
        response = await http.get(url, headers=headers)
        if response.status_code == 200:
            view = response.json()
            if view["status"] not in ("submitted", "granting"):
                return view
        await _pause()
    return view


async def _pause() -> None:
    await asyncio.sleep(0.5)
