"""Access request activities: reach the person's identity entity, resolve approvers, send notices.

The identity entity is the one place that knows what a person holds, so eligibility reads its state
(a query) and the SoD check runs inside it (an update), one request at a time per person.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.access.request import (
    AccessActivityNames,
    Beneficiary,
    BeneficiaryInput,
    NotifyInput,
    NotifyResult,
    ReleaseInput,
    ReserveInput,
)
from domain.approval.contract import ResolveApproversInput, ResolvedApprovers
from domain.approval.stages import ApproverKind
from domain.holdings import Release
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import (
    IdentityContract,
    IdentityState,
    LifecycleStage,
    ReserveAccessResult,
)
from domain.provisioning import EmployeeIdInput, Mailbox, SendMailInput


class ApproverDirectory(Protocol):
    """The Graph calls approver resolution and notices need (GraphActivities provides them)."""

    async def group_member_employee_ids(self, name: str) -> list[str]: ...
    async def find_mailbox(self, input: EmployeeIdInput) -> Mailbox: ...
    async def send_mail(self, input: SendMailInput) -> None: ...


class AccessActivities:
    def __init__(self, temporal: Client, graph: ApproverDirectory) -> None:
        self._temporal = temporal
        self._graph = graph

    async def _identity(self, employee_id: str) -> IdentityState | None:
        handle = self._temporal.get_workflow_handle(identity_workflow_id(employee_id))
        try:
            return await handle.query(IdentityContract.QUERY_DETAILS, result_type=IdentityState)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise

    @activity.defn(name=AccessActivityNames.LOAD_BENEFICIARY)
    async def load_beneficiary(self, input: BeneficiaryInput) -> Beneficiary:
        state = await self._identity(input.employee_id)
        if state is None:
            return Beneficiary(employee_id=input.employee_id, known=False)
        return Beneficiary(
            employee_id=input.employee_id,
            known=True,
            stage=state.stage.value,
            worker=state.worker,
            graph_user_id=state.graph_user_id,
            user_principal_name=state.user_principal_name,
        )

    @activity.defn(name=AccessActivityNames.RESERVE)
    async def reserve(self, input: ReserveInput) -> ReserveAccessResult:
        handle = self._temporal.get_workflow_handle(identity_workflow_id(input.beneficiary_id))
        try:
            return await handle.execute_update(
                IdentityContract.UPDATE_RESERVE_ACCESS,
                input.reservation,
                result_type=ReserveAccessResult,
            )
        except WorkflowUpdateFailedError as err:
            # The entity's validator refused: the person is not active.
            return ReserveAccessResult(accepted=False, reason=str(err.cause or err))
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return ReserveAccessResult(
                    accepted=False, reason=f"{input.beneficiary_id} is not a person Tenure knows"
                )
            raise

    @activity.defn(name=AccessActivityNames.RELEASE)
    async def release(self, input: ReleaseInput) -> Release:
        """Which of a request's resources may go now that its grant ends: the identity entity
        answers from its holdings ledger and stops counting the request's package."""
        handle = self._temporal.get_workflow_handle(identity_workflow_id(input.beneficiary_id))
        try:
            return await handle.execute_update(
                IdentityContract.UPDATE_RELEASE_ACCESS, input.release, result_type=Release
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                # No entity (terminated by an operator): nothing else is known to hold anything.
                return Release(remove=list(input.release.resources), kept=[])
            raise

    @activity.defn(name=AccessActivityNames.RESOLVE_APPROVERS)
    async def resolve_approvers(self, input: ResolveApproversInput) -> ResolvedApprovers:
        """Employee ids in policy order, once each, without the requester or the beneficiary, and
        only people who are active (a manager who left cannot approve)."""
        found: list[str] = []
        empty: list[str] = []
        for source in input.sources:
            ids = await self._source_ids(source.kind, source.people, source.group, input)
            active = [i for i in ids if await self._is_active(i)]
            if not active:
                empty.append(source.kind.value + (f" {source.group}" if source.group else ""))
            found.extend(i for i in active if i not in found and i not in input.exclude)
        return ResolvedApprovers(employee_ids=found, empty_sources=empty)

    async def _source_ids(
        self, kind: ApproverKind, people: list[str], group: str | None, input: ResolveApproversInput
    ) -> list[str]:
        manager = input.beneficiary_manager_id
        if kind is ApproverKind.MANAGER:
            return [manager] if manager else []
        if kind is ApproverKind.SECOND_LEVEL_MANAGER:
            state = await self._identity(manager) if manager else None
            second = state.worker.manager_id if state and state.worker else None
            return [second] if second else []
        if kind is ApproverKind.PEOPLE:
            return list(people)
        if kind is ApproverKind.OWNER:
            return list(input.owners)
        assert group is not None
        return await self._graph.group_member_employee_ids(group)

    async def _is_active(self, employee_id: str) -> bool:
        state = await self._identity(employee_id)
        return state is not None and state.stage is LifecycleStage.ACTIVE

    @activity.defn(name=AccessActivityNames.NOTIFY)
    async def notify(self, input: NotifyInput) -> NotifyResult:
        result = NotifyResult()
        for employee_id in input.to_employee_ids:
            try:
                mailbox = await self._graph.find_mailbox(EmployeeIdInput(employee_id=employee_id))
            except ApplicationError as err:
                if err.type != "ManagerNotProvisioned":
                    raise
                result.unreachable.append(employee_id)
                continue
            # A retry after a partial send mails the earlier recipients again (Graph's sendMail
            # has no idempotency key); a repeated notice is better than a lost one.
            await self._graph.send_mail(
                SendMailInput(
                    sender=input.sender,
                    to_user_id=mailbox.user_id,
                    to_address=mailbox.address,
                    subject=input.subject,
                    html_body=input.html_body,
                )
            )
            result.sent_to.append(employee_id)
        return result
