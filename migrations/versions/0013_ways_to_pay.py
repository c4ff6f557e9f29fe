"""ways to pay, per program (issue 20 item 5)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

The "Make a payment" page and the remittance voucher say how to pay: the online
banking payee, wire or EFT details, and who a cheque is payable to and where it
is mailed. Programs are data, so these are columns of the program, which staff
change in the back office; empty until set (the page then says to contact us).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COLUMNS = (
    ("pay_online_payee", sa.String(length=120)),
    ("pay_wire", sa.Text()),
    ("pay_cheque_payable_to", sa.String(length=200)),
    ("pay_cheque_address", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("programs") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("programs") as batch:
        for name, _type in reversed(COLUMNS):
            batch.drop_column(name)
