"""Every row of every table, to show that a request changed nothing.

    before = snapshot(app)
    ... a refused request ...
    assert changes(before, snapshot(app)) == {}

Some requests write bookkeeping on purpose even when they change nothing a person
could see or act on: the session's last activity (the idle timeout needs it), when a
grant was last used (shown on the access page), when a message or letter was first
read, and the audit log (refusals and downloads are recorded). `changes` leaves those
columns and the audit table out unless asked to keep them, and says which rows of
every other table were added, removed or altered.
"""
from __future__ import annotations

from sqlalchemy import select

from models import Base

# (table, column) pairs a GET or a refusal may write, each for the reason above.
BOOKKEEPING_COLUMNS = {
    ("auth_sessions", "last_activity_at"),
    ("grants", "last_used_at"),
    ("messages", "read_at"),
    ("mail_items", "first_read_at"),
}
# Append-only records of what happened, refusals included.
BOOKKEEPING_TABLES = {"audit_events"}


def snapshot(app) -> dict[str, dict[tuple, tuple]]:
    """{table: {primary key: row values}} for every table the models define."""
    tables = {}
    with app.extensions["portal.sessionmaker"]() as session:
        for table in Base.metadata.sorted_tables:
            keys = [column.name for column in table.primary_key.columns]
            rows = {}
            for row in session.execute(select(table)).mappings():
                rows[tuple(row[k] for k in keys)] = tuple(sorted(row.items()))
            tables[table.name] = rows
    return tables


def _without(row: tuple, table: str, ignore_columns: set) -> tuple:
    return tuple((name, value) for name, value in row if (table, name) not in ignore_columns)


def changes(before: dict, after: dict, *, keep_bookkeeping: bool = False) -> dict[str, dict[str, list]]:
    """{table: {"added": [...], "removed": [...], "altered": [...]}} for every table
    that differs (primary keys listed); empty when nothing changed."""
    ignore_columns = set() if keep_bookkeeping else BOOKKEEPING_COLUMNS
    ignore_tables = set() if keep_bookkeeping else BOOKKEEPING_TABLES
    found = {}
    for table in before.keys() | after.keys():
        if table in ignore_tables:
            continue
        old, new = before.get(table, {}), after.get(table, {})
        added = sorted(set(new) - set(old), key=repr)
        removed = sorted(set(old) - set(new), key=repr)
        altered = sorted((key for key in set(old) & set(new)
                          if _without(old[key], table, ignore_columns) != _without(new[key], table, ignore_columns)),
                         key=repr)
        if added or removed or altered:
            found[table] = {"added": added, "removed": removed, "altered": altered}
    return found
