"""Detective separation-of-duties activities: check people where their state is, keep violations in
the record, start remediations, end a grant, and say whom a violation is told to.

A check reads the person's identity entity (the one place that knows what they hold, through its
details query), dates their package and PIM grants from the record, and runs the pure check
(domain/detective/sod_check.py) against the policy's rules and what the record already says of
them. Only the outcome reaches the workflow: for a scan, a page of people comes back as the few
who have something to remediate or resolve, never their states.

Everything here is safe to retry: the record's writes are idempotent and monotonic, a start of a
remediation already running leaves it running, and a grant already ending refuses a second end,
which is taken as done.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.detective.sweep import MANAGED_QUERY
from audit.store import AccessRecordStore
from domain.access.request import (
    AccessRequestContract,
    Actor,
    Refusal,
    RevokeInput,
    UpdateAnswer,
)
from domain.approval.contract import SYSTEM
from domain.detective.sod_check import FoundViolation, PersonCheck, plan_check, violations
from domain.detective.sod_contract import (
    CheckPeopleInput,
    CheckPersonInput,
    ListManagedInput,
    ManagedPage,
    PeopleCheck,
    RecordViolationsInput,
    RemoveGrantInput,
    RemoveGrantResult,
    ResolveOwnersInput,
    SodActivityNames,
    SodCheckInput,
    SodContract,
    SodOwners,
    StartCheckInput,
    StartedRemediations,
    StartRemediationsInput,
    check_workflow_id,
    remediation_workflow_id,
)
from domain.holdings import GrantKind
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import IdentityContract, IdentityState, LifecycleStage
from domain.pim.activation import DeactivateInput, PimContract
from domain.policy.model import Policy
from domain.search_attributes import EMPLOYEE_ID

# Identities one page's check reads at once: enough to keep a page quick, few enough not to
# crowd the frontend with queries.
_CONCURRENT_CHECKS = 16


class SodActivities:
    """The detective SoD's I/O; the Temporal client, the record and the policy are injected."""

    def __init__(self, temporal: Client, store: AccessRecordStore, policy: Policy) -> None:
        self._temporal = temporal
        self._store = store
        self._policy = policy

    # ---- checks ---------------------------------------------------------------------------------

    @activity.defn(name=SodActivityNames.CHECK_PERSON)
    async def check_person(self, input: CheckPersonInput) -> PersonCheck:
        return await self._check(input.employee_id, input.at)

    @activity.defn(name=SodActivityNames.CHECK_PEOPLE)
    async def check_people(self, input: CheckPeopleInput) -> PeopleCheck:
        """One page of people; only those with something to remediate or resolve come back."""
        gate = asyncio.Semaphore(_CONCURRENT_CHECKS)

        async def one(employee_id: str) -> PersonCheck:
            async with gate:
                check = await self._check(employee_id, input.at)
            activity.heartbeat()
            return check

        checks = await asyncio.gather(*(one(e) for e in dict.fromkeys(input.employee_ids)))
        return PeopleCheck(
            checks=[c for c in checks if c.remediate or c.resolve],
            people=len(checks),
            unknown=sum(1 for c in checks if not c.known),
            violations=sum(len(c.found) for c in checks),
        )

    async def _check(self, employee_id: str, at: datetime) -> PersonCheck:
        state = await self._state(employee_id)
        if state is None:
            return PersonCheck(employee_id=employee_id, known=False)
        check = PersonCheck(
            employee_id=employee_id,
            manager_id=state.worker.manager_id if state.worker else None,
        )
        # A leaver's access is being taken away with the person: nothing left to keep apart.
        if state.stage is LifecycleStage.ACTIVE:
            found = violations(self._policy.access.sod, state)
            if found:
                # Dated only when needed: most people break no rule, and the dates only choose
                # which grant is newest.
                dates = await asyncio.to_thread(self._granted_at, found_request_ids(found))
                found = violations(self._policy.access.sod, state, dates)
            check.found = found
        recorded = await asyncio.to_thread(self._store.list_sod_violations, employee_id=employee_id)
        if not check.found and not recorded:
            return check
        return plan_check(check, recorded, at)

    async def _state(self, employee_id: str) -> IdentityState | None:
        handle = self._temporal.get_workflow_handle(identity_workflow_id(employee_id))
        try:
            return await handle.query(IdentityContract.QUERY_DETAILS, result_type=IdentityState)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise

    def _granted_at(self, request_ids: list[str]) -> dict[str, datetime]:
        dates = {}
        for request_id in request_ids:
            view = self._store.get_request(request_id)
            if view is not None and view.granted_at is not None:
                dates[request_id] = view.granted_at
        return dates

    @activity.defn(name=SodActivityNames.LIST_MANAGED)
    async def list_managed(self, input: ListManagedInput) -> ManagedPage:
        """One page of the identities Tenure manages (running identity workflows), by visibility."""
        token = base64.b64decode(input.page_token) if input.page_token else None
        listing = self._temporal.list_workflows(
            MANAGED_QUERY, page_size=input.page_size, next_page_token=token
        )
        await listing.fetch_next_page()
        ids = [
            execution.typed_search_attributes.get(EMPLOYEE_ID)
            or execution.id.removeprefix("identity-")
            for execution in listing.current_page or []
        ]
        following = listing.next_page_token
        return ManagedPage(
            employee_ids=ids,
            next_page_token=base64.b64encode(following).decode() if following else None,
        )

    # ---- the record and remediations ------------------------------------------------------------

    @activity.defn(name=SodActivityNames.RECORD_VIOLATIONS)
    async def record_violations(self, input: RecordViolationsInput) -> None:
        for violation in input.violations:
            # The store blocks (SQLite or PostgreSQL I/O): keep it off the worker's event loop.
            await asyncio.to_thread(self._store.record_sod_violation, violation)

    @activity.defn(name=SodActivityNames.START_REMEDIATIONS)
    async def start_remediations(self, input: StartRemediationsInput) -> StartedRemediations:
        result = StartedRemediations()
        for remediation in input.remediations:
            found = remediation.violation
            workflow_id = remediation_workflow_id(found.rule.name, found.employee_id)
            try:
                await self._temporal.start_workflow(
                    SodContract.REMEDIATION_WORKFLOW,
                    remediation,
                    id=workflow_id,
                    task_queue=input.task_queue,
                    # A run already in hand (an exception holding, or pending) goes on as it is;
                    # failing the start is how this says which were started.
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    static_summary=f"SoD {found.rule.name}: {found.employee_id}",
                )
            except WorkflowAlreadyStartedError:
                result.running.append(workflow_id)
                continue
            result.started.append(workflow_id)
        return result

    @activity.defn(name=SodActivityNames.START_CHECK)
    async def start_check(self, input: StartCheckInput) -> None:
        """Start the person's check (once per key: a retry finds the run it started)."""
        try:
            await self._temporal.start_workflow(
                SodContract.CHECK_WORKFLOW,
                SodCheckInput(employee_id=input.employee_id, reason=input.reason),
                id=f"{check_workflow_id(input.employee_id)}-{input.key}",
                task_queue=input.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"SoD check of {input.employee_id}: {input.reason}",
            )
        except WorkflowAlreadyStartedError:
            pass  # this key's check ran already

    @activity.defn(name=SodActivityNames.REMOVE_GRANT)
    async def remove_grant(self, input: RemoveGrantInput) -> RemoveGrantResult:
        """End a package grant (revoke its request) or a PIM activation, as an administrator
        would; the run removes what no other grant holds, and its story says why."""
        grant = input.grant
        actor = Actor(employee_id=SYSTEM, is_admin=True)
        if grant.kind is GrantKind.PACKAGE:
            name = AccessRequestContract.UPDATE_REVOKE
            ask: RevokeInput | DeactivateInput = RevokeInput(actor=actor, reason=input.reason)
        elif grant.kind is GrantKind.PIM:
            name = PimContract.UPDATE_DEACTIVATE
            ask = DeactivateInput(actor=actor, reason=input.reason)
        else:
            raise ApplicationError(
                f"{grant.describe()} cannot be removed here",
                type="NotRemovable",
                non_retryable=True,
            )
        handle = self._temporal.get_workflow_handle(grant.id)
        try:
            answer = await handle.execute_update(name, ask, result_type=UpdateAnswer)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == Refusal.CLOSED:
                # Already ending or over: a retry after the first attempt went through, or its
                # end came meanwhile. Either way it no longer holds anything.
                return RemoveGrantResult(removed=False, message=str(cause))
            raise ApplicationError(
                f"{grant.describe()} refused its end: {cause or err}",
                type="RemovalRefused",
                non_retryable=True,
            ) from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return RemoveGrantResult(removed=False, message=f"{grant.id} is no longer running")
            raise
        return RemoveGrantResult(removed=True, message=answer.message)

    @activity.defn(name=SodActivityNames.RESOLVE_OWNERS)
    async def resolve_owners(self, input: ResolveOwnersInput) -> SodOwners:
        """The rule's owners as the policy has them now (as found, if the rule is gone since),
        else the access administrators."""
        rule = next((r for r in self._policy.access.sod if r.name == input.rule), None)
        owners = list(rule.owners) if rule is not None else list(input.owners)
        return SodOwners(
            employee_ids=owners or list(self._policy.access.administrators),
            mail_sender=self._policy.tenant.mail_sender,
        )


def found_request_ids(found: list[FoundViolation]) -> list[str]:
    """The package and PIM grants the violations name, once each."""
    return list(
        dict.fromkeys(g.id for v in found for s in v.sides for g in s.grants if g.removable)
    )
