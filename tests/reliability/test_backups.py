"""Backup and restore (issue 8, Reliability): `flask backup` while the portal
writes, `flask restore` into a new database and document folder, and every
return, document, ledger entry and audit row found again, equal."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import date

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from domain import documents, requests
from models import AuditEvent, Document, DocumentContent, LedgerEntry, TaxReturn
from tests.accounts_factory import busy_history, file_return, give, month_end, open_account, post, sessionmaker_of
from tests.conftest import POSTGRES_ADMIN_URL, make_user

COMPARED = (TaxReturn, LedgerEntry, Document, DocumentContent, AuditEvent)


def _pdf(label: str, size: int) -> bytes:
    head = f"%PDF-1.4\n% {label}\n".encode()
    tail = b"\nxref\n0 1\n0000000000 65535 f \ntrailer<<>>\nstartxref\n9\n%%EOF\n"
    return head + hashlib.sha256(label.encode()).hexdigest().encode() * (size // 64) + tail


def _build(app) -> dict:
    """Two accounts with returns and a busy ledger, documents in both stores, audit events."""
    now = app.extensions["portal.clock"]()
    user_id = make_user(app, email="backup@example.com")
    filesystem = documents.FilesystemStore(app.config["DOCUMENT_DIR"])
    with sessionmaker_of(app)() as db:
        for serial in (1, 2):
            account = open_account(db, serial=serial, legal_name=f"Backup Test {serial} Ltd.")
            give(db, now, user_id, account)
            busy_history(db, account, entries=60)
            for month in (6, 7, 8):
                file_return(db, account, month_end(2026, month))
            for n, store in enumerate((filesystem, documents.DatabaseStore(), filesystem)):
                checked = documents.check(f"Receipts {serial}-{n}.pdf", _pdf(f"{serial}-{n}", 40_000 + n), 10**7)
                documents.upload(
                    db,
                    now,
                    store=store,
                    account=account,
                    user_id=user_id,
                    files=[checked],
                    key=requests.new_token(),
                    written=[],
                )
            db.commit()
        return {"account_ids": list(db.scalars(text("SELECT id FROM accounts ORDER BY id")))}


def _rows(app, model) -> dict:
    with sessionmaker_of(app)() as db:
        columns = [c.key for c in model.__table__.columns]
        return {
            row.id if hasattr(row, "id") else row.stored_name: tuple(_plain(getattr(row, c)) for c in columns)
            for row in db.scalars(select(model))
        }


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


class _Writer(threading.Thread):
    """Goes on posting ledger entries (each its own commit) until stopped."""

    def __init__(self, app, account_id: int):
        super().__init__(daemon=True)
        self.app, self.account_id, self.stop, self.posted, self.error = app, account_id, threading.Event(), 0, None

    def run(self):
        try:
            from models import Account

            with sessionmaker_of(self.app)() as db:
                account = db.get(Account, self.account_id)
                while not self.stop.is_set():
                    post(
                        db,
                        account,
                        "payment",
                        -(self.posted + 1),
                        date(2026, 11, 2),
                        reference=f"LIVE-{self.posted:05d}",
                    )
                    db.commit()
                    self.posted += 1
        except Exception as error:  # reported by the test
            self.error = error


@pytest.fixture
def fresh_database(db_backend, tmp_path):
    """An empty database of the same kind, never migrated."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    import psycopg

    name = f"portal_restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_while_writing_then_restore_finds_everything(app, app_with, db_backend, fresh_database, tmp_path):
    """`flask backup` taken while another thread keeps posting ledger entries (the
    SQLite online backup API; pg_dump in an exported snapshot), restored with
    `flask restore` into a new database and document folder: every return, ledger
    entry, document (bytes and SHA-256, in both stores) and audit row of before the
    backup is there and equal, the backup is one consistent moment (its counts are
    the restored counts), and the restored ledger and audit tables still refuse
    UPDATE and DELETE. A second restore into the now non-empty database is refused.
    ASVS 5.0 16.4.2 (logs cannot be modified: the audit and ledger tables' append-only
    triggers survive a restore), 16.5.3 (fails securely: a restore never overwrites
    a database that holds data unless told to)."""
    built = _build(app)
    before = {model: _rows(app, model) for model in COMPARED}
    assert len(before[LedgerEntry]) == 120 and len(before[TaxReturn]) == 6 and len(before[Document]) == 6
    stores = {row[0] for row in _rows_by(app, "SELECT storage FROM documents")}
    assert stores == {"filesystem", "database"}

    backup_dir = tmp_path / "backups" / "portal-2026-11-23"
    writer = _Writer(app, built["account_ids"][0])
    writer.start()
    try:
        while writer.posted < 5 and writer.error is None:  # writing has begun (bounded by the writer's own pace)
            writer.join(0.05)
        result = app.test_cli_runner().invoke(args=["backup", str(backup_dir)])
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None, writer.error
    assert result.exit_code == 0, result.output
    assert "Backed up the" in result.output
    assert writer.posted > 5  # the portal went on writing during the backup
    assert not [p for p in backup_dir.parent.iterdir() if p.name.endswith(".partial")]

    # The same path again: never overwritten.
    again = app.test_cli_runner().invoke(args=["backup", str(backup_dir)])
    assert again.exit_code != 0 and "already exists" in again.output

    restored_dir = tmp_path / "restored-documents"
    restored = app_with(DATABASE_URL=fresh_database, DOCUMENT_DIR=str(restored_dir))
    result = restored.test_cli_runner().invoke(args=["restore", str(backup_dir)])
    assert result.exit_code == 0, result.output

    after = {model: _rows(restored, model) for model in COMPARED}
    live = {model: _rows(app, model) for model in COMPARED}
    for model in COMPARED:
        missing = set(before[model]) - set(after[model])
        assert not missing, f"{model.__tablename__}: {len(missing)} row(s) lost"
        # Every restored row is the source's row, column for column (the source only grows).
        assert all(live[model][key] == values for key, values in after[model].items()), model.__tablename__
    live_entries = len(after[LedgerEntry]) - len(before[LedgerEntry])
    assert 0 <= live_entries <= writer.posted

    with sessionmaker_of(restored)() as db:
        kept = list(db.scalars(select(Document)))
        assert len(kept) == 6 and {d.storage for d in kept} == {"filesystem", "database"}
        for document in kept:
            content = documents.content_of(db, document, restored_dir)  # checks the SHA-256
            assert hashlib.sha256(content).hexdigest() == document.sha256
    assert len(list(restored_dir.iterdir())) == 4

    engine = restored.extensions["portal.engine"]
    for statement in (
        "UPDATE ledger_entries SET amount_cents = 0",
        "DELETE FROM ledger_entries",
        "UPDATE audit_events SET outcome = 'x'",
    ):
        with pytest.raises(DBAPIError), engine.begin() as connection:
            connection.execute(text(statement))

    refused = restored.test_cli_runner().invoke(args=["restore", str(backup_dir)])
    assert refused.exit_code != 0 and "not empty" in refused.output
    assert _rows(restored, LedgerEntry) == after[LedgerEntry]
    restored.extensions["portal.engine"].dispose()  # the portal stopped, as a restore needs
    forced = restored.test_cli_runner().invoke(args=["restore", "--force", str(backup_dir)])
    assert forced.exit_code == 0, forced.output
    assert {model: _rows(restored, model) for model in COMPARED} == after


def _rows_by(app, query: str) -> list:
    with sessionmaker_of(app)() as db:
        return list(db.execute(text(query)))


def test_restore_refuses_a_damaged_backup(app, app_with, db_backend, fresh_database, tmp_path):
    """A backup whose files no longer match the manifest's SHA-256 is refused
    before anything is written. ASVS 5.0 16.5.3 (fails gracefully and securely)."""
    _build(app)
    backup_dir = tmp_path / "backup"
    assert app.test_cli_runner().invoke(args=["backup", str(backup_dir)]).exit_code == 0
    document = next((backup_dir / "documents").iterdir())
    document.write_bytes(document.read_bytes()[:-1] + b"!")
    restored = app_with(DATABASE_URL=fresh_database, DOCUMENT_DIR=str(tmp_path / "restored"))
    result = restored.test_cli_runner().invoke(args=["restore", str(backup_dir)])
    assert result.exit_code != 0 and "damaged" in result.output
    from domain.backup import database_is_empty

    assert database_is_empty(fresh_database) and not (tmp_path / "restored").exists()
