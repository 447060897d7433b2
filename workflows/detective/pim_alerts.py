"""PIM alert scan: find privileged access gone wrong, keep the record's alerts, tell people once.

Started by the Schedule `tenure-pim-alerts` (connection/schedules_sync.py) every `pim.alerts.every`.
One activity reads Graph and the record, decides and applies the scan to the record at this run's
start (`at`, fixed here so that every retry applies the same scan); the workflow then mails each
alert the record raised to `pim.alerts.notify`. An alert that persists is in no later run's
`raised`, so it is mailed once; one that comes back after being resolved is raised, and mailed,
again.

The history stays small: one activity, and one mail per raised alert up to `MAILED_ONE_BY_ONE`;
beyond that (a first scan of a tenant with much standing access) one more mail counts the rest
by kind, and the record's open alerts (`AccessRecordStore.list_alerts`) have them all.
"""

from __future__ import annotations

import asyncio
from html import escape

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.access.request import NotifyInput
    from domain.pim.alert_scan import AlertScanInput, AlertScanReport, PimAlertContract
    from domain.pim.alerts import PimAlert
    from domain.stubs import access as access_activity
    from domain.stubs import pim_alerts as alert_activity
    from workflows.access.request_story import error_cause
    from workflows.steps.retry import INVENTORY, NOTICE

# Raised alerts mailed one by one; the rest are counted in one mail.
MAILED_ONE_BY_ONE = 20


@workflow.defn(name=PimAlertContract.WORKFLOW)
class PimAlertScanWorkflow:
    @workflow.run
    async def run(self, input: AlertScanInput) -> AlertScanReport:
        at = input.at or workflow.now()
        workflow.set_current_details(f"scanning privileged roles at {at:%Y-%m-%d %H:%M} UTC")
        report = await workflow.execute_activity(
            alert_activity.alert_scan, AlertScanInput(at=at), **INVENTORY
        )
        raised = report.result.raised
        if raised and report.notify:
            workflow.set_current_details(f"mailing {len(raised)} new alert(s)")
            await self._mail(report)
        workflow.set_current_details(report.summary())
        return report

    async def _mail(self, report: AlertScanReport) -> None:
        one_by_one = report.result.raised[:MAILED_ONE_BY_ONE]
        rest = report.result.raised[MAILED_ONE_BY_ONE:]
        sent = await asyncio.gather(*(self._send(report, *_alert_mail(a)) for a in one_by_one))
        for alert, ok in zip(one_by_one, sent, strict=True):
            (report.mailed if ok else report.not_mailed).append(alert.alert_id)
        if rest:
            ok = await self._send(report, *_digest_mail(rest))
            (report.mailed if ok else report.not_mailed).extend(a.alert_id for a in rest)

    async def _send(self, report: AlertScanReport, subject: str, html: str) -> bool:
        try:
            await workflow.execute_activity(
                access_activity.notify,
                NotifyInput(
                    sender=report.mail_sender,
                    to_employee_ids=list(dict.fromkeys(report.notify)),
                    subject=subject,
                    html_body=html,
                ),
                **NOTICE,
            )
        except ActivityError as err:
            # The alert is in the record either way; a mailbox outage does not fail the scan.
            workflow.logger.warning("alert mail %r not sent: %s", subject, error_cause(err))
            return False
        return True


def _alert_mail(alert: PimAlert) -> tuple[str, str]:
    again = f" (raised {alert.times_raised} times)" if alert.times_raised > 1 else ""
    subject = f"PIM alert: {alert.kind.value.replace('_', ' ')} on {alert.role_id}"
    if alert.subject:
        subject += f" for {alert.subject}"
    html = (
        f"<p>{escape(alert.text)}{escape(again)}.</p>"
        f"<p>Alert <code>{escape(alert.alert_id)}</code>, first raised "
        f"{alert.first_raised_at:%Y-%m-%d %H:%M} UTC. It stays open while the scan sees its "
        "cause, and is resolved when it no longer does.</p>"
    )
    return subject, html


def _digest_mail(alerts: list[PimAlert]) -> tuple[str, str]:
    kinds: dict[str, int] = {}
    for alert in alerts:
        kinds[alert.kind.value] = kinds.get(alert.kind.value, 0) + 1
    rows = "".join(f"<li>{escape(k)}: {n}</li>" for k, n in sorted(kinds.items()))
    html = (
        f"<p>{len(alerts)} more PIM alerts were raised:</p><ul>{rows}</ul>"
        "<p>The access record's open PIM alerts list each of them.</p>"
    )
    return f"PIM alerts: {len(alerts)} more raised", html
