"""A worker process for the member analysis: ``python -m rebuild.compare.worker``.

The comparison hands a large ELF, bytecode or static-library member that differs to one of
these, so that two members are decoded on two cores (the work holds the GIL). It is a fresh
interpreter, not a fork: the parent may have threads (a batch runs comparisons on several), and
nothing of the caller's ``__main__`` is run again. It reads tasks from stdin and writes results
to stdout, each a pickle behind its 8-byte length, until stdin closes.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import IO

from rebuild.compare.members import analyse_apart

_LENGTH = struct.Struct("<Q")


def read_message(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed message, or None at the end of the stream (or a short one)."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    return data if len(data) == length else None


def write_message(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def main() -> int:
    # The results travel on the real stdout; anything else printed goes to stderr.
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    tasks = sys.stdin.buffer
    while (message := read_message(tasks)) is not None:
        task = pickle.loads(message)  # noqa: S301 - written by the parent comparison, our own code
        try:
            reply: tuple[str, object] = ("ok", analyse_apart(task))
        except Exception as e:  # noqa: BLE001 - returned to the parent, which reports it
            reply = ("error", f"{type(e).__name__}: {e}"[:300])
        write_message(results, pickle.dumps(reply))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
