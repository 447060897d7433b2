"""An in-memory stand-in for Graph and SCIM activities, for workflow tests on the time-skipping server.

It registers under the real activity names and records each call with the (skipped) server time at which
it was scheduled, so tests can assert *when* the workflow acted, not only *what* it did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.audit import AccessChange, AuditActivityNames, RecordAccessChangesInput
from domain.provisioning import (
    ActivityNames,
    EmployeeIdInput,
    EnsureGraphUserInput,
    EnsureScimUserInput,
    GraphUserRef,
    GroupMembershipInput,
    GroupMembershipResult,
    IssueTapToManagerInput,
    Mailbox,
    ScimUserKey,
    ScimUserRef,
    SendMailInput,
    SetAccountEnabledInput,
    SetManagerInput,
    SetManagerResult,
    SetScimActiveInput,
    TapIssued,
    UserIdInput,
)


@dataclass
class Call:
    name: str
    at: datetime
    input: Any


@dataclass
class FakeDirectory:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # employee id -> user
    memberships: set[tuple[str, str]] = field(default_factory=set)  # (group, employee id)
    app_accounts: dict[tuple[str, str], bool] = field(
        default_factory=dict
    )  # (app, employee id) -> active
    calls: list[Call] = field(default_factory=list)
    app_roles: set[tuple[str, str, str]] = field(default_factory=set)  # (app, employee id, role)
    access_changes: dict[str, AccessChange] = field(default_factory=dict)  # by change id
    # Every Graph user id ever created, in order: a rehire must not add one, a re-hire after
    # deletion must.
    created_user_ids: list[str] = field(default_factory=list)
    # Employee ids whose ensure_user call, once recorded, waits for the event: a slow Graph call
    # that lets a test act while a transition is in the middle of it.
    slow_users: dict[str, asyncio.Event] = field(default_factory=dict)

    def _record(self, name: str, input: Any) -> None:
        self.calls.append(Call(name, activity.info().current_attempt_scheduled_time, input))

    def calls_named(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def _employee_of(self, user_id: str) -> str:
        return next(e for e, u in self.users.items() if u["id"] == user_id)

    @activity.defn(name=ActivityNames.GRAPH_ENSURE_USER)
    async def ensure_user(self, input: EnsureGraphUserInput) -> GraphUserRef:
        self._record(ActivityNames.GRAPH_ENSURE_USER, input)
        emp = input.worker.employee_id
        if (answered := self.slow_users.get(emp)) is not None:
            await answered.wait()
        created = emp not in self.users
        if created:
            # A fresh object id each time an account is created, as Graph does.
            earlier = sum(1 for u in self.created_user_ids if u.startswith(f"uid-{emp}"))
            user_id = f"uid-{emp}" + (f"-{earlier + 1}" if earlier else "")
            self.users[emp] = {"id": user_id, "upn": f"{emp.lower()}@{input.upn_domain}"}
            self.created_user_ids.append(user_id)
        user = self.users[emp]
        user["enabled"] = input.account_enabled
        user["department"] = input.worker.department
        user["job_title"] = input.worker.job_title
        user["location"] = input.worker.location
        return GraphUserRef(user_id=user["id"], user_principal_name=user["upn"], created=created)

    @activity.defn(name=ActivityNames.GRAPH_SET_MANAGER)
    async def set_manager(self, input: SetManagerInput) -> SetManagerResult:
        self._record(ActivityNames.GRAPH_SET_MANAGER, input)
        self.users[self._employee_of(input.user_id)]["manager"] = input.manager_employee_id
        return SetManagerResult(manager_user_id=f"uid-{input.manager_employee_id}")

    @activity.defn(name=ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS)
    async def ensure_group_memberships(self, input: GroupMembershipInput) -> GroupMembershipResult:
        self._record(ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS, input)
        emp = self._employee_of(input.user_id)
        for group in input.groups:
            (self.memberships.add if input.present else self.memberships.discard)((group, emp))
        return GroupMembershipResult(
            group_ids={g: f"gid-{g}" for g in input.groups}, changed=input.groups
        )

    @activity.defn(name=ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
    async def set_account_enabled(self, input: SetAccountEnabledInput) -> None:
        self._record(ActivityNames.GRAPH_SET_ACCOUNT_ENABLED, input)
        self.users[self._employee_of(input.user_id)]["enabled"] = input.enabled

    @activity.defn(name=ActivityNames.GRAPH_ISSUE_TAP_TO_MANAGER)
    async def issue_tap(self, input: IssueTapToManagerInput) -> TapIssued:
        self._record(ActivityNames.GRAPH_ISSUE_TAP_TO_MANAGER, input)
        return TapIssued(
            tap_method_id="tap-1",
            mailed_to_user_id=f"uid-{input.manager_employee_id}",
            start_at=input.start_at,
            lifetime_minutes=input.lifetime_minutes,
        )

    @activity.defn(name=ActivityNames.GRAPH_SEND_MAIL)
    async def send_mail(self, input: SendMailInput) -> None:
        self._record(ActivityNames.GRAPH_SEND_MAIL, input)

    @activity.defn(name=ActivityNames.SCIM_ENSURE_USER)
    async def scim_ensure_user(self, input: EnsureScimUserInput) -> ScimUserRef:
        self._record(ActivityNames.SCIM_ENSURE_USER, input)
        key = (input.app, input.worker.employee_id)
        created = key not in self.app_accounts
        self.app_accounts[key] = input.active
        for role in input.roles:
            self.app_roles.add((input.app, key[1], role))
        for role in input.remove_roles:
            self.app_roles.discard((input.app, key[1], role))
        return ScimUserRef(app=input.app, scim_id=f"scim-{key[1]}", created=created)

    @activity.defn(name=ActivityNames.SCIM_SET_ACTIVE)
    async def scim_set_active(self, input: SetScimActiveInput) -> None:
        self._record(ActivityNames.SCIM_SET_ACTIVE, input)
        key = (input.app, input.external_id)
        if key not in self.app_accounts:  # as the real activity: a missing user is an error
            raise ApplicationError(
                f"no SCIM user {key}", type="ScimUserNotFound", non_retryable=True
            )
        self.app_accounts[key] = input.active

    @activity.defn(name=ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS)
    async def revoke_sign_in_sessions(self, input: UserIdInput) -> None:
        self._record(ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS, input)

    @activity.defn(name=ActivityNames.GRAPH_DELETE_USER)
    async def delete_user(self, input: UserIdInput) -> None:
        self._record(ActivityNames.GRAPH_DELETE_USER, input)
        gone = [e for e, u in self.users.items() if u["id"] == input.user_id]
        for emp in gone:  # none: already gone, which is success
            del self.users[emp]
            self.memberships = {(g, e) for g, e in self.memberships if e != emp}

    @activity.defn(name=ActivityNames.GRAPH_FIND_MAILBOX)
    async def find_mailbox(self, input: EmployeeIdInput) -> Mailbox:
        self._record(ActivityNames.GRAPH_FIND_MAILBOX, input)
        return Mailbox(
            user_id=f"uid-{input.employee_id}", address=f"{input.employee_id.lower()}@example.com"
        )

    @activity.defn(name=ActivityNames.SCIM_DELETE_USER)
    async def scim_delete_user(self, input: ScimUserKey) -> None:
        self._record(ActivityNames.SCIM_DELETE_USER, input)
        self.app_accounts.pop((input.app, input.external_id), None)

    async def group_member_employee_ids(self, name: str) -> list[str]:
        """Approvers named by group (not an activity: the access activities call it)."""
        return sorted(e for g, e in self.memberships if g == name)

    def mails_to(self, employee_id: str) -> list[Call]:
        return [
            c
            for c in self.calls_named(ActivityNames.GRAPH_SEND_MAIL)
            if c.input.to_user_id == f"uid-{employee_id}"
        ]

    @activity.defn(name=AuditActivityNames.RECORD_ACCESS_CHANGES)
    async def record_access_changes(self, input: RecordAccessChangesInput) -> None:
        """The access record, in memory: the first copy of each change id wins, as in the store."""
        for change in input.changes:
            self.access_changes.setdefault(change.change_id, change)

    def activities(self) -> list[Any]:
        return [
            self.record_access_changes,
            self.ensure_user,
            self.set_manager,
            self.ensure_group_memberships,
            self.set_account_enabled,
            self.issue_tap,
            self.send_mail,
            self.scim_ensure_user,
            self.scim_set_active,
            self.revoke_sign_in_sessions,
            self.delete_user,
            self.find_mailbox,
            self.scim_delete_user,
        ]
