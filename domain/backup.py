"""Backups of the portal's records and documents, and restoring them (no Flask).

A backup is one directory, made whole or not at all (built beside its final name,
flushed to the disk, then renamed):

    <backup>/manifest.json        what it holds: when, which database, the SHA-256 of each file
    <backup>/database.sqlite      SQLite: the online backup API (a consistent copy while the
                                  portal keeps writing)
    <backup>/database.pgdump      PostgreSQL: pg_dump --format=custom, in an exported snapshot
    <backup>/documents/<name>     the filesystem store's files that the backed-up rows name

The documents copied are exactly those the backed-up database names (read from
the copy, or from the snapshot the dump used), so a restore finds every
document's file, and a file written for an upload that had not committed is left out.

Restoring goes into an empty database and an empty document folder (the portal
stopped); `force` replaces what is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from domain.files import write_atomically

FORMAT = 1
SQLITE_FILE = "database.sqlite"
POSTGRES_FILE = "database.pgdump"
DOCUMENTS = "documents"
MANIFEST = "manifest.json"
# Counted into the manifest, and checked again after a restore.
COUNTED_TABLES = (
    "accounts",
    "tax_returns",
    "ledger_entries",
    "documents",
    "document_contents",
    "audit_events",
    "service_requests",
    "users",
)
_FILESYSTEM_DOCUMENTS = "SELECT stored_name FROM documents WHERE storage = 'filesystem' ORDER BY stored_name"


class BackupError(Exception):
    """A backup or restore that cannot be done, with the reason in plain words."""


@dataclass
class Summary:
    path: Path
    backend: str
    counts: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    bytes: int = 0


def backend_of(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        return "sqlite"
    if database_url.startswith(("postgresql", "postgres")):
        return "postgresql"
    raise BackupError(f"no backup method for {make_url(database_url).drivername} databases")


def _sqlite_path(database_url: str) -> Path:
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq(database_url: str) -> tuple[list[str], dict]:
    """Connection arguments for pg_dump and pg_restore; the password goes in the
    environment, never on a command line others can read."""
    url = make_url(database_url)
    arguments = [f"--dbname={url.database}"]
    if url.host:
        arguments.append(f"--host={url.host}")
    if url.port:
        arguments.append(f"--port={url.port}")
    if url.username:
        arguments.append(f"--username={url.username}")
    environment = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password:
        environment["PGPASSWORD"] = url.password
    return arguments, environment


def _engine_url(database_url: str) -> str:
    if database_url.startswith("postgresql://"):
        return "postgresql+psycopg://" + database_url[len("postgresql://") :]
    return database_url


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (the PostgreSQL client tools are needed)")
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in [*sorted(root.rglob("*"), reverse=True), root]:
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _counts(connection) -> dict[str, int]:
    # The table names are this module's constant COUNTED_TABLES, never input.
    return {
        table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # nosec B608
        for table in COUNTED_TABLES
    }


# --- Backing up ---------------------------------------------------------------------


def backup(
    database_url: str, document_dir: str | os.PathLike | None, destination: str | os.PathLike, *, now: datetime
) -> Summary:
    """Back up the database and the documents its rows name into `destination`, a
    directory that must not exist yet."""
    destination = Path(destination).absolute()
    if destination.exists():
        raise BackupError(f"{destination} already exists: a backup never overwrites another")
    destination.parent.mkdir(parents=True, exist_ok=True)
    backend = backend_of(database_url)
    building = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".partial"))
    try:
        if backend == "sqlite":
            names, counts = _backup_sqlite(database_url, building / SQLITE_FILE)
            database_file = SQLITE_FILE
        else:
            names, counts = _backup_postgres(database_url, building / POSTGRES_FILE)
            database_file = POSTGRES_FILE
        files = {database_file: _sha256(building / database_file)}
        if names:
            if not document_dir:
                raise BackupError("the database names documents kept on disk, but no document folder was given")
            (building / DOCUMENTS).mkdir()
            missing = []
            for name in names:
                source = Path(document_dir) / name
                try:
                    shutil.copyfile(source, building / DOCUMENTS / name)
                except FileNotFoundError:
                    missing.append(name)
                    continue
                files[f"{DOCUMENTS}/{name}"] = _sha256(building / DOCUMENTS / name)
            if missing:
                raise BackupError(
                    f"{len(missing)} document file(s) named by the database are missing from "
                    f"{document_dir}, e.g. {missing[0]}"
                )
        manifest = {
            "format": FORMAT,
            "backend": backend,
            "created_at": now.isoformat(),
            "counts": counts,
            "files": files,
        }
        write_atomically(building / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        _fsync_tree(building)
        os.rename(building, destination)  # the backup appears whole, or not at all
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    parent = os.open(destination.parent, os.O_RDONLY)  # the rename itself, on the disk
    try:
        os.fsync(parent)
    finally:
        os.close(parent)
    return Summary(destination, backend, counts, len(names), sum((destination / name).stat().st_size for name in files))


def _backup_sqlite(database_url: str, target: Path) -> tuple[list[str], dict]:
    """SQLite's online backup API: a consistent copy of the whole file, taken while
    other connections go on writing (a write during the copy restarts it; with one
    step for all pages it completes within one read transaction)."""
    path = _sqlite_path(database_url)
    if not path.exists():
        raise BackupError(f"no SQLite database at {path}")
    # DELETE: one self-contained file, no -wal beside it.
    _copy_sqlite(sqlite3.connect(path, timeout=30), sqlite3.connect(target), "DELETE", "the copy")
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as connection:
            names = list(connection.execute(text(_FILESYSTEM_DOCUMENTS)).scalars())
            counts = _counts(connection)
    finally:
        engine.dispose()
    return names, counts


def _backup_postgres(database_url: str, target: Path) -> tuple[list[str], dict]:
    """pg_dump --format=custom inside a snapshot this connection exports: the dump,
    the list of documents to copy and the counts all see the same moment."""
    pg_dump = _tool("pg_dump")
    arguments, environment = _libpq(database_url)
    engine = create_engine(_engine_url(database_url))
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                names = list(connection.execute(text(_FILESYSTEM_DOCUMENTS)).scalars())
                counts = _counts(connection)
                done = subprocess.run(
                    [
                        pg_dump,
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--snapshot={snapshot}",
                        f"--file={target}",
                        *arguments,
                    ],
                    env=environment,
                    capture_output=True,
                    text=True,
                )
    finally:
        engine.dispose()
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return names, counts


# --- Restoring ----------------------------------------------------------------------


def read_manifest(backup_path: str | os.PathLike) -> dict:
    """The backup's manifest, after checking every file it lists against its SHA-256."""
    root = Path(backup_path)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{root} is not a backup (no {MANIFEST})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{root} is a backup of an unknown format")
    for name, digest in manifest["files"].items():
        path = root / name
        if not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"{name} in the backup is missing or damaged")
    return manifest


def database_is_empty(database_url: str) -> bool:
    backend = backend_of(database_url)
    if backend == "sqlite":
        path = _sqlite_path(database_url)
        if not path.exists() or path.stat().st_size == 0:
            return True
        with sqlite3.connect(path) as connection:
            return connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0
    engine = create_engine(_engine_url(database_url))
    try:
        with engine.connect() as connection:
            return (
                connection.execute(
                    text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
                ).scalar_one()
                == 0
            )
    finally:
        engine.dispose()


def restore(
    backup_path: str | os.PathLike, database_url: str, document_dir: str | os.PathLike | None, *, force: bool = False
) -> Summary:
    """Restore a backup into `database_url` and `document_dir`: both must be empty
    unless `force`. The portal must be stopped. Checks the counts afterwards."""
    root = Path(backup_path)
    manifest = read_manifest(root)
    backend = backend_of(database_url)
    if manifest["backend"] != backend:
        raise BackupError(f"this is a {manifest['backend']} backup; the database is {backend}")
    documents = sorted(name.split("/", 1)[1] for name in manifest["files"] if name.startswith(f"{DOCUMENTS}/"))
    if documents and not document_dir:
        raise BackupError("the backup holds documents kept on disk: give the document folder to restore them to")
    folder = Path(document_dir) if document_dir else None
    if not force:
        if not database_is_empty(database_url):
            raise BackupError("the database is not empty: restore into a new database, or use --force to replace it")
        if folder is not None and folder.exists() and any(folder.iterdir()):
            raise BackupError(f"{folder} is not empty: restore into an empty folder, or use --force")
    if backend == "sqlite":
        _restore_sqlite(root / SQLITE_FILE, database_url)
    else:
        _restore_postgres(root / POSTGRES_FILE, database_url, clean=force)
    if folder is not None and documents:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in documents:
            write_atomically(folder / name, (root / DOCUMENTS / name).read_bytes())
    engine = create_engine(_engine_url(database_url))
    try:
        with engine.connect() as connection:
            counts = _counts(connection)
    finally:
        engine.dispose()
    if counts != manifest["counts"]:
        raise BackupError(f"the restored database does not hold what the backup says: {counts} != {manifest['counts']}")
    return Summary(root, backend, counts, len(documents))


def _copy_sqlite(source: sqlite3.Connection, destination: sqlite3.Connection, journal_mode: str, what: str) -> None:
    """Every page of `source` into `destination` in one step (the online backup API),
    then the journal mode it is kept in, then SQLite's own integrity check. Closes both."""
    try:
        source.backup(destination)  # pages=-1: every page in one step
        destination.execute(f"PRAGMA journal_mode={journal_mode}")
        problem = destination.execute("PRAGMA integrity_check").fetchone()[0]
        if problem != "ok":
            raise BackupError(f"{what} failed its integrity check: {problem}")
    finally:
        destination.close()
        source.close()


def _restore_sqlite(copy: Path, database_url: str) -> None:
    """The backup API again, the other way: the target's pages are replaced whole,
    in one transaction; then WAL as the portal runs it."""
    target = _sqlite_path(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy_sqlite(
        sqlite3.connect(f"file:{copy}?mode=ro", uri=True),
        sqlite3.connect(target, timeout=30),
        "WAL",
        "the restored database",
    )


def _restore_postgres(dump: Path, database_url: str, *, clean: bool) -> None:
    """pg_restore in one transaction: all of it, or nothing (a failure leaves the
    database as it was)."""
    pg_restore = _tool("pg_restore")
    arguments, environment = _libpq(database_url)
    options = ["--clean", "--if-exists"] if clean else []
    done = subprocess.run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            *options,
            *arguments,
            str(dump),
        ],
        env=environment,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
