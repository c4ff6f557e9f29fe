"""each ledger entry its own reference; the request it came from as a link (issue 20)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Assessments and waiver credits posted their entries under the request's
reference (SR-…), so an assessment, its penalty and its interest all had the
same one. From now on each entry gets its own (domain.ledger.new_reference) and
the request is kept in `request_reference`. Entries already posted keep their
reference (the ledger is append-only); those whose reference is a request's are
linked to it here, with the triggers dropped for the fill and made again in the
same transaction, as 0008 does for the audit log.
"""

import sqlalchemy as sa
from alembic import op

from migrations.append_only import drop_append_only, make_append_only

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: batch mode rebuilds a SQLite table and
    # would drop its triggers.
    op.add_column("ledger_entries", sa.Column("request_reference", sa.String(length=20), nullable=True))
    op.create_index("ix_ledger_request_reference", "ledger_entries", ["request_reference"])
    drop_append_only("ledger_entries")
    op.execute(
        "UPDATE ledger_entries SET request_reference = reference "
        "WHERE reference IN (SELECT reference FROM service_requests)"
    )
    make_append_only("ledger_entries")


def downgrade() -> None:
    op.drop_index("ix_ledger_request_reference", table_name="ledger_entries")
    op.drop_column("ledger_entries", "request_reference")
