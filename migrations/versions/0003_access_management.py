"""managing account access: who invited whom, reviews, audit by account

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch mode): on SQLite a batch rebuild of audit_events
    # would drop the triggers that keep it append-only.
    op.add_column("invitation_pins", sa.Column("invitee_name", sa.String(length=200), nullable=True))
    op.add_column("invitation_pins", sa.Column("invitee_email", sa.String(length=254), nullable=True))
    op.add_column("invitation_pins", sa.Column("cancelled_at", sa.DateTime(), nullable=True))
    op.add_column("grants", sa.Column("revoked_by_user_id", sa.Integer(), nullable=True))
    op.add_column("accounts", sa.Column("access_reviewed_at", sa.DateTime(), nullable=True))
    op.add_column("accounts", sa.Column("access_reviewed_by_user_id", sa.Integer(), nullable=True))
    op.add_column("audit_events", sa.Column("account_id", sa.Integer(), nullable=True))
    op.create_index("ix_audit_events_account_id", "audit_events", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_account_id", table_name="audit_events")
    for table, column in (
        ("audit_events", "account_id"),
        ("accounts", "access_reviewed_by_user_id"),
        ("accounts", "access_reviewed_at"),
        ("grants", "revoked_by_user_id"),
        ("invitation_pins", "cancelled_at"),
        ("invitation_pins", "invitee_email"),
        ("invitation_pins", "invitee_name"),
    ):
        op.drop_column(table, column)
