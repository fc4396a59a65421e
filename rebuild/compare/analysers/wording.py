"""What analysers share: how untrusted names are shown, and how both sides are read and parsed.

Names come out of the published wheel: they are made printable and bounded before any report
sees them. Each analyser reads both sides whole up to a cap and parses them; what goes wrong
becomes a sentence for an unexplained divergence, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from rebuild.compare.analysers import MemberPair
from rebuild.errors import ArchiveError

T = TypeVar("T")


def clean(text: str) -> str:
    """A string from the member, printable and bounded (it is untrusted)."""
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def names(items: Iterable[str], limit: int) -> str:
    """``a, b, c and 4 more``: the first ``limit`` names, cleaned."""
    listed = [clean(n) for n in items]
    shown = ", ".join(listed[:limit])
    return shown + (f" and {len(listed) - limit:,} more" if len(listed) > limit else "")


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def read_both(
    pair: MemberPair,
    max_bytes: int,
    parse: Callable[[bytes], T],
    what: str,
    invalid: str = "could not be read",
) -> tuple[T, T] | str:
    """Both sides parsed, or why not: over ``max_bytes``, or ``parse`` raised ArchiveError."""
    parsed: list[T] = []
    for side, blob in (("published", pair.published), ("rebuilt", pair.rebuilt)):
        data = blob.read_capped(max_bytes)
        if data is None:
            return f"the {side} {what} is {blob.size:,} bytes, over {max_bytes:,}"
        try:
            parsed.append(parse(data))
        except ArchiveError as e:
            return f"the {side} {what} {invalid}: {e}"
    return parsed[0], parsed[1]
