"""Untrusted text made harmless on a terminal.

Member names, metadata values, build logs and errors quoted from libraries all reach the
terminal; each goes through :func:`safe` first. Kept apart from the terminal report so that a
command printing one line (an error, a progress message) does not import the report's renderers.
"""

from __future__ import annotations

import re
import unicodedata

from rich.emoji import Emoji, NoEmoji
from rich.markup import escape

from rebuild.credentials import redact


def safe(text: str) -> str:
    """Make an untrusted string harmless on a terminal: no control characters, no markup, no
    index credentials (a library's error may quote a URL with them)."""
    out = []
    for ch in redact(text):
        if ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            # Escapes, bidi overrides and the like would let a package forge report lines.
            out.append(f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    # Rich turns ":name:" into an emoji wherever it prints markup: a word joiner after the first
    # colon (invisible) keeps a package's ":white_check_mark:" from posing as a report symbol.
    return escape(_EMOJI_CODE.sub(_break_emoji, "".join(out)))


# Rich's own pattern for emoji codes (rich/_emoji_replace.py), including the -emoji/-text forms.
_EMOJI_CODE = re.compile(r":(\S*?)(?:(?:\-)(emoji|text))?:")


def _break_emoji(match: re.Match[str]) -> str:
    try:
        Emoji(match.group(1).lower())
    except NoEmoji:
        return match.group(0)
    return ":\u2060" + match.group(0)[1:]
