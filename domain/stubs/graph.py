"""Microsoft Graph activities (implemented by activities/graph*.py)."""

from __future__ import annotations

from temporalio import activity

from domain.provisioning import (
    ActivityNames,
    EmployeeIdInput,
    EnsureGraphUserInput,
    GraphUserRef,
    GroupMembershipInput,
    GroupMembershipResult,
    IssueTapToManagerInput,
    Mailbox,
    SendMailInput,
    SetAccountEnabledInput,
    SetManagerInput,
    SetManagerResult,
    TapIssued,
    UserIdInput,
)

__all__ = [
    "delete_user",
    "ensure_group_memberships",
    "ensure_user",
    "find_mailbox",
    "issue_temporary_access_pass_to_manager",
    "revoke_sign_in_sessions",
    "send_mail",
    "set_account_enabled",
    "set_manager",
]


@activity.defn(name=ActivityNames.GRAPH_ENSURE_USER)
async def ensure_user(input: EnsureGraphUserInput) -> GraphUserRef:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_SET_MANAGER)
async def set_manager(input: SetManagerInput) -> SetManagerResult:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS)
async def ensure_group_memberships(input: GroupMembershipInput) -> GroupMembershipResult:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
async def set_account_enabled(input: SetAccountEnabledInput) -> None:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_ISSUE_TAP_TO_MANAGER)
async def issue_temporary_access_pass_to_manager(input: IssueTapToManagerInput) -> TapIssued:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_SEND_MAIL)
async def send_mail(input: SendMailInput) -> None:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS)
async def revoke_sign_in_sessions(input: UserIdInput) -> None:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_DELETE_USER)
async def delete_user(input: UserIdInput) -> None:
    raise NotImplementedError


@activity.defn(name=ActivityNames.GRAPH_FIND_MAILBOX)
async def find_mailbox(input: EmployeeIdInput) -> Mailbox:
    raise NotImplementedError
