"""Run Alembic from code (the CLI, `make run` and the tests share this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from domain.db import make_engine

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Safe to run from any number of servers at once: migrations/env.py takes a lock."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade_one_step(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "-1")


def head() -> str:
    """The revision this code needs."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head() or ""


def history() -> list[tuple[str, str]]:
    """(revision, what it does), oldest first."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return [(rev.revision, (rev.doc or "").strip()) for rev in reversed(list(script.walk_revisions()))]


def current(engine) -> str | None:
    """The revision the database is at: None when it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def current_of(database_url: str) -> str | None:
    engine = make_engine(database_url)
    try:
        return current(engine)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
