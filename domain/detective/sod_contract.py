"""Detective separation of duties: the names other programs use, and what its workflows and
activities exchange.

`SodCheckWorkflow` (`sod-check-{employee}`) checks one person, after a move; `SodScanWorkflow`
(Schedule `tenure-sod-scan`) checks everyone Tenure manages, a page at a time. Each violation they
find and no remediation has in hand starts `SodRemediationWorkflow`
(`sod-violation-{rule}-{employee}`), which does what the rule's `remediation` says and keeps the
violation in the record (`tenure sod violations`). An exception's approvers decide through its
`decide` update, as on an access request.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from pydantic import BaseModel, Field

from domain.approval.subject import ApproverContext, AskKind, Mail, StageAsk
from domain.detective.sod_check import FoundViolation, HeldGrant, PersonCheck
from domain.detective.sod_violations import SodViolation, ViolationStatus


class SodContract:
    SCAN_WORKFLOW = "SodScanWorkflow"
    SCAN_SCHEDULE_ID = "tenure-sod-scan"
    # The schedule's runs: Temporal appends the scheduled time (sod-scan-2026-01-01T02:00:00Z).
    SCAN_ID_PREFIX = "sod-scan-"
    CHECK_WORKFLOW = "SodCheckWorkflow"
    CHECK_ID_PREFIX = "sod-check-"
    REMEDIATION_WORKFLOW = "SodRemediationWorkflow"
    REMEDIATION_ID_PREFIX = "sod-violation-"
    UPDATE_DECIDE = "decide"  # an exception's approval (DecideInput, as an access request's)
    QUERY_DETAILS = "details"  # the violation as the record has it (SodViolation)


def check_workflow_id(employee_id: str) -> str:
    return f"{SodContract.CHECK_ID_PREFIX}{employee_id}"


def remediation_workflow_id(rule: str, employee_id: str) -> str:
    """One run per rule and person: a violation found again while its remediation runs (an
    exception holding) reaches that run instead of starting another."""
    return f"{SodContract.REMEDIATION_ID_PREFIX}{rule}-{employee_id}"


class SodActivityNames:
    CHECK_PERSON = "sod.check_person"
    LIST_MANAGED = "sod.list_managed"
    CHECK_PEOPLE = "sod.check_people"
    RECORD_VIOLATIONS = "sod.record_violations"
    START_REMEDIATIONS = "sod.start_remediations"
    REMOVE_GRANT = "sod.remove_grant"
    RESOLVE_OWNERS = "sod.resolve_owners"
    START_CHECK = "sod.start_check"


# ---- workflow inputs and results -------------------------------------------------------------------


class SodCheckInput(BaseModel):
    employee_id: str
    reason: str = ""  # why now, for the logs ("move E1-update-7")


class StartCheckInput(BaseModel):
    """The identity entity, after a move that added access: check this person now."""

    employee_id: str
    reason: str
    # Names this check among the person's (the move's event id): a second move while an earlier
    # check runs gets a check of its own, which reads the state after it.
    key: str
    task_queue: str


class SodCheckReport(BaseModel):
    employee_id: str
    found: list[str] = Field(default_factory=list)  # violation ids held now
    started: list[str] = Field(default_factory=list)  # remediation runs started
    running: list[str] = Field(default_factory=list)  # already running, left to go on
    resolved: list[str] = Field(default_factory=list)  # notified before, no longer held


class SodScanTally(BaseModel):
    pages: int = 0
    people: int = 0
    unknown: int = 0  # listed, but their identity did not answer (gone since the listing)
    violations: int = 0  # found, whether or not a remediation was started
    started: int = 0
    running: int = 0
    resolved: int = 0

    def summary(self) -> str:
        return (
            f"{self.people} people checked, {self.violations} violations held, "
            f"{self.started} remediations started, {self.running} already running, "
            f"{self.resolved} resolved"
        )


class SodScanInput(BaseModel):
    # People checked per activity: each page is one listing and one check activity, so the
    # history grows by the page, and a page's result carries only its violations.
    page_size: int = Field(200, ge=1, le=1000)
    # Carried over continue-as-new: where the listing goes on, and what came before.
    page_token: str | None = None
    tally: SodScanTally = Field(default_factory=SodScanTally)


class SodStoryLine(BaseModel):
    """One line of a remediation's story, kept in the record's `detail.story`."""

    seq: int
    at: datetime
    kind: str
    actor: str  # employee id, or "system"
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class SodRemediationInput(BaseModel):
    violation: FoundViolation  # as found, with the rule as the policy had it then
    manager_id: str | None = None  # the person's, for `manager` in an exception's stages
    # Carried over continue-as-new, when an exception's end starts another round.
    round: int = Field(1, ge=1)
    detected_at: datetime | None = None
    story: list[SodStoryLine] = Field(default_factory=list)


class SodDecisionAnswer(BaseModel):
    violation_id: str
    status: ViolationStatus
    message: str


# ---- activity inputs and results -------------------------------------------------------------------


class CheckPersonInput(BaseModel):
    employee_id: str
    at: datetime  # the workflow's now: what the record's updates are dated


class ListManagedInput(BaseModel):
    page_size: int = Field(200, ge=1, le=1000)
    page_token: str | None = None  # visibility's token, base64; None: from the start


class ManagedPage(BaseModel):
    employee_ids: list[str]
    next_page_token: str | None = None  # None: this was the last page


class CheckPeopleInput(BaseModel):
    employee_ids: list[str] = Field(max_length=1000)
    at: datetime


class PeopleCheck(BaseModel):
    """A page's checks: only people with something to remediate or resolve are listed."""

    checks: list[PersonCheck] = Field(default_factory=list)
    people: int = 0
    unknown: int = 0
    violations: int = 0


class RecordViolationsInput(BaseModel):
    violations: list[SodViolation]


class StartRemediationsInput(BaseModel):
    task_queue: str  # the starting workflow's: remediations run beside it
    remediations: list[SodRemediationInput]


class StartedRemediations(BaseModel):
    started: list[str] = Field(default_factory=list)  # workflow ids
    running: list[str] = Field(default_factory=list)


class RemoveGrantInput(BaseModel):
    employee_id: str
    grant: HeldGrant  # a package request or a PIM activation
    rule: str
    reason: str


class RemoveGrantResult(BaseModel):
    # False: the grant was already ending or gone (a retry, an expiry meanwhile): nothing to do.
    removed: bool
    message: str


class ResolveOwnersInput(BaseModel):
    rule: str
    owners: list[str] = Field(default_factory=list)  # the rule's, as found


class SodOwners(BaseModel):
    """Whom a violation is told to and, as `owner` in its exception's stages, who decides."""

    employee_ids: list[str]
    mail_sender: str


# ---- the exception as an approval subject ----------------------------------------------------------

_ASKS = {
    AskKind.ASK: "SoD exception needs approval",
    AskKind.REMINDER: "Reminder: SoD exception needs approval",
    AskKind.ESCALATION: "Escalated: SoD exception needs approval",
}


class SodExceptionSubject(BaseModel):
    """An exception to an SoD rule for one person: the owners (or the stages' approvers) decide,
    the person never does, and the mail says which rule, which sides and for how long."""

    workflow_id: str  # what approvers name to decide
    rule: str
    description: str = ""
    employee_id: str
    sides: list[str]  # the keys held, as people read them
    duration: str  # "90d"
    owners: list[str] = Field(default_factory=list)
    manager_id: str | None = None

    def approver_context(self) -> ApproverContext:
        return ApproverContext(
            manager_id=self.manager_id, owners=self.owners, own_people=[self.employee_id]
        )

    def own_refusal(self) -> str:
        return "you cannot approve an exception to a rule you break"

    def ask_mail(self, ask: StageAsk) -> Mail:
        why = f" ({escape(self.description)})" if self.description else ""
        return Mail(
            subject=f"{_ASKS[ask.kind]}: {self.rule} for {self.employee_id}",
            html=f"<p>{self.employee_id} holds {escape(' and '.join(self.sides))}, which "
            f"separation of duties rule <b>{escape(self.rule)}</b>{why} keeps apart. An "
            f"exception would let them keep both for {self.duration}; without one, the newest "
            f"grant is removed.</p>"
            f"<p>{ask.stage_name} needs {ask.needs} by {ask.deadline:%Y-%m-%d %H:%M} UTC. "
            f"Decide with <code>tenure sod approve {self.workflow_id}</code> (or deny).</p>",
        )
