"""Files written whole or not at all."""
from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path


def write_atomically(path: Path | str, content: bytes) -> None:
    """A temporary file beside `path`, flushed to the disk, then renamed over it: a
    reader sees the old file or the new one, never half of one. On any failure the
    temporary file (`*.part`) goes and nothing else changed."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
