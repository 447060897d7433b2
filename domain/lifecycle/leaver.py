"""The leaver and retention transitions' contracts: inputs, results and progress."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class LeaverContract:
    WORKFLOW = "LeaverWorkflow"
    QUERY_PROGRESS = "progress"


class RetentionContract:
    WORKFLOW = "RetentionWorkflow"


def leaver_workflow_id(employee_id: str, event_id: str) -> str:
    return f"leaver-{employee_id}-{event_id}"


def retention_workflow_id(employee_id: str, event_id: str) -> str:
    # Named after the terminate whose retention period ended.
    return f"retention-{employee_id}-{event_id}"


class LeaverInput(BaseModel):
    employee_id: str
    event_id: str
    display_name: str
    user_id: str
    leave_at: datetime
    groups: list[str] = Field(default_factory=list)
    apps: list[str] = Field(default_factory=list)
    manager_id: str | None = None


class LeaverProgress(BaseModel):
    phase: str = "planning"
    done: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class LeaverResult(BaseModel):
    disabled_at: datetime
    sessions_revoked: bool
    groups_removed: list[str] = Field(default_factory=list)
    apps_deactivated: list[str] = Field(default_factory=list)
    manager_mailed: str | None = None  # the manager's employee id
    retention_days: int
    warnings: list[str] = Field(default_factory=list)


class RetentionInput(BaseModel):
    employee_id: str
    user_id: str | None
    apps: list[str] = Field(default_factory=list)


class RetentionResult(BaseModel):
    deleted_at: datetime
    graph_user_deleted: bool
    apps_deleted: list[str] = Field(default_factory=list)
