"""The text analyser: a capped unified diff for Python sources and other text members.

Nothing is normalised silently: when two texts differ only in line endings or in a trailing
newline, the summary says exactly that instead of showing a diff where every line changed.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from rebuild.compare.analysers import MemberKind, MemberPair
from rebuild.models import Divergence, DivergenceKind

# difflib's alignment is quadratic in the worst case (10,000 lines with repeats: seconds); a
# changed region larger than this is compared as multisets of lines instead.
ALIGN_BUDGET = 5_000
_CONTEXT = 3
_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@$")


@dataclass(frozen=True)
class TextChange:
    """How two texts differ: one line for a summary, and the (capped) diff."""

    summary: str
    detail: str
    # Every added ("+") and removed ("-") line, in full; None when there are too many to keep
    # or none were computed (a recipe's `lines` then vouches for nothing).
    changed: tuple[str, ...] | None = None


MAX_CHANGED_LINES = 10_000


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _line_endings(data: bytes) -> str:
    crlf = data.count(b"\r\n")
    lf = data.count(b"\n") - crlf
    return f"{crlf:,} CRLF and {lf:,} LF line endings"


def _trailing(data: bytes) -> str:
    tail = data[len(data.rstrip(b"\r\n")) :]
    return repr(tail.decode("ascii")) if tail else "no newline"


def _decode(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="backslashreplace"), False


def _render(line: str) -> str:
    # A bare carriage return would rewrite the reviewer's terminal line; show it instead.
    return line.replace("\r", "\\r")


def _common_ends(old: list[str], new: list[str]) -> tuple[int, int]:
    """Lines equal at the start, and at the end (not overlapping the start)."""
    head = 0
    limit = min(len(old), len(new))
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return head, tail


def _shift(header: str, offset: int) -> str:
    match = _HUNK.match(header)
    if match is None or not offset:
        return header
    old_start, old_count, new_start, new_count = match.groups()
    return (
        f"@@ -{int(old_start) + offset}{old_count or ''} "
        f"+{int(new_start) + offset}{new_count or ''} @@"
    )


def _aligned_diff(name: str, old: list[str], new: list[str]) -> Iterator[str] | None:
    """A unified diff, or None when the changed region is too large to align affordably."""
    head, tail = _common_ends(old, new)
    if max(len(old), len(new)) - head - tail > ALIGN_BUDGET:
        return None
    # Only the changed region (with its context) is aligned; hunk numbers are shifted back.
    start = max(head - _CONTEXT, 0)
    keep = max(tail - _CONTEXT, 0)
    diff = difflib.unified_diff(
        old[start : len(old) - keep],
        new[start : len(new) - keep],
        fromfile=f"published/{name}",
        tofile=f"rebuilt/{name}",
        n=_CONTEXT,
        lineterm="",
    )
    return (_shift(line, start) if line.startswith("@@") else line for line in diff)


def _unaligned_diff(old: list[str], new: list[str]) -> Iterator[str]:
    """The lines only one side has (as multisets), published side first."""
    for sign, lines, extra in (
        ("-", old, Counter(old) - Counter(new)),
        ("+", new, Counter(new) - Counter(old)),
    ):
        for line in lines:
            if extra[line] > 0:
                extra[line] -= 1
                yield f"{sign}{line}"


def describe_change(
    name: str, published: bytes, rebuilt: bytes, *, max_lines: int, what: str = "content"
) -> TextChange:
    """Say how two byte strings that hold text differ."""
    if published == rebuilt:
        return TextChange(f"{what} is identical", "")
    if published.replace(b"\r\n", b"\n") == rebuilt.replace(b"\r\n", b"\n"):
        return TextChange(
            f"only line endings differ: published has {_line_endings(published)}, "
            f"rebuilt has {_line_endings(rebuilt)}",
            "",
        )
    if published.rstrip(b"\r\n") == rebuilt.rstrip(b"\r\n"):
        return TextChange(
            f"only the trailing newline differs: published ends with {_trailing(published)}, "
            f"rebuilt with {_trailing(rebuilt)}",
            "",
        )
    old, old_ok = _decode(published)
    new, new_ok = _decode(rebuilt)
    lines = _aligned_diff(name, old.split("\n"), new.split("\n"))
    note = ""
    # A unified diff opens with its "---"/"+++" file header, once, before the first hunk: what
    # follows a hunk header is content, whatever it starts with.
    in_hunks = lines is None
    if lines is None:
        lines = _unaligned_diff(old.split("\n"), new.split("\n"))
        note = f" (the changed region is over {ALIGN_BUDGET:,} lines: lines compared as sets)"
    added = removed = total = 0
    shown: list[str] = []
    changed: list[str] | None = []
    for line in lines:
        in_hunks = in_hunks or line.startswith("@@")
        if in_hunks and line[:1] in ("+", "-"):
            if line[0] == "+":
                added += 1
            else:
                removed += 1
            if changed is not None:
                changed = changed if len(changed) < MAX_CHANGED_LINES else None
            if changed is not None:
                changed.append(line)
        total += 1
        if total <= max_lines:
            shown.append(_render(line))
    if total > max_lines:
        shown.append(f"… {total - max_lines:,} more lines")
    summary = f"{what} differs: {_plural(added, 'line')} added, {removed:,} removed{note}"
    if not (old_ok and new_ok):
        summary += " (not valid UTF-8; undecodable bytes shown as escapes)"
    return TextChange(summary, "\n".join(shown), None if changed is None else tuple(changed))


def text_divergence(
    pair: MemberPair, *, analyser: str, kind: DivergenceKind = DivergenceKind.CONTENT
) -> Divergence:
    """One divergence for a differing text member: a diff, or why no diff was computed."""
    published = pair.published.read_capped(pair.max_text_bytes)
    rebuilt = pair.rebuilt.read_capped(pair.max_text_bytes)
    if published is None or rebuilt is None:
        over = [
            f"{side} is {blob.size:,} bytes"
            for side, blob, data in (
                ("published", pair.published, published),
                ("rebuilt", pair.rebuilt, rebuilt),
            )
            if data is None
        ]
        change = TextChange(
            f"content differs; diff not computed: {' and '.join(over)}, over the "
            f"{pair.max_text_bytes:,}-byte limit for a diff",
            "",
        )
    else:
        change = describe_change(pair.name, published, rebuilt, max_lines=pair.max_diff_lines)
    return Divergence(
        kind=kind,
        summary=change.summary,
        member=pair.name,
        published=pair.published.describe(),
        rebuilt=pair.rebuilt.describe(),
        detail=change.detail,
        analyser=analyser,
        changed_lines=change.changed,
    )


class TextAnalyser:
    """Python sources and other UTF-8 text: a unified diff."""

    name = "text"
    kinds = frozenset({MemberKind.PYTHON, MemberKind.TEXT})

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        return [text_divergence(pair, analyser=self.name)]
