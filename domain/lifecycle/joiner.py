"""The joiner transition's contract: its input, result and progress."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.lifecycle.events import WorkerRecord
from domain.provisioning import GrantedApp, GrantedGroup


class JoinerContract:
    WORKFLOW = "JoinerWorkflow"
    QUERY_PROGRESS = "progress"


def joiner_workflow_id(employee_id: str, event_id: str) -> str:
    return f"joiner-{employee_id}-{event_id}"


class JoinerInput(BaseModel):
    employee_id: str
    event_id: str
    worker: WorkerRecord
    start_at: datetime
    # The identity left earlier and its accounts still exist: they are re-enabled, not created.
    rehire: bool = False
    # A rehire's app accounts from the earlier employment (a withdrawn rehire keeps them disabled
    # and deletes only the accounts made for the rehire).
    existing_apps: list[str] = Field(default_factory=list)
    # The incident holding the person (a rehire while suspended): the account is set up but
    # sign-in stays off; the incident's restore turns it on.
    sign_in_held_by: str | None = None


class JoinerProgress(BaseModel):
    phase: str = "planning"
    pre_hire_at: datetime | None = None
    start_at: datetime | None = None
    user_id: str | None = None
    user_principal_name: str | None = None
    done: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class JoinerResult(BaseModel):
    user_id: str
    user_principal_name: str
    groups: list[GrantedGroup]
    apps: list[GrantedApp]
    enabled_at: datetime
    tap_mailed_to: str | None = None
    warnings: list[str] = Field(default_factory=list)
