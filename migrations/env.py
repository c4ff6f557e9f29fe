"""Alembic environment: the URL comes from the caller (migrations/runner.py) or DATABASE_URL."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from alembic import context

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.db import make_engine  # noqa: E402
from models import Base  # noqa: E402

config = context.config
url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
