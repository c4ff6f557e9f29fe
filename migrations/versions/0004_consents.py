"""representatives by consent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("representative_name", sa.String(length=200), nullable=False),
        sa.Column("representative_email", sa.String(length=254), nullable=False),
        sa.Column("firm_name", sa.String(length=200), nullable=True),
        sa.Column("permissions", sa.String(length=300), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("declared_by_user_id", sa.Integer(), nullable=True),
        sa.Column("declared_at", sa.DateTime(), nullable=True),
        sa.Column("requested_by_user_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consents_account_id", "consents", ["account_id"])
    op.create_table(
        "consent_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_name", sa.String(length=200), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("uploaded_by_user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_documents_consent_id", "consent_documents", ["consent_id"])
    op.create_index("ix_consents_status", "consents", ["status"])
    op.add_column("invitation_pins", sa.Column("consent_id", sa.Integer(), nullable=True))
    op.add_column("grants", sa.Column("consent_id", sa.Integer(), nullable=True))
    op.add_column("grants", sa.Column("valid_from", sa.Date(), nullable=True))
    op.add_column("grants", sa.Column("valid_until", sa.Date(), nullable=True))
    op.create_index("ix_grants_consent_id", "grants", ["consent_id"])


def downgrade() -> None:
    op.drop_index("ix_grants_consent_id", table_name="grants")
    for table, column in (
        ("grants", "valid_until"),
        ("grants", "valid_from"),
        ("grants", "consent_id"),
        ("invitation_pins", "consent_id"),
    ):
        op.drop_column(table, column)
    op.drop_index("ix_consent_documents_consent_id", table_name="consent_documents")
    op.drop_table("consent_documents")
    op.drop_index("ix_consents_status", table_name="consents")
    op.drop_index("ix_consents_account_id", table_name="consents")
    op.drop_table("consents")
