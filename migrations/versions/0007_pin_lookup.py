"""invitation PINs found by a keyed HMAC (issue 17, abuse case 6)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

PINs issued before this revision have no lookup value (their plain PIN is not
kept) and are still checked against their hash until they are used or expire.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invitation_pins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pin_lookup", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_invitation_pins_pin_lookup"), ["pin_lookup"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invitation_pins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_pins_pin_lookup"))
        batch_op.drop_column("pin_lookup")
