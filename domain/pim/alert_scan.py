"""The PIM alert scan's contract: `pim-alerts-<scheduled time>`, started by the Schedule
`tenure-pim-alerts` every `pim.alerts.every`.

One activity reads Graph and the record, decides (domain/pim/alert_rules.py) and applies what it
saw to the record's alerts, all at the scan's `at`; the workflow mails each alert the record raised
(new, or back after being resolved) to `pim.alerts.notify`. Alerts that persist are not mailed
again, so an hourly scan of a standing cause mails once.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.pim.alerts import AlertScanResult


class PimAlertContract:
    WORKFLOW = "PimAlertScanWorkflow"
    ID_PREFIX = "pim-alerts-"
    SCHEDULE_ID = "tenure-pim-alerts"


class PimAlertActivityNames:
    SCAN = "pim.alert_scan"


class AlertScanInput(BaseModel):
    """The workflow's input and the scan activity's. The schedule passes no `at`: the workflow
    fills in its own start, so every retry of the activity applies the same scan."""

    at: datetime | None = None


class AlertScanReport(BaseModel):
    """What one scan did, with what the workflow needs to tell people (read from the policy by
    the activity, so a policy change is picked up without a new schedule)."""

    at: datetime
    result: AlertScanResult
    roles_scanned: int = 0
    holdings_seen: int = 0
    notify: list[str] = Field(default_factory=list)  # employee ids mailed each raised alert
    mail_sender: str = ""
    # Filled in by the workflow: the alerts it mailed, and those whose mail could not be sent.
    mailed: list[str] = Field(default_factory=list)
    not_mailed: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        r = self.result
        return (
            f"{len(r.raised)} raised, {len(r.persisting)} still open, {len(r.resolved)} resolved "
            f"({self.holdings_seen} active assignments of {self.roles_scanned} roles)"
        )
