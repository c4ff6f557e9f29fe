"""a taxpayer's own message names its topic; a representative's request records its reminder (issue 20)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

A thread a taxpayer starts ("write to us") carries the topic they chose, which
the staff's messages queue shows; threads the agency starts have none. A
representative's request to an account records when its managers were reminded
that it is about to lapse, so the nightly run reminds them once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message_threads", sa.Column("topic", sa.String(length=20), nullable=True))
    op.add_column("consents", sa.Column("reminded_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("consents", "reminded_at")
    op.drop_column("message_threads", "topic")
