"""Detective separation of duties, finding: who holds both sides of an SoD rule.

`SodCheckWorkflow` checks one person (the identity starts it after a move that added access);
`SodScanWorkflow` checks everyone Tenure manages (Schedule `tenure-sod-scan`). Both leave the
reading to activities, which check people where their state is and return only what needs
doing: violations no remediation has in hand, and recorded ones that are no longer held. A scan
goes a page at a time, two activities a page, and continues as new when its history grows, so it
stays small whatever the number of people. Each violation's remediation is its own run
(workflows/detective/sod_remediation.py).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.approval.contract import (
        SYSTEM,
    )
    from domain.detective.sod_check import PersonCheck
    from domain.detective.sod_contract import (
        CheckPeopleInput,
        CheckPersonInput,
        ListManagedInput,
        RecordViolationsInput,
        SodCheckInput,
        SodCheckReport,
        SodContract,
        SodRemediationInput,
        SodScanInput,
        SodScanTally,
        SodStoryLine,
        StartRemediationsInput,
    )
    from domain.detective.sod_violations import SodViolation
    from domain.stubs import sod as sod_activity
    from workflows.steps.retry import INVENTORY, PROVISIONING

# ---- finding ----------------------------------------------------------------------------------------


@workflow.defn(name=SodContract.CHECK_WORKFLOW)
class SodCheckWorkflow:
    """One person, now: what they hold against the rules, and what the record says of them."""

    @workflow.run
    async def run(self, input: SodCheckInput) -> SodCheckReport:
        workflow.set_current_details(f"checking {input.employee_id}")
        check = await workflow.execute_activity(
            sod_activity.check_person,
            CheckPersonInput(employee_id=input.employee_id, at=workflow.now()),
            **PROVISIONING,
        )
        report = SodCheckReport(
            employee_id=input.employee_id, found=[f.violation_id for f in check.found]
        )
        started, running, resolved = await act_on([check])
        report.started, report.running, report.resolved = started, running, resolved
        workflow.set_current_details(
            f"{input.employee_id}: {len(report.found)} violation(s) held, "
            f"{len(started)} remediation(s) started, {len(resolved)} resolved"
        )
        return report


@workflow.defn(name=SodContract.SCAN_WORKFLOW)
class SodScanWorkflow:
    """Everyone Tenure manages, a page at a time."""

    @workflow.run
    async def run(self, input: SodScanInput) -> SodScanTally:
        tally, token = input.tally.model_copy(), input.page_token
        while True:
            workflow.set_current_details(f"page {tally.pages + 1}: {tally.summary()}")
            page = await workflow.execute_activity(
                sod_activity.list_managed,
                ListManagedInput(page_size=input.page_size, page_token=token),
                **INVENTORY,
            )
            tally.pages += 1
            if page.employee_ids:
                checked = await workflow.execute_activity(
                    sod_activity.check_people,
                    CheckPeopleInput(employee_ids=page.employee_ids, at=workflow.now()),
                    **INVENTORY,
                )
                started, running, resolved = await act_on(checked.checks)
                tally.people += checked.people
                tally.unknown += checked.unknown
                tally.violations += checked.violations
                tally.started += len(started)
                tally.running += len(running)
                tally.resolved += len(resolved)
            token = page.next_page_token
            if token is None:
                break
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    SodScanInput(page_size=input.page_size, page_token=token, tally=tally)
                )
        workflow.set_current_details(tally.summary())
        return tally


async def act_on(checks: list[PersonCheck]) -> tuple[list[str], list[str], list[str]]:
    """Resolve what is no longer held, and start a remediation for each violation no run has in
    hand: (started, already running, resolved), by workflow or violation id."""
    by = workflow.info().workflow_id
    resolve = [_resolved(v, by) for check in checks for v in check.resolve]
    if resolve:
        await workflow.execute_activity(
            sod_activity.record_violations,
            RecordViolationsInput(violations=resolve),
            **PROVISIONING,
        )
    remediations = [
        SodRemediationInput(violation=found, manager_id=check.manager_id)
        for check in checks
        for found in check.remediate
    ]
    if not remediations:
        return [], [], [v.violation_id for v in resolve]
    started = await workflow.execute_activity(
        sod_activity.start_remediations,
        StartRemediationsInput(task_queue=workflow.info().task_queue, remediations=remediations),
        **PROVISIONING,
    )
    return started.started, started.running, [v.violation_id for v in resolve]


def _resolved(violation: SodViolation, by: str) -> SodViolation:
    """The recorded violation, resolved, with a line saying which check found it gone."""
    story = list(violation.detail.get("story") or [])
    line = SodStoryLine(
        seq=int(story[-1].get("seq", len(story))) + 1 if story else 1,
        at=violation.updated_at,
        kind="resolved",
        actor=SYSTEM,
        text=f"no longer held when {by} checked",
    )
    detail = {
        **violation.detail,
        "resolved_by": by,
        "story": [*story, line.model_dump(mode="json")],
    }
    return violation.model_copy(update={"detail": detail})
