"""One SQLAlchemy session per request, closed (and rolled back if unfinished) at
teardown, and the request's bookkeeping writes."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app, g, request
from sqlalchemy import Executable, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def get_db() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["portal.sessionmaker"]()
    return g.db


def write_at_end(key: tuple, statement: Executable, params: dict) -> None:
    """Bookkeeping (a session's last activity, a grant's last use) is written once,
    when the request is done: it never splits the request's reads into two
    transactions (and two pool checkouts), and on PostgreSQL it does not wait for
    the disk, since losing the last few such times in a database crash harms
    nothing. The same key twice keeps the last. Not for anything that matters if
    lost: a failed bookkeeping write is logged, not raised."""
    g.setdefault("writes_at_end", {})[key] = (statement, params)
    # Noted now: the request itself is gone by the time the app context tears down.
    g.writes_follow_a_read = request.method in ("GET", "HEAD")


def close_db(exc=None) -> None:
    writes = g.pop("writes_at_end", None)
    db = g.pop("db", None)
    if db is None:
        return
    try:
        if writes and exc is None:
            if not g.get("writes_follow_a_read") or db.new or db.dirty or db.deleted:
                # Whatever a view left unfinished is not ours to commit. A GET
                # changes nothing (a rule of the portal), so its reading
                # transaction simply carries on, on the same connection.
                db.rollback()
            # Plain statements on the connection: the ORM's UPDATE path (which
            # would match them against loaded objects) costs more than the write.
            connection = db.connection()
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            for statement, params in writes.values():
                connection.execute(statement, params)
            db.commit()
    except SQLAlchemyError as error:  # the answer is already made; say so and carry on
        log.warning("Bookkeeping write failed: %s", type(error).__name__)
    finally:
        db.close()


def now() -> datetime:
    """The current time from the injected clock (tests move it)."""
    return current_app.extensions["portal.clock"]()
