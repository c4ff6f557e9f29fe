"""One SQLAlchemy session per request, closed (and rolled back if unfinished) at teardown."""
from __future__ import annotations

from datetime import datetime

from flask import current_app, g
from sqlalchemy.orm import Session


def get_db() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["portal.sessionmaker"]()
    return g.db


def close_db(_exc=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def now() -> datetime:
    """The current time from the injected clock (tests move it)."""
    return current_app.extensions["portal.clock"]()
