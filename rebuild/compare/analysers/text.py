"""The text analyser: a capped unified diff for Python sources and other text members.

Nothing is normalised silently: when two texts differ only in line endings or in a trailing
newline, the summary says exactly that instead of showing a diff where every line changed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from rebuild.compare.analysers import MemberKind, MemberPair
from rebuild.models import Divergence, DivergenceKind


@dataclass(frozen=True)
class TextChange:
    """How two texts differ: one line for a summary, and the (capped) diff."""

    summary: str
    detail: str


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
    diff = difflib.unified_diff(
        old.split("\n"),
        new.split("\n"),
        fromfile=f"published/{name}",
        tofile=f"rebuilt/{name}",
        lineterm="",
    )
    added = removed = total = 0
    shown: list[str] = []
    for index, line in enumerate(diff):
        if index >= 2 and line.startswith("+"):
            added += 1
        elif index >= 2 and line.startswith("-"):
            removed += 1
        total += 1
        if total <= max_lines:
            shown.append(_render(line))
    if total > max_lines:
        shown.append(f"… {total - max_lines:,} more lines")
    summary = f"{what} differs: {_plural(added, 'line')} added, {removed:,} removed"
    if not (old_ok and new_ok):
        summary += " (not valid UTF-8; undecodable bytes shown as escapes)"
    return TextChange(summary, "\n".join(shown))


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
    )


class TextAnalyser:
    """Python sources and other UTF-8 text: a unified diff."""

    name = "text"
    kinds = frozenset({MemberKind.PYTHON, MemberKind.TEXT})

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        return [text_divergence(pair, analyser=self.name)]
