"""The dist-info analyser: METADATA, WHEEL, entry points and RECORD compared field by field.

A blob diff of METADATA buries a changed dependency among reordered headers; comparing parsed
fields says which field changed and how. Multi-valued fields (Requires-Dist, Classifier...) are
compared as multisets, so an added or dropped value stands out and a mere reordering is named as
one. Whenever the parsed views agree but the bytes do not, the text diff is reported instead, so
that no difference is normalised away.
"""

from __future__ import annotations

import configparser
import email.errors
import email.parser
import email.policy
from collections import Counter
from collections.abc import Callable

from rebuild.compare.analysers import MemberKind, MemberPair
from rebuild.compare.analysers.text import describe_change, text_divergence
from rebuild.compare.record import RecordRow, parse_record
from rebuild.compare.spelling import crlf_of
from rebuild.models import Divergence, DivergenceKind, Reason

# Core metadata fields that may appear more than once (packaging.python.org, core metadata).
_MULTI = frozenset(
    {
        "classifier",
        "dynamic",
        "license-file",
        "obsoletes-dist",
        "platform",
        "project-url",
        "provides-dist",
        "provides-extra",
        "requires-dist",
        "requires-external",
        "supported-platform",
        "tag",  # WHEEL
    }
)
_SHOWN = 3  # values named in a summary before "and N more"
_VALUE_CAP = 200


def _short(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _VALUE_CAP else value[: _VALUE_CAP - 1] + "…"


def _listing(values: list[str]) -> str:
    named = ", ".join(repr(_short(v)) for v in values[:_SHOWN])
    return named + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _side(rebuilt: bool) -> str:
    return "rebuilt" if rebuilt else "published"


class _Fields:
    """One header block parsed as an ordered multimap, field names compared case-insensitively."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, list[str]] = {}
        for name, value in pairs:
            key = name.lower()
            self.names.setdefault(key, name)
            self.values.setdefault(key, []).append(value)


def _parse_headers(data: bytes) -> tuple[_Fields, str] | None:
    try:
        text = data.decode("utf-8")
        message = email.parser.Parser(policy=email.policy.compat32).parsestr(text)
    except (UnicodeDecodeError, email.errors.MessageError):
        return None
    if message.defects or message.is_multipart():
        return None
    body = message.get_payload()
    if not isinstance(body, str):
        return None
    return _Fields([(k, str(v)) for k, v in message.items()]), body


def _field_divergence(
    pair: MemberPair,
    summary: str,
    published: str | None,
    rebuilt: str | None,
    detail: str = "",
    *,
    field: str | None = None,
    removed: list[str] | None = None,
    added: list[str] | None = None,
) -> Divergence:
    """One field's divergence; ``removed``/``added`` are its values on each side, in full."""
    changed = None
    if removed is not None or added is not None:
        changed = (*(f"-{v}" for v in removed or ()), *(f"+{v}" for v in added or ()))
    return Divergence(
        kind=DivergenceKind.METADATA_FIELD,
        summary=summary,
        member=pair.name,
        published=published,
        rebuilt=rebuilt,
        detail=detail,
        analyser=MetadataAnalyser.name,
        field=field,
        changed_lines=changed,
    )


def _compare_headers(pair: MemberPair, published: _Fields, rebuilt: _Fields) -> list[Divergence]:
    file = pair.name.rsplit("/", 1)[-1]
    found: list[Divergence] = []
    for key in [*published.names, *(k for k in rebuilt.names if k not in published.names)]:
        name = published.names.get(key) or rebuilt.names[key]
        old = published.values.get(key, [])
        new = rebuilt.values.get(key, [])
        if old == new:
            continue
        if key in _MULTI:
            added = list((Counter(new) - Counter(old)).elements())
            removed = list((Counter(old) - Counter(new)).elements())
            if not added and not removed:
                found.append(
                    _field_divergence(
                        pair,
                        f"{file} {name}: the same {len(old)} values in another order",
                        "\n".join(old),
                        "\n".join(new),
                        field=name,
                    )
                )
                continue
            parts = []
            if added:
                parts.append(f"added {_listing(added)}")
            if removed:
                parts.append(f"removed {_listing(removed)}")
            found.append(
                _field_divergence(
                    pair,
                    f"{file} {name}: {'; '.join(parts)}",
                    _short("; ".join(removed)) if removed else None,
                    _short("; ".join(added)) if added else None,
                    detail="\n".join([*(f"- {v}" for v in removed), *(f"+ {v}" for v in added)]),
                    field=name,
                    removed=removed,
                    added=added,
                )
            )
            continue
        found.append(
            _field_divergence(
                pair,
                f"{file} field {name} differs"
                if old and new
                else f"{file} field {name} is only in the {_side(bool(new))} wheel",
                _short(" | ".join(old)) if old else None,
                _short(" | ".join(new)) if new else None,
                detail="\n".join([*(f"- {v}" for v in old), *(f"+ {v}" for v in new)]),
                field=name,
                removed=old,
                added=new,
            )
        )
    return found


CRLF_RULE = "metadata-crlf"
_CRLF_REASON = (
    "CRLF line endings: built on Windows. Every line of the published file ends in CRLF where "
    "the rebuild's ends in LF, and with CRLF read as LF the bytes are the rebuilt file's: every "
    "field parses the same (packaging's core metadata parser)"
)


def _line_endings_only(pair: MemberPair, published: bytes, rebuilt: bytes) -> Divergence:
    """The published METADATA is the rebuilt one written with CRLF (spelling.crlf_of)."""
    change = describe_change(pair.name, published, rebuilt, max_lines=pair.max_diff_lines)
    return Divergence(
        kind=DivergenceKind.CONTENT,
        summary=change.summary,
        member=pair.name,
        published=pair.published.describe(),
        rebuilt=pair.rebuilt.describe(),
        analyser=MetadataAnalyser.name,
    ).explained_by(Reason(CRLF_RULE, _CRLF_REASON))


def _core_metadata(pair: MemberPair, published: bytes, rebuilt: bytes) -> list[Divergence]:
    top, _, rest = pair.name.partition("/")
    if top.endswith(".dist-info") and rest == "METADATA" and crlf_of(published, rebuilt):
        # Decided here, where both sides' bytes are: the analyser holds the evidence whole.
        return [_line_endings_only(pair, published, rebuilt)]
    old = _parse_headers(published)
    new = _parse_headers(rebuilt)
    if old is None or new is None:
        return []
    found = _compare_headers(pair, old[0], new[0])
    if old[1] != new[1]:
        change = describe_change(
            pair.name,
            old[1].encode("utf-8"),
            new[1].encode("utf-8"),
            max_lines=pair.max_diff_lines,
            what="description",
        )
        found.append(
            _field_divergence(
                pair,
                f"{pair.name.rsplit('/', 1)[-1]} {change.summary}",
                None,
                None,
                detail=change.detail,
            )
        )
    return found


class _CaseSensitive(configparser.ConfigParser):
    # Entry point names are case-sensitive; the default parser lower-cases keys.
    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _parse_ini(data: bytes) -> dict[str, dict[str, str]] | None:
    parser = _CaseSensitive(interpolation=None, delimiters=("=",), strict=True)
    try:
        parser.read_string(data.decode("utf-8"))
    except (UnicodeDecodeError, configparser.Error):
        return None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def _entry_points(pair: MemberPair, published: bytes, rebuilt: bytes) -> list[Divergence]:
    old = _parse_ini(published)
    new = _parse_ini(rebuilt)
    if old is None or new is None:
        return []
    found: list[Divergence] = []
    for section in [*old, *(s for s in new if s not in old)]:
        before = old.get(section, {})
        after = new.get(section, {})
        for key in [*before, *(k for k in after if k not in before)]:
            if before.get(key) == after.get(key):
                continue
            where = (
                "differs"
                if key in before and key in after
                else f"is only in the {'rebuilt' if key in after else 'published'} wheel"
            )
            found.append(
                _field_divergence(
                    pair,
                    f"entry point [{section}] {key} {where}",
                    before.get(key),
                    after.get(key),
                )
            )
    return found


def _row_value(row: RecordRow) -> str:
    return f"{row.hash}, {row.size}"


def _record(pair: MemberPair, published: bytes, rebuilt: bytes) -> list[Divergence]:
    limit = max(published.count(b"\n"), rebuilt.count(b"\n")) + 1
    old = parse_record(published, max_rows=limit)
    new = parse_record(rebuilt, max_rows=limit)
    if old.problems or new.problems:
        return []
    before: dict[str, RecordRow] = {}
    for row in old.rows:
        before.setdefault(row.path, row)
    after: dict[str, RecordRow] = {}
    for row in new.rows:
        after.setdefault(row.path, row)
    found: list[Divergence] = []
    for path in [*before, *(p for p in after if p not in before)]:
        a = before.get(path)
        b = after.get(path)
        if a is not None and b is not None:
            fields = [
                f
                for f, differs in (("hash", a.hash != b.hash), ("size", a.size != b.size))
                if differs
            ]
            if not fields:
                continue
            summary = f"RECORD row differs in {' and '.join(fields)}"
        else:
            summary = f"RECORD row only in the {'published' if b is None else 'rebuilt'} wheel"
        found.append(
            Divergence(
                kind=DivergenceKind.RECORD_ENTRY,
                summary=summary,
                member=path,
                published=_row_value(a) if a else None,
                rebuilt=_row_value(b) if b else None,
                analyser=MetadataAnalyser.name,
            )
        )
    rows_before = [(r.path, r.hash, r.size) for r in old.rows]
    rows_after = [(r.path, r.hash, r.size) for r in new.rows]
    # A reordering is named as such; rows equal in every other way (quoting, line endings,
    # repeated rows) fall through to the text diff.
    if not found and rows_before != rows_after and sorted(rows_before) == sorted(rows_after):
        found.append(
            Divergence(
                kind=DivergenceKind.RECORD_ENTRY,
                summary="RECORD lists the same rows in another order",
                member=pair.name,
                analyser=MetadataAnalyser.name,
            )
        )
    return found


_BY_FILE: dict[str, Callable[[MemberPair, bytes, bytes], list[Divergence]]] = {
    "METADATA": _core_metadata,
    "PKG-INFO": _core_metadata,
    "WHEEL": _core_metadata,
    "entry_points.txt": _entry_points,
}


class MetadataAnalyser:
    """Dist-info members, compared as the structured files they are."""

    name = "metadata"
    kinds = frozenset({MemberKind.DIST_INFO, MemberKind.RECORD})

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        published = pair.published.read_capped(pair.max_text_bytes)
        rebuilt = pair.rebuilt.read_capped(pair.max_text_bytes)
        found: list[Divergence] = []
        if published is not None and rebuilt is not None:
            if pair.kind is MemberKind.RECORD:
                found = _record(pair, published, rebuilt)
            else:
                compare = _BY_FILE.get(pair.name.rsplit("/", 1)[-1])
                if compare is not None:
                    found = compare(pair, published, rebuilt)
        # Unparsable, too large, another dist-info file, or differing only in layout.
        return found or [text_divergence(pair, analyser=self.name)]
