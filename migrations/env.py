"""Alembic environment: the URL comes from the caller (migrations/runner.py) or DATABASE_URL."""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from alembic import context
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.db import make_engine
from models import Base

config = context.config
url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
target_metadata = Base.metadata


# Any number of servers may run `flask db-upgrade` at once (a deploy starts them all):
# each takes this lock first, so one migrates while the others wait, then find the
# database at the head and do nothing.
_ADVISORY_LOCK = 0x706F7274616C  # "portal"


@contextmanager
def _migration_lock(connection):
    if connection.dialect.name == "postgresql":
        # Held by the transaction the migrations run in, released by its commit.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        yield
        return
    database = connection.engine.url.database
    if connection.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+") as lock_file:  # SQLite: one machine, a file lock
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite"
        )
        if connection.dialect.name == "sqlite":
            with _migration_lock(connection), context.begin_transaction():
                context.run_migrations()
        else:
            with context.begin_transaction(), _migration_lock(connection):
                context.run_migrations()
    engine.dispose()


run_migrations_online()
