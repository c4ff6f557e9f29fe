"""Readiness and migrations for deployers (issue 18): `/healthz/ready` answers 503 until
the database is at the code's migration head, and says what it found; any number of
servers may run `flask db-upgrade` at once; `flask db-current`, `db-history` and a
one-step `db-downgrade` work. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app import create_app
from migrations.runner import current_of, head, history, upgrade

ROOT = Path(__file__).resolve().parent.parent


def _ready(app_config, database_url):
    app = create_app({**app_config, "DATABASE_URL": database_url})
    try:
        response = app.test_client().get("/healthz/ready")
        return response.status_code, response.get_json(), app.test_client().get("/healthz").status_code
    finally:
        app.extensions["portal.engine"].dispose()


def test_ready_only_at_the_codes_migration_head(app_config, fresh_database):
    """Never migrated: /healthz (liveness) is 200 but /healthz/ready is 503 and says the
    schema is missing; one migration behind: 503 naming both; at the head: 200."""
    needed = head()
    assert _ready(app_config, fresh_database) == (
        503,
        {"status": "unavailable", "database": "ok", "schema": None, "needed": needed},
        200,
    )
    previous = history()[-2][0]
    upgrade(fresh_database, previous)
    assert _ready(app_config, fresh_database)[:2] == (
        503,
        {"status": "unavailable", "database": "ok", "schema": previous, "needed": needed},
    )
    upgrade(fresh_database)
    assert _ready(app_config, fresh_database)[:2] == (
        200,
        {"status": "ready", "database": "ok", "schema": needed, "needed": needed},
    )


def test_ready_is_503_when_the_database_does_not_answer(app_config, tmp_path):
    status, body, live = _ready(app_config, "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    assert (status, body["status"], body["database"], live) == (503, "unavailable", "unreachable", 503)


def _flask(database_url: str, *args: str) -> subprocess.Popen:
    environment = {**os.environ, "DATABASE_URL": database_url, "FLASK_APP": "app", "OUTBOX_THREAD": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_several_servers_may_migrate_at_once(fresh_database):
    """Four `flask db-upgrade` started together on a database never migrated: all succeed
    (before, one failed creating alembic_version), and the database is at the head."""
    runs = [_flask(fresh_database, "db-upgrade") for _ in range(4)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    assert current_of(fresh_database) == head()


def test_db_current_history_and_a_one_step_downgrade(fresh_database):
    upgrade(fresh_database)
    output = _flask(fresh_database, "db-current").communicate(timeout=60)[0]
    assert f"Database: {head()}. This code needs: {head()}." in output
    listing = _flask(fresh_database, "db-history").communicate(timeout=60)[0]
    assert [line.split()[0] for line in listing.splitlines()] == [rev for rev, _ in history()]
    refused = _flask(fresh_database, "db-downgrade")
    assert "--yes" in refused.communicate(timeout=60)[0] and refused.returncode != 0
    assert current_of(fresh_database) == head()
    down = _flask(fresh_database, "db-downgrade", "--yes")
    down.communicate(timeout=120)
    assert down.returncode == 0 and current_of(fresh_database) == history()[-2][0]
    behind = _flask(fresh_database, "db-current")
    assert "This code needs" in behind.communicate(timeout=60)[0] and behind.returncode == 1
    upgrade(fresh_database)  # and back up again: the downgrade left a database the upgrade takes
    assert current_of(fresh_database) == head()
