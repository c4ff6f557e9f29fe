"""filing and requests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_contents",
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("stored_name"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_messages_account_id", "messages", ["account_id"])
    op.create_index("ix_messages_user_id", "messages", ["user_id"])
    op.create_table(
        "program_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_code", sa.String(length=10), nullable=False),
        sa.Column("rate_key", sa.String(length=40), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("value", sa.String(length=24), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_code"],
            ["programs.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program_code", "rate_key", "effective_from"),
    )
    op.create_index("ix_program_rates_program_code", "program_rates", ["program_code"])
    op.create_table(
        "program_settings",
        sa.Column("program_code", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_code"],
            ["programs.code"],
        ),
        sa.PrimaryKeyConstraint("program_code", "key"),
    )
    op.create_table(
        "direct_deposits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("institution", sa.String(length=3), nullable=False),
        sa.Column("transit", sa.String(length=5), nullable=False),
        sa.Column("bank_account", sa.String(length=12), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("set_by_user_id", sa.Integer(), nullable=False),
        sa.Column("service_request_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_direct_deposits_account_id", "direct_deposits", ["account_id"])
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("service_request_id", sa.Integer(), nullable=True),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("stored_name", sa.String(length=64), nullable=False),
        sa.Column("uploaded_name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage", sa.String(length=12), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("uploaded_by_user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stored_name"),
    )
    op.create_index("ix_documents_account_id", "documents", ["account_id"])
    op.create_index("ix_documents_draft_id", "documents", ["draft_id"])
    op.create_index("ix_documents_service_request_id", "documents", ["service_request_id"])
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=40), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("token", sa.String(length=43), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_request_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index("ix_drafts_account_id", "drafts", ["account_id"])
    op.create_index("ix_drafts_owner_kind", "drafts", ["account_id", "user_id", "kind", "subject"])
    op.create_index("ix_drafts_user_id", "drafts", ["user_id"])
    op.create_table(
        "licences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("licence_number", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("licence_number"),
    )
    op.create_index("ix_licences_account_id", "licences", ["account_id"])
    op.create_table(
        "payment_arrangements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("service_request_id", sa.Integer(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("instalment_cents", sa.BigInteger(), nullable=False),
        sa.Column("frequency", sa.String(length=10), nullable=False),
        sa.Column("first_due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payment_arrangements_account_id", "payment_arrangements", ["account_id"])
    op.create_index("ix_payment_arrangements_service_request_id", "payment_arrangements", ["service_request_id"])
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_by_user_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("tax_return_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_service_requests_account_id", "service_requests", ["account_id"])
    op.create_index("ix_service_requests_kind", "service_requests", ["kind"])
    op.create_index("ix_service_requests_status", "service_requests", ["status"])
    op.create_table(
        "instalments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("arrangement_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["arrangement_id"],
            ["payment_arrangements.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_instalments_arrangement_id", "instalments", ["arrangement_id"])
    # Plain ADD COLUMN, not batch mode: batch mode rebuilds a SQLite table and
    # would drop its triggers.
    op.add_column("accounts", sa.Column("profile_version", sa.Integer(), nullable=False, server_default="1"))

    op.add_column("tax_returns", sa.Column("figures", sa.Text(), nullable=True))
    op.add_column("tax_returns", sa.Column("amount_cents", sa.BigInteger(), nullable=True))
    op.add_column("tax_returns", sa.Column("filed_by_user_id", sa.Integer(), nullable=True))
    op.add_column("tax_returns", sa.Column("service_request_id", sa.Integer(), nullable=True))
    op.add_column("tax_returns", sa.Column("amends_return_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    for column in ("amends_return_id", "service_request_id", "filed_by_user_id", "amount_cents", "figures"):
        op.drop_column("tax_returns", column)

    op.drop_column("accounts", "profile_version")

    op.drop_index("ix_instalments_arrangement_id", table_name="instalments")
    op.drop_table("instalments")
    op.drop_index("ix_service_requests_status", table_name="service_requests")
    op.drop_index("ix_service_requests_kind", table_name="service_requests")
    op.drop_index("ix_service_requests_account_id", table_name="service_requests")
    op.drop_table("service_requests")
    op.drop_index("ix_payment_arrangements_service_request_id", table_name="payment_arrangements")
    op.drop_index("ix_payment_arrangements_account_id", table_name="payment_arrangements")
    op.drop_table("payment_arrangements")
    op.drop_index("ix_licences_account_id", table_name="licences")
    op.drop_table("licences")
    op.drop_index("ix_drafts_user_id", table_name="drafts")
    op.drop_index("ix_drafts_owner_kind", table_name="drafts")
    op.drop_index("ix_drafts_account_id", table_name="drafts")
    op.drop_table("drafts")
    op.drop_index("ix_documents_service_request_id", table_name="documents")
    op.drop_index("ix_documents_draft_id", table_name="documents")
    op.drop_index("ix_documents_account_id", table_name="documents")
    op.drop_table("documents")
    op.drop_index("ix_direct_deposits_account_id", table_name="direct_deposits")
    op.drop_table("direct_deposits")
    op.drop_table("program_settings")
    op.drop_index("ix_program_rates_program_code", table_name="program_rates")
    op.drop_table("program_rates")
    op.drop_index("ix_messages_user_id", table_name="messages")
    op.drop_index("ix_messages_account_id", table_name="messages")
    op.drop_table("messages")
    op.drop_table("document_contents")
