"""audit events found by the work item, request, consent and thread they name (issue 19)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

A work item's page shows its steps and those of its submission: until now read
by a LIKE over the events' JSON detail and json.loads per row. The four keys it
looks for get indexed columns, written by domain.audit.record from then on and
filled here from the detail of the events already recorded. The log is
append-only (triggers refuse UPDATE): they are dropped for the fill and created
again in the same transaction (PostgreSQL; SQLite runs the migration in one too).
"""

import json

import sqlalchemy as sa
from alembic import op

from migrations.append_only import drop_append_only, make_append_only

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The detail's key, and the column that holds it (domain.audit.SUBJECT_COLUMNS).
SUBJECTS = {"item": "work_item_id", "reference": "request_reference", "consent": "consent_id", "thread": "thread_id"}
BATCH = 1000


def _columns() -> list[sa.Column]:
    return [
        sa.Column("work_item_id", sa.Integer(), nullable=True),
        sa.Column("request_reference", sa.String(length=20), nullable=True),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.Column("thread_id", sa.Integer(), nullable=True),
    ]


def subject_values(detail: str | None) -> dict[str, int | str]:
    """The columns' values for one event's detail (as domain.audit writes them)."""
    try:
        data = json.loads(detail or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    values = {}
    for key, column in SUBJECTS.items():
        value = data.get(key)
        if column == "request_reference":
            if isinstance(value, str) and 0 < len(value) <= 20:
                values[column] = value
        elif isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
            values[column] = value
    return values


def _fill() -> None:
    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer),
        sa.column("detail", sa.Text),
        *(sa.column(c) for c in SUBJECTS.values()),
    )
    named = sa.or_(*(events.c.detail.like(f'%"{key}": %') for key in SUBJECTS))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(events.c.id, events.c.detail).where(named, events.c.id > last).order_by(events.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        for column in SUBJECTS.values():
            updates = [
                {"event_id": row.id, "value": values[column]}
                for row in rows
                if column in (values := subject_values(row.detail))
            ]
            if updates:
                set_one = events.update().where(events.c.id == sa.bindparam("event_id"))
                bind.execute(set_one.values({column: sa.bindparam("value")}), updates)


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: batch mode rebuilds a SQLite table and
    # would drop its triggers.
    for column in _columns():
        op.add_column("audit_events", column)
        op.create_index(f"ix_audit_events_{column.name}", "audit_events", [column.name])
    drop_append_only("audit_events")
    _fill()
    make_append_only("audit_events")


def downgrade() -> None:
    for column in reversed(_columns()):
        op.drop_index(f"ix_audit_events_{column.name}", table_name="audit_events")
        op.drop_column("audit_events", column.name)
