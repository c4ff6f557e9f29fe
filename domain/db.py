"""Engine construction with the settings each database needs."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Delete, Update, create_engine, event
from sqlalchemy.engine import CursorResult, Engine, make_url
from sqlalchemy.orm import Session, SessionTransaction

# How long a statement waits for another connection's lock (SQLite) and for a
# connection to open (PostgreSQL) before it fails; the failure is the clear 503 of
# web.errors, not a hang. The database URL may say otherwise: sqlite:///x.db?timeout=2
# (seconds), postgresql://.../portal?connect_timeout=3.
SQLITE_BUSY_SECONDS = 15
POSTGRES_CONNECT_SECONDS = 10


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        busy_seconds = float(_url_setting(url, "timeout") or SQLITE_BUSY_SECONDS)
        engine = create_engine(url, connect_args={"timeout": busy_seconds}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets readers run beside one writer; busy_timeout makes a second
            # writer wait instead of failing with "database is locked".
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": POSTGRES_CONNECT_SECONDS}
    # pool_pre_ping: a connection the database dropped (a restart, a network fault)
    # is replaced on checkout, so the portal recovers by itself when it is back.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _url_setting(url: str, name: str) -> str | None:
    """One setting from the URL's query; given twice (?timeout=1&timeout=2), the last one."""
    value = make_url(url).query.get(name)
    return value[-1] if isinstance(value, tuple) else value


def rows_changed(db: Session, statement: Update | Delete) -> int:
    """Run an UPDATE or DELETE and say how many rows it changed: how a conditional
    UPDATE tells which of two people acting at once got there first."""
    # An UPDATE or DELETE always answers with a CursorResult, which has the count;
    # Session.execute is typed with the general Result, which does not.
    return cast(CursorResult, db.execute(statement)).rowcount


def savepoint(db: Session) -> SessionTransaction:
    """`db.begin_nested()`, nested in a real transaction on SQLite too. Python's sqlite3
    opens its transaction only before an INSERT, UPDATE or DELETE, so a SAVEPOINT sent
    first opens one of its own, and its RELEASE commits everything at once: a
    submission would be kept without the work item and audit event that follow it.
    A BEGIN first keeps the savepoint inside the request's one transaction."""
    connection = db.connection()
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:  # only once the connection has been closed, which db.connection() never hands out
        raise RuntimeError("the session's connection is closed")
    if connection.dialect.name == "sqlite" and not dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")
    return db.begin_nested()
