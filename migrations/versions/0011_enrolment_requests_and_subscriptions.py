"""asking for an invitation letter online, and program updates by email (issue 20)

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07

Enrolment requests reach a new work queue ("enrolments"): a work item names its
request by a new column. Subscriptions (an address and a program, confirmed by
a link) and the updates published to them; an outbox email may carry a
List-Unsubscribe link.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("account_number", sa.String(length=10), nullable=True),
        sa.Column("legal_name", sa.String(length=200), nullable=True),
        sa.Column("business_number", sa.String(length=40), nullable=True),
        sa.Column("business_address", sa.Text(), nullable=True),
        sa.Column("requester_name", sa.String(length=200), nullable=False),
        sa.Column("requester_email", sa.String(length=254), nullable=False),
        sa.Column("requester_phone", sa.String(length=40), nullable=False),
        sa.Column("requester_role", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.add_column("work_items", sa.Column("enrolment_request_id", sa.Integer(), nullable=True))
    op.create_index("ix_work_items_enrolment_request_id", "work_items", ["enrolment_request_id"])
    op.add_column("outbox_emails", sa.Column("list_unsubscribe", sa.String(length=500), nullable=True))
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("program_code", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["program_code"], ["programs.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email", "program_code", name="uq_subscriptions_email_program"),
    )
    op.create_table(
        "program_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_code", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=150), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("published_by_user_id", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["program_code"], ["programs.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_program_updates_program_code", "program_updates", ["program_code"])


def downgrade() -> None:
    op.drop_index("ix_program_updates_program_code", table_name="program_updates")
    op.drop_table("program_updates")
    op.drop_table("subscriptions")
    with op.batch_alter_table("outbox_emails") as batch_op:
        batch_op.drop_column("list_unsubscribe")
    op.drop_index("ix_work_items_enrolment_request_id", table_name="work_items")
    with op.batch_alter_table("work_items") as batch_op:
        batch_op.drop_column("enrolment_request_id")
    op.drop_table("enrolment_requests")
