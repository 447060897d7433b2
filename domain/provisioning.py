"""Typed inputs and results of the provisioning activities.

Workflows import these models (never the activity modules, which pull in msgraph and httpx), and call
activities by the names below, so the workflow sandbox stays free of I/O libraries (docs/architecture.md, rule 1).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from domain.lifecycle.events import WorkerRecord


class ActivityNames:
    """Registered activity names: one constant per activity, shared by workflows and workers."""

    RESOLVE_JOINER_PLAN = "policy.resolve_joiner_plan"
    RESOLVE_LEAVER_PLAN = "policy.resolve_leaver_plan"
    RESOLVE_MOVER_PLAN = "policy.resolve_mover_plan"

    GRAPH_ENSURE_USER = "graph.ensure_user"
    GRAPH_SET_MANAGER = "graph.set_manager"
    GRAPH_ENSURE_GROUP_MEMBERSHIPS = "graph.ensure_group_memberships"
    GRAPH_SET_ACCOUNT_ENABLED = "graph.set_account_enabled"
    GRAPH_ISSUE_TAP_TO_MANAGER = "graph.issue_temporary_access_pass_to_manager"
    GRAPH_SEND_MAIL = "graph.send_mail"
    GRAPH_REVOKE_SIGN_IN_SESSIONS = "graph.revoke_sign_in_sessions"
    GRAPH_DELETE_USER = "graph.delete_user"
    GRAPH_FIND_MAILBOX = "graph.find_mailbox"

    SCIM_ENSURE_USER = "scim.ensure_user"
    SCIM_SET_ACTIVE = "scim.set_active"
    SCIM_DELETE_USER = "scim.delete_user"

    # The orphan sweep (inputs and results in domain/detective/sweep.py).
    SWEEP_LIST_GRAPH_ACCOUNTS = "sweep.list_graph_accounts"
    SWEEP_LIST_SCIM_ACCOUNTS = "sweep.list_scim_accounts"
    SWEEP_LIST_MANAGED_IDENTITIES = "sweep.list_managed_identities"
    SWEEP_DISABLE_GRAPH_ACCOUNT = "sweep.disable_graph_account"
    SWEEP_DEACTIVATE_SCIM_ACCOUNT = "sweep.deactivate_scim_account"


# ---- policy -------------------------------------------------------------------------------------


class JoinerPlanInput(BaseModel):
    worker: WorkerRecord


class GrantedGroup(BaseModel):
    """A Graph group the policy grants, by its display name, with the rule that granted it."""

    group: str
    rule: str


class GrantedApp(BaseModel):
    """A SCIM target application account (and app roles, as SCIM groups) the policy grants."""

    app: str
    roles: list[str] = Field(default_factory=list)
    rule: str


class JoinerPlan(BaseModel):
    """What the policy says a joiner with these attributes gets, and when pre-hire work starts."""

    upn_domain: str
    pre_hire_days: int
    groups: list[GrantedGroup] = Field(default_factory=list)
    apps: list[GrantedApp] = Field(default_factory=list)
    mail_sender: str
    tap_lifetime_minutes: int = 480


class LeaverPlanInput(BaseModel):
    employee_id: str


class LeaverPlan(BaseModel):
    """What the policy says about leavers: how long accounts are kept, who notifications come from."""

    retention_days: int
    mail_sender: str


class MoverPlanInput(BaseModel):
    worker: WorkerRecord


class MoverPlan(BaseModel):
    """What the policy grants a worker with the new attributes, and each rule's grace period."""

    upn_domain: str
    groups: list[GrantedGroup] = Field(default_factory=list)
    apps: list[GrantedApp] = Field(default_factory=list)
    # Rule name -> how long access that rule granted stays after a move takes it away.
    remove_after: dict[str, timedelta] = Field(default_factory=dict)
    mail_sender: str


# ---- Graph --------------------------------------------------------------------------------------


class EnsureGraphUserInput(BaseModel):
    worker: WorkerRecord
    upn_domain: str
    account_enabled: bool
    hire_date: datetime


class GraphUserRef(BaseModel):
    user_id: str
    user_principal_name: str
    created: bool


class SetManagerInput(BaseModel):
    user_id: str
    manager_employee_id: str


class SetManagerResult(BaseModel):
    manager_user_id: str


class GroupMembershipInput(BaseModel):
    """Make `user_id` a member (present=True) or not a member (present=False) of each group."""

    user_id: str
    groups: list[str]
    present: bool = True


class GroupMembershipResult(BaseModel):
    group_ids: dict[str, str] = Field(default_factory=dict)
    changed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)


class SetAccountEnabledInput(BaseModel):
    user_id: str
    enabled: bool


class IssueTapToManagerInput(BaseModel):
    """Create a Temporary Access Pass for the new user and mail it to their manager.

    The pass itself never leaves the activity: it is not part of any result, log or history.
    """

    user_id: str
    user_display_name: str
    manager_employee_id: str
    start_at: datetime
    lifetime_minutes: int
    mail_sender: str


class TapIssued(BaseModel):
    tap_method_id: str
    mailed_to_user_id: str
    start_at: datetime
    lifetime_minutes: int


class SendMailInput(BaseModel):
    sender: str
    to_user_id: str
    # The recipient's address when the caller knows it (saves a lookup); else read from Graph.
    to_address: str | None = None
    subject: str
    html_body: str


class UserIdInput(BaseModel):
    user_id: str


class EmployeeIdInput(BaseModel):
    employee_id: str


class Mailbox(BaseModel):
    """Where to reach a person who has a Graph account (found by employeeId)."""

    user_id: str
    address: str


# ---- SCIM ---------------------------------------------------------------------------------------


class EnsureScimUserInput(BaseModel):
    app: str
    worker: WorkerRecord
    user_name: str
    active: bool
    roles: list[str] = Field(default_factory=list)
    # Roles Tenure granted before that the record no longer implies (a mover keeping the app).
    remove_roles: list[str] = Field(default_factory=list)


class ScimUserRef(BaseModel):
    app: str
    scim_id: str
    created: bool


class SetScimActiveInput(BaseModel):
    app: str
    external_id: str
    active: bool


class ScimUserKey(BaseModel):
    app: str
    external_id: str
