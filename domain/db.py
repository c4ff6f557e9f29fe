"""Engine construction with the settings each database needs."""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, SessionTransaction

# How long a statement waits for another connection's lock (SQLite) and for a
# connection to open (PostgreSQL) before it fails; the failure is the clear 503 of
# web.errors, not a hang. The database URL may say otherwise: sqlite:///x.db?timeout=2
# (seconds), postgresql://.../portal?connect_timeout=3.
SQLITE_BUSY_SECONDS = 15
POSTGRES_CONNECT_SECONDS = 10


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        busy_seconds = float(make_url(url).query.get("timeout") or SQLITE_BUSY_SECONDS)
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


def savepoint(db: Session) -> SessionTransaction:
    """`db.begin_nested()`, nested in a real transaction on SQLite too. Python's sqlite3
    opens its transaction only before an INSERT, UPDATE or DELETE, so a SAVEPOINT sent
    first opens one of its own, and its RELEASE commits everything at once: a
    submission would be kept without the work item and audit event that follow it.
    A BEGIN first keeps the savepoint inside the request's one transaction."""
    connection = db.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN")
    return db.begin_nested()
