"""Report formats: the same :class:`~rebuild.models.Report` rendered for people or programs.

Every format renders the whole report and leads with what a reviewer must look at: unexplained
divergences, then the rest. Files are written atomically (temp file + ``os.replace``) so a crash
never leaves half a report where a pipeline expects a whole one.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never a part.

    ``-`` is standard output. A path that exists and is not a regular file (``/dev/stdout``, a
    FIFO, a shell's ``>(…)``) is written into, never replaced: replacing it would put a regular
    file where the device or the pipe was (as root, over /dev/stdout itself).
    """
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        existing = path.stat()
    except OSError:  # absent (or unreadable: the write below says why)
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with path.open("w", encoding="utf-8") as stream:
            stream.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
