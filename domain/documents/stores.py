"""Where the bytes of supporting documents are kept, each under a generated name,
in one of two stores:

- "database": DocumentContent rows, in the same transaction as the Document
  (several servers sharing PostgreSQL, no shared disk);
- "filesystem": one file per document in a directory outside the static
  folder, written atomically (a temporary file in the same directory, fsync,
  os.replace); a failed commit removes what was written (one server).
"""

from __future__ import annotations

import os
import re
import secrets
from contextlib import suppress
from pathlib import Path

from sqlalchemy.orm import Session

from domain.files import write_atomically
from models import DocumentContent

STORES = ("database", "filesystem")

_STORED_NAME = re.compile(r"[0-9a-f]{32}")


def new_stored_name() -> str:
    return secrets.token_hex(16)


class DatabaseStore:
    """DocumentContent rows, in the request's transaction: a rollback takes them."""

    kind = "database"

    def put(self, db: Session, stored_name: str, content: bytes) -> None:
        db.add(DocumentContent(stored_name=stored_name, content=content))

    def read(self, db: Session, stored_name: str) -> bytes | None:
        row = db.get(DocumentContent, stored_name)
        return None if row is None else bytes(row.content)

    def discard(self, stored_names) -> None:
        return None


class FilesystemStore:
    """One file per document, named by its stored name, in `directory`."""

    kind = "filesystem"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def put(self, db: Session, stored_name: str, content: bytes) -> None:
        """Atomic: a temporary file in the same directory, flushed to the disk, then
        renamed. On any failure the temporary file goes and nothing else is there."""
        if not _STORED_NAME.fullmatch(stored_name):
            raise ValueError("not a stored name")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.directory / stored_name, content)
        _fsync_directory(self.directory)

    def read(self, db: Session, stored_name: str) -> bytes | None:
        if not _STORED_NAME.fullmatch(stored_name or ""):
            return None
        try:
            return (self.directory / stored_name).read_bytes()
        except FileNotFoundError:
            return None

    def discard(self, stored_names) -> None:
        for stored_name in stored_names:
            if _STORED_NAME.fullmatch(stored_name):
                with suppress(FileNotFoundError):
                    (self.directory / stored_name).unlink()


def _fsync_directory(directory: Path) -> None:
    with suppress(OSError):  # not every platform can open a directory
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def store_kind(setting: str | None, database_url: str) -> str:
    """The store a deployment uses: as set, or by the database (PostgreSQL: several
    servers may share it, so the files go there too)."""
    chosen = (setting or "").strip().lower()
    if not chosen:
        return "database" if database_url.startswith(("postgresql", "postgres")) else "filesystem"
    if chosen not in STORES:
        raise ValueError(f"DOCUMENT_STORE must be one of {', '.join(STORES)}, not {setting!r}")
    return chosen


def make_store(kind: str, directory: str | os.PathLike | None, *, static_dir: str | os.PathLike | None = None):
    if kind == "database":
        return DatabaseStore()
    if kind != "filesystem":
        raise ValueError(f"unknown document store {kind!r}")
    if not directory:
        raise ValueError("DOCUMENT_DIR is needed for the filesystem store")
    path = Path(directory).resolve()
    if static_dir is not None:
        static = Path(static_dir).resolve()
        if path == static or static in path.parents:
            raise ValueError("DOCUMENT_DIR must be outside the static folder: files are never served as they are")
    return FilesystemStore(path)


def commit_or_discard(db: Session, store, written: list[str]) -> None:
    """Commit; if the commit fails, the files written for it go too."""
    try:
        db.commit()
    except BaseException:
        with suppress(Exception):
            db.rollback()
        store.discard(written)
        raise
