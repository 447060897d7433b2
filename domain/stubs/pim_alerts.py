"""The PIM alert scan's activity (implemented by activities/pim/alerts.py). Its mails go through
`access.notify` (domain/stubs/access.py)."""

from __future__ import annotations

from temporalio import activity

from domain.pim.alert_scan import AlertScanInput, AlertScanReport, PimAlertActivityNames

__all__ = ["alert_scan"]


@activity.defn(name=PimAlertActivityNames.SCAN)
async def alert_scan(input: AlertScanInput) -> AlertScanReport:
    raise NotImplementedError
