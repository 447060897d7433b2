"""What a campaign reviews: one item per holder and resource, as snapshotted when it starts, and
what happens to it (decisions per stage, the final outcome, what was applied)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class HolderKind(StrEnum):
    USER = "user"
    SERVICE_PRINCIPAL = "service_principal"  # a workload identity


class Recommended(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    NONE = "none"  # no recommendation configured


class ItemDecision(StrEnum):
    """What a reviewer can say about an item."""

    APPROVE = "approve"
    DENY = "deny"
    DONT_KNOW = "dont_know"


class Outcome(StrEnum):
    """What an item came to: in a stage, and finally."""

    APPROVED = "approved"
    DENIED = "denied"
    DONT_KNOW = "dont_know"
    NOT_REVIEWED = "not_reviewed"  # nobody decided and the rule keeps it
    LEFT = "left"  # the holder left during the campaign: nothing to apply


class ApplyState(StrEnum):
    """What became of an item's removal."""

    PENDING = "pending"  # denied, not applied yet
    REMOVED = "removed"
    KEPT_BY_OTHER_GRANT = "kept_by_other_grant"  # the denied grant ended; another still holds it
    NOT_APPLIED = (
        "not_applied"  # see the reason: protected, capped, aborted, left, dry run, birthright
    )
    FAILED = "failed"
    NOTHING = "nothing"  # not denied: nothing to apply


class ReviewItem(BaseModel):
    """One holder's hold on one resource when the campaign started."""

    item_id: str  # stable within a campaign: holder object id + resource key
    holder_kind: HolderKind
    holder_id: str  # Graph object id of the user or service principal
    employee_id: str | None = None  # users Tenure knows; reviewers and own-access checks use it
    holder_name: str  # UPN or service principal display name
    manager_id: str | None = None  # employee id of the holder's manager
    employment_type: str = ""
    department: str = ""
    user_type: str = ""  # Member | Guest
    resource: str  # ledger key: group:X, app:X, app:X:role, sp:<appId>:<role>, package:<id>
    resource_name: str
    resource_id: str  # Graph group id, SCIM app name, resource SP id, request id
    assignment_id: str | None = None  # SCIM account id, appRoleAssignment id
    scope: str  # the ScopeKind that found it
    # Why the holder has it, as the holdings ledger says ("birthright rule finance", "package
    # accounts-payable (ar-...)"); empty when Tenure did not grant it (held outside Tenure).
    grants: list[str] = Field(default_factory=list)
    request_ids: list[str] = Field(default_factory=list)  # packages granting it: revoked on denial
    owners: list[str] = Field(default_factory=list)  # the resource's owners (employee ids)
    last_sign_in: datetime | None = None
    recommendation: Recommended = Recommended.NONE
    recommendation_reason: str = ""
    protected: bool = False  # named under apply.protected: never removed


class StageDecision(BaseModel):
    """One item's outcome in one stage, as the record keeps it: who decided, or the rule that did."""

    item_id: str
    outcome: Outcome
    decided_by: str  # an employee id, or "rule: ..." when nobody did
    justification: str = ""
    decided_at: datetime
    stage: int | None = None  # which stage (from 0), where a list spans several


class ReviewerItem(BaseModel):
    """An item as a batch workflow holds it during one stage: enough to validate decisions and
    decide what silence means, nothing more (the record holds the rest)."""

    item_id: str
    holder_employee_id: str | None = None
    holder_name: str = ""
    resource: str = ""
    reviewers: list[str]
    recommendation: Recommended = Recommended.NONE
    outcome: Outcome | None = None  # set once decided (or closed)
    decided_by: str | None = None
    justification: str = ""
    decided_at: datetime | None = None
    # What the stages before this one came to, in order: a later stage sees earlier decisions.
    earlier: list[StageDecision] = Field(default_factory=list)
    # Denied and handed over to be removed as decided (apply.when decided): no longer changeable.
    locked: bool = False


class ReportRow(BaseModel):
    """One line of a campaign's report (CSV column order is this field order)."""

    campaign_id: str
    item_id: str
    holder_kind: str
    holder: str
    employee_id: str = ""
    resource: str
    grants: str = ""
    recommendation: str
    recommendation_reason: str
    stage: str  # the stage whose outcome is final
    outcome: str
    decided_by: str  # a person's employee id, or the rule, always named
    justification: str = ""
    applied: str  # ApplyState
    applied_at: datetime | None = None
    apply_detail: str = ""  # why not, or what was done
    stages: list[StageDecision] = Field(default_factory=list)  # every stage, in order
