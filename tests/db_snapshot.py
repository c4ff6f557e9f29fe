"""Every row of every table, to show that a request changed nothing.

    before = snapshot(app)
    ... a refused request, or any GET ...
    assert changes(before, snapshot(app)) == {}

Some requests write bookkeeping on purpose even when they change nothing a person
could see or act on: the session's last activity (the idle timeout needs it) and its
own contents (the CSRF token a form needs, a two-factor secret being set up, a notice
shown once: what a cookie would hold, kept on the server), a new session for an
anonymous visitor shown a form (to hold its CSRF token), when a grant was last used
(shown on the access page), when a message or letter was first read, and the audit
log (refusals and downloads are recorded). `changes` leaves those out unless asked
to keep them, and says which rows of every other table were added, removed or
altered. `touched` names every column and
table that differs, bookkeeping included, so a test can pin the list down
(tests/security/test_get_changes_nothing.py checks that a crawl of every GET route
writes exactly these and nothing else).
"""

from __future__ import annotations

from sqlalchemy import select

from models import Base

# (table, column) pairs a GET or a refusal may write, each for the reason above.
BOOKKEEPING_COLUMNS = {
    ("auth_sessions", "last_activity_at"),
    ("auth_sessions", "data"),
    ("grants", "last_used_at"),
    ("messages", "read_at"),
    ("mail_items", "first_read_at"),
}
# Append-only records of what happened, refusals and staff downloads included.
BOOKKEEPING_TABLES = {"audit_events"}
# The audit events a GET may add, and why: a refusal is recorded (web.access.refuse),
# and so are staff downloads of a person's letters and of the audit log itself.
GET_AUDIT_EVENTS = {"access.refused", "mail.downloaded", "audit.exported"}


def _anonymous_session(table: str, row: dict) -> bool:
    """A session nobody is signed in to, made to hold the CSRF token of a form."""
    return table == "auth_sessions" and row.get("user_id") is None and row.get("ended_at") is None


def _row_statements() -> list[tuple[str, object, list[str], list[int]]]:
    """For each table: its name, a SELECT of its columns in name order, those names, and
    where its primary key's columns are among them. Made once: the security suite takes
    a snapshot after nearly every request it sends."""
    statements = []
    for table in Base.metadata.sorted_tables:
        names = sorted(column.name for column in table.columns)
        keys = [names.index(column.name) for column in table.primary_key.columns]
        statements.append((table.name, select(*(table.c[name] for name in names)), names, keys))
    return statements


_STATEMENTS: list = []


def snapshot(app) -> dict[str, dict[tuple, tuple]]:
    """{table: {primary key: row values}} for every table the models define; each row's
    values as ((column, value), ...) in column-name order."""
    if not _STATEMENTS:
        _STATEMENTS.extend(_row_statements())
    tables = {}
    with app.extensions["portal.sessionmaker"]() as session:
        for name, statement, columns, keys in _STATEMENTS:
            tables[name] = {
                tuple(values[k] for k in keys): tuple(zip(columns, values, strict=False))
                for values in session.execute(statement)
            }
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
        added = sorted(
            (key for key in set(new) - set(old) if keep_bookkeeping or not _anonymous_session(table, dict(new[key]))),
            key=repr,
        )
        removed = sorted(set(old) - set(new), key=repr)
        altered = sorted(
            (
                key
                for key in set(old) & set(new)
                if _without(old[key], table, ignore_columns) != _without(new[key], table, ignore_columns)
            ),
            key=repr,
        )
        if added or removed or altered:
            found[table] = {"added": added, "removed": removed, "altered": altered}
    return found


def touched(before: dict, after: dict) -> set[tuple[str, str]]:
    """Everything that differs, bookkeeping included: (table, column) for each
    altered column, (table, "+row") and (table, "-row") for rows added or removed."""
    found = set()
    for table in before.keys() | after.keys():
        old, new = before.get(table, {}), after.get(table, {})
        if set(new) - set(old):
            found.add((table, "+row"))
        if set(old) - set(new):
            found.add((table, "-row"))
        for key in set(old) & set(new):
            if old[key] != new[key]:
                was, now = dict(old[key]), dict(new[key])
                found |= {(table, column) for column in was if was[column] != now.get(column)}
    return found


def added_rows(before: dict, after: dict, table: str) -> list[dict]:
    """The rows of `table` that `after` has and `before` has not, as dicts."""
    old, new = before.get(table, {}), after.get(table, {})
    return [dict(new[key]) for key in sorted(set(new) - set(old), key=repr)]


def bookkeeping_only(before: dict, after: dict) -> bool:
    """True when everything that differs is on the bookkeeping list: the columns
    above, audit events a GET may add (GET_AUDIT_EVENTS) and anonymous sessions."""
    allowed = BOOKKEEPING_COLUMNS | {("audit_events", "+row"), ("auth_sessions", "+row")}
    return (
        touched(before, after) <= allowed
        and {row["event"] for row in added_rows(before, after, "audit_events")} <= GET_AUDIT_EVENTS
        and all(_anonymous_session("auth_sessions", row) for row in added_rows(before, after, "auth_sessions"))
    )
