"""Privileged access: security incidents and their steps, PIM alerts, SoD violations.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Spelled out here, not imported: a revision is history, audit/schema.py moves on.
ORDERED_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
TIMESTAMP = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("incident_id", ORDERED_TEXT, primary_key=True),
        sa.Column("employee_id", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("last_step", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("view", sa.Text, nullable=False),
    )
    op.create_index("incidents_employee", "incidents", ["employee_id", "received_at"])
    op.create_index("incidents_received", "incidents", ["received_at"])
    op.create_table(
        "incident_steps",
        sa.Column("incident_id", ORDERED_TEXT, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "pim_alerts",
        sa.Column("alert_id", ORDERED_TEXT, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("role_id", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("first_raised_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("times_raised", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("alert", sa.Text, nullable=False),
    )
    op.create_index("pim_alerts_open", "pim_alerts", ["resolved_at", "kind"])
    op.create_table(
        "sod_violations",
        sa.Column("violation_id", ORDERED_TEXT, primary_key=True),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("employee_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detected_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("exception_until", TIMESTAMP, nullable=True),
        sa.Column("violation", sa.Text, nullable=False),
    )
    op.create_index("sod_violations_status", "sod_violations", ["status", "detected_at"])
    op.create_index("sod_violations_employee", "sod_violations", ["employee_id", "detected_at"])


def downgrade() -> None:
    for table in ("sod_violations", "pim_alerts", "incident_steps", "incidents"):
        op.drop_table(table)
