"""Access-review campaigns: their progress, items, per-stage decisions and reviewers, refusals.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Spelled out here, not imported: a revision is history, audit/schema.py moves on.
ORDERED_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "review_campaigns",
        sa.Column("campaign_id", ORDERED_TEXT, primary_key=True),
        sa.Column("review_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("progress", sa.Text, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("review_campaigns_review", "review_campaigns", ["review_id", "started_at"])
    op.create_index("review_campaigns_started", "review_campaigns", ["started_at"])
    op.create_table(
        "review_items",
        sa.Column("campaign_id", ORDERED_TEXT, primary_key=True),
        sa.Column("item_id", ORDERED_TEXT, primary_key=True),
        sa.Column("holder_kind", sa.Text, nullable=False),
        sa.Column("holder_id", sa.Text, nullable=False),
        sa.Column("employee_id", ORDERED_TEXT, nullable=True),
        sa.Column("holder_name", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("recommendation", sa.Text, nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("item", sa.Text, nullable=False),
        sa.Column("final_stage", sa.Integer, nullable=True, autoincrement=False),
        sa.Column("final_outcome", sa.Text, nullable=True),
        sa.Column("final_decided_by", ORDERED_TEXT, nullable=True),
        sa.Column("final_justification", sa.Text, nullable=True),
        sa.Column("final_decided_at", TIMESTAMP, nullable=True),
        sa.Column("applied", sa.Text, nullable=False),
        sa.Column("applied_at", TIMESTAMP, nullable=True),
        sa.Column("apply_detail", sa.Text, nullable=False),
        sa.Column("apply_batch", sa.Integer, nullable=True, autoincrement=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # The item JSON is never filtered on: ANALYZE (which the bulk writes run) skips it.
        op.execute("ALTER TABLE review_items ALTER COLUMN item SET STATISTICS 0")
    op.create_index("review_items_employee", "review_items", ["campaign_id", "employee_id"])
    op.create_index("review_items_apply_batch", "review_items", ["campaign_id", "apply_batch"])
    op.create_table(
        "review_stage_items",
        sa.Column("campaign_id", ORDERED_TEXT, primary_key=True),
        sa.Column("stage", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("item_id", ORDERED_TEXT, primary_key=True),
        sa.Column("batch", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("reviewers", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=True),
        sa.Column("decided_by", ORDERED_TEXT, nullable=True),
        sa.Column("justification", sa.Text, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
    )
    op.create_index(
        "review_stage_items_batch", "review_stage_items", ["campaign_id", "stage", "batch"]
    )
    op.create_index(
        "review_stage_items_item", "review_stage_items", ["campaign_id", "item_id", "stage"]
    )
    op.create_table(
        "review_reviewers",
        sa.Column("campaign_id", ORDERED_TEXT, primary_key=True),
        sa.Column("stage", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("reviewer_id", ORDERED_TEXT, primary_key=True),
        sa.Column("item_id", ORDERED_TEXT, primary_key=True),
        sa.Column("batch", sa.Integer, nullable=False, autoincrement=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "review_refusals",
        sa.Column("campaign_id", ORDERED_TEXT, primary_key=True),
        sa.Column("at", TIMESTAMP, primary_key=True),
        sa.Column("actor_id", ORDERED_TEXT, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("item_ids", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    for table in (
        "review_refusals",
        "review_reviewers",
        "review_stage_items",
        "review_items",
        "review_campaigns",
    ):
        op.drop_table(table)
