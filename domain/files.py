"""Files written whole or not at all, and what a crash can leave behind."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import datetime
from pathlib import Path

# The disk (or the process's file size limit, or a quota) has no room.
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class StorageFull(OSError):
    """No room to write the file: nothing of it was kept. The answer is a clear
    error (web.errors), not a crash."""


def write_atomically(path: Path | str, content: bytes) -> None:
    """A temporary file beside `path`, flushed to the disk, then renamed over it: a
    reader sees the old file or the new one, never half of one. On any failure the
    temporary file (`*.part`) goes and nothing else changed; a full disk raises
    StorageFull."""
    path = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    except OSError as error:
        if error.errno in _NO_ROOM:
            raise StorageFull(error.errno, error.strerror, str(path.parent)) from error
        raise
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError) and not isinstance(error, StorageFull) and error.errno in _NO_ROOM:
            raise StorageFull(error.errno, error.strerror, str(path)) from error
        raise


def remove_unclaimed(
    directory: Path | str, claimed: Callable[[list[str]], Iterable[str]], *, written_before: datetime
) -> list[str]:
    """Delete the files of `directory` written before `written_before` that nothing
    claims (`claimed(names)` says which of `names` are still wanted), and temporary
    `.part` files left by a write that never finished. What a process killed between
    writing a file and committing its row leaves behind; the age keeps a write whose
    transaction is still going. The names removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    cutoff = written_before.timestamp()
    old: dict[str, Path] = {}
    for entry in directory.iterdir():
        with suppress(FileNotFoundError):
            if entry.is_file() and not entry.is_symlink() and entry.stat().st_mtime < cutoff:
                old[entry.name] = entry
    temporary = [name for name in old if name.startswith(".") and name.endswith(".part")]
    candidates = sorted(set(old) - set(temporary))
    kept: set[str] = set()
    for start in range(0, len(candidates), 500):
        kept.update(claimed(candidates[start : start + 500]))
    removed = []
    for name in temporary + [name for name in candidates if name not in kept]:
        with suppress(FileNotFoundError):
            old[name].unlink()
            removed.append(name)
    return sorted(removed)
