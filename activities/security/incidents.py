"""Incident activities: find whom a SIEM's report names, suspend and restore them through their
identity entity, and keep the incident in the record.

A report names a person by employee id, UPN or Graph object id. A UPN or object id is looked up
in Graph (its `employeeId`); an employee id must belong to an identity Tenure manages.
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol

from kiota_abstractions.api_error import APIError
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.graph.directory import GraphDirectory
from activities.graph.errors import graph_call, status_of
from activities.graph.odata import segment
from audit.store import AccessRecordStore
from domain.access.request import RequestStatus
from domain.lifecycle.events import identity_workflow_id
from domain.lifecycle.identity import (
    IdentityContract,
    RestoreIdentityInput,
    RestoreIdentityResult,
    SuspendIdentityInput,
    SuspendIdentityResult,
)
from domain.pim.graph import DeactivateRoleInput, DeactivateRoleResult
from domain.pim.plan import resolved_role
from domain.policy.model import Policy
from domain.provisioning import SetAccountEnabledInput, UserIdInput
from domain.security.incident import (
    CutOffInput,
    CutOffResult,
    IncidentActivityNames,
    RecordIncidentInput,
    ResolvedPerson,
    ResolvePersonInput,
    RestorePersonInput,
    SecurityContacts,
    SuspendPersonInput,
)

_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class IncidentGraph(GraphDirectory):
    async def user_id_of(self, employee_id: str) -> str | None:
        found = await self._user_by_employee_id(employee_id, [])
        return found["id"] if found else None

    async def employee_id_of(self, key: str) -> str | None:
        """The employeeId of the user with this object id or UPN; None when there is none."""
        request = self._get(f"{self._root}/users/{segment(key)}?$select=id,employeeId")
        try:
            body = await self._send_for_json(request)
        except APIError as err:
            if status_of(err) == 404:
                return None
            with graph_call(f"look up user {key}"):
                raise
        return body.get("employeeId") or None


class AccountSwitches(Protocol):
    """The Graph side effects a cut-off uses (GraphActivities and PimGraphActivities have them:
    the same calls the leaver and the activations make)."""

    async def set_account_enabled(self, input: SetAccountEnabledInput) -> None: ...
    async def revoke_sign_in_sessions(self, input: UserIdInput) -> None: ...


class RoleSwitch(Protocol):
    async def deactivate_role(self, input: DeactivateRoleInput) -> DeactivateRoleResult: ...


class IncidentActivities:
    def __init__(
        self,
        temporal: Client,
        graph: IncidentGraph,
        policy: Policy,
        store: AccessRecordStore,
        accounts: AccountSwitches,
        roles: RoleSwitch,
    ) -> None:
        self._temporal = temporal
        self._graph = graph
        self._policy = policy
        self._store = store
        self._accounts = accounts
        self._roles = roles

    @activity.defn(name=IncidentActivityNames.RESOLVE_PERSON)
    async def resolve_person(self, input: ResolvePersonInput) -> ResolvedPerson:
        user = input.user.strip()
        if _OBJECT_ID.match(user) or "@" in user:
            how = "object id" if _OBJECT_ID.match(user) else "UPN"
            employee_id = await self._graph.employee_id_of(user)
            if employee_id is None:
                return ResolvedPerson(employee_id=None, how=f"no Graph user with {how} {user!r}")
        else:
            how, employee_id = "employee id", user
        if not await self._known(employee_id):
            return ResolvedPerson(
                employee_id=None, how=f"{employee_id!r} ({how}) is not a person Tenure manages"
            )
        return ResolvedPerson(employee_id=employee_id, how=how)

    async def _known(self, employee_id: str) -> bool:
        # Described by the server, not queried: a query waits for the identity's worker, which a
        # burst of hires may keep busy, and this is the first step of an emergency.
        handle = self._temporal.get_workflow_handle(identity_workflow_id(employee_id))
        try:
            await handle.describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    @activity.defn(name=IncidentActivityNames.CUT_OFF)
    async def cut_off(self, input: CutOffInput) -> CutOffResult:
        """Sign-in off, sessions revoked and the person's active roles removed, from Graph and
        the record alone. Each step is idempotent: a retry redoes what is already done."""
        user_id = await self._graph.user_id_of(input.employee_id)
        if user_id is None:
            return CutOffResult(graph_user_id=None)
        granted = await asyncio.to_thread(
            self._store.list_requests,
            employee_id=input.employee_id,
            status=RequestStatus.GRANTED.value,
            package_prefix="pim:",
            limit=100,
        )
        roles = [
            (v.request_id, resolved_role(self._policy, v.package_id.removeprefix("pim:")).target)
            for v in granted
            if v.beneficiary_id == input.employee_id
            and v.package_id.removeprefix("pim:") in self._policy.pim.roles
        ]
        reason = f"incident {input.incident_id}"
        await asyncio.gather(
            self._accounts.set_account_enabled(
                SetAccountEnabledInput(user_id=user_id, enabled=False)
            ),
            self._accounts.revoke_sign_in_sessions(UserIdInput(user_id=user_id)),
            *(
                self._roles.deactivate_role(
                    DeactivateRoleInput(principal_id=user_id, target=target, reason=reason)
                )
                for _, target in roles
            ),
        )
        return CutOffResult(graph_user_id=user_id, roles_removed=[run for run, _ in roles])

    @activity.defn(name=IncidentActivityNames.SUSPEND_IDENTITY)
    async def suspend_identity(self, input: SuspendPersonInput) -> SuspendIdentityResult:
        handle = self._temporal.get_workflow_handle(identity_workflow_id(input.employee_id))
        try:
            return await handle.execute_update(
                IdentityContract.UPDATE_SUSPEND,
                SuspendIdentityInput(incident_id=input.incident_id, at=input.at),
                result_type=SuspendIdentityResult,
            )
        except WorkflowUpdateFailedError as err:
            raise ApplicationError(
                str(err.cause or err), type="NotSuspendable", non_retryable=True
            ) from None

    @activity.defn(name=IncidentActivityNames.RESTORE_IDENTITY)
    async def restore_identity(self, input: RestorePersonInput) -> RestoreIdentityResult:
        handle = self._temporal.get_workflow_handle(identity_workflow_id(input.employee_id))
        return await handle.execute_update(
            IdentityContract.UPDATE_RESTORE,
            RestoreIdentityInput(incident_id=input.incident_id, by=input.by),
            result_type=RestoreIdentityResult,
        )

    @activity.defn(name=IncidentActivityNames.SECURITY_SETTINGS)
    async def security_settings(self) -> SecurityContacts:
        return SecurityContacts(
            contacts=self._policy.security.contacts,
            administrators=self._policy.access.administrators,
            mail_sender=self._policy.tenant.mail_sender,
        )

    @activity.defn(name=IncidentActivityNames.RECORD_INCIDENT)
    async def record_incident(self, input: RecordIncidentInput) -> None:
        # Off the event loop: a write that waits on the database lock must not hold up this
        # worker's other incidents (their cut-offs run as local activities on the same loop).
        await asyncio.to_thread(self._store.record_incident, input.view)
