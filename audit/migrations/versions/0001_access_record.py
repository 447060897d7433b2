"""The access record: requests, their story lines, who must decide, access changes.

The same tables as schema version 1 of the releases before Alembic.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Spelled out here, not imported: a revision is history, audit/schema.py moves on.
ORDERED_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("request_id", ORDERED_TEXT, primary_key=True),
        sa.Column("package_id", sa.Text, nullable=False),
        sa.Column("beneficiary_id", sa.Text, nullable=False),
        sa.Column("requester_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("submitted_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("view", sa.Text, nullable=False),
    )
    op.create_index("requests_beneficiary", "requests", ["beneficiary_id", "submitted_at"])
    op.create_index("requests_requester", "requests", ["requester_id", "submitted_at"])
    op.create_index("requests_status", "requests", ["status", "submitted_at"])
    op.create_index("requests_submitted", "requests", ["submitted_at"])
    op.create_table(
        "story_lines",
        sa.Column("request_id", ORDERED_TEXT, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "waiting_approvers",
        sa.Column("request_id", ORDERED_TEXT, primary_key=True),
        sa.Column("employee_id", sa.Text, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_index("waiting_approvers_employee", "waiting_approvers", ["employee_id"])
    op.create_table(
        "access_changes",
        sa.Column("change_id", ORDERED_TEXT, primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("employee_id", sa.Text, nullable=False),
        sa.Column("change", sa.Text, nullable=False),
    )
    op.create_index("access_changes_at", "access_changes", ["at", "change_id"])
    op.create_index("access_changes_employee", "access_changes", ["employee_id", "at", "change_id"])


def downgrade() -> None:
    for table in ("access_changes", "waiting_approvers", "story_lines", "requests"):
        op.drop_table(table)
