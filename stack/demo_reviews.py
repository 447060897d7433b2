"""The demo's access reviews: workload identities to review, and one campaign started by hand.

`make run` seeds a service principal, "Payroll Connector", with two apps holding its roles (one
signs in nightly, one has never signed in: its recommendation is deny), then starts the policy's
`quarterly-finance` review through the API as E0001 (an administrator). Its Schedule runs it
quarterly; this run shows one now in Temporal UI and `tenure reviews show`. A second `make run`
finds the campaign still running (409) and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

DEMO_REVIEW = "quarterly-finance"
REVIEW_STARTER = "E0001"  # an administrator (the Tenure.Admin app role)
PAYROLL = (
    "00000000-0000-4000-8000-00000000a001"  # the demo apps' appIds: fixed, so reruns reuse them
)
NIGHTLY_EXPORT = "00000000-0000-4000-8000-00000000a002"
LEGACY_SYNC = "00000000-0000-4000-8000-00000000a003"


def workload_seed(now: datetime) -> dict[str, Any]:
    recent = (now - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "servicePrincipals": [
            {
                "appId": PAYROLL,
                "displayName": "Payroll Connector",
                "appRoles": [{"value": "Payroll.Read"}, {"value": "Payroll.Write"}],
            },
            {
                "appId": NIGHTLY_EXPORT,
                "displayName": "Nightly Export",
                "signInActivity": {"lastSignInDateTime": recent},
            },
            {"appId": LEGACY_SYNC, "displayName": "Legacy Sync"},  # never signs in
        ],
        "appRoleAssignments": [
            {"principal": NIGHTLY_EXPORT, "resource": PAYROLL, "appRole": "Payroll.Read"},
            {"principal": LEGACY_SYNC, "resource": PAYROLL, "appRole": "Payroll.Write"},
        ],
    }


async def run_demo_reviews(
    http: httpx.AsyncClient,
    api_url: str,
    control_url: str,
    control_token: str,
    auth: Callable[[str], dict[str, str]],
    say: Callable[[str], None],
) -> None:
    """Seed the workloads and start the demo campaign; each step says how it went."""
    seeded = await http.post(
        f"{control_url}/seed",
        json=workload_seed(datetime.now(UTC)),
        headers={"Authorization": f"Bearer {control_token}"},
    )
    if seeded.status_code != 200:
        say(f"[yellow]demo workloads not seeded:[/] {seeded.status_code} {seeded.text[:200]}")
    started = await http.post(
        f"{api_url}/v1/reviews", json={"review_id": DEMO_REVIEW}, headers=auth(REVIEW_STARTER)
    )
    if started.status_code == 202:
        campaign = started.json()["campaign_id"]
        say(f"demo review: {DEMO_REVIEW} started as {campaign} (tenure reviews show {campaign})")
    elif started.status_code == 409:
        say(f"demo review: a {DEMO_REVIEW} campaign is still running (tenure reviews list)")
    else:
        say(f"[yellow]demo review not started:[/] {started.status_code} {started.text[:200]}")
