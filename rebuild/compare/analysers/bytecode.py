"""The bytecode analyser: whether two CPython ``.pyc`` members hold the same code.

Two builds of the same source commonly differ only in the header's time and in ``co_filename``
(the build directory), which change nothing the code does; this analyser checks that, code
object by code object, from what :mod:`rebuild.compare.pyc` decodes in a limited child process.
A member that could not be decoded is unexplained, saying why.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rebuild.compare.analysers import MemberKind, MemberPair, wording
from rebuild.compare.pyc import (
    DEFAULT_LIMITS,
    HEADER_SIZE,
    CodeInfo,
    Decoded,
    DecoderLimits,
    Invalidation,
    PycHeader,
    cpython_for,
    decode_pair,
    format_time,
    parse_header,
)
from rebuild.models import Divergence, DivergenceKind, Outcome, Reason

MiB = 1024 * 1024
MAX_PYC_BYTES = 32 * MiB  # per side; larger members are not decoded, and say so
_LISTED = 20  # code objects listed in the detail
_NAMED = 3  # qualnames named in the summary
# Fields that only place the code in its source file (line numbers): a difference there alone
# is reported as such, still unexplained, since the source then differs.
_LINE_FIELDS = frozenset({"co_firstlineno", "co_linetable"})


# --- comparing the code objects -------------------------------------------------------------


@dataclass(frozen=True)
class CodeChange:
    """A code object present on both sides whose fields differ."""

    qualname: str
    line: int
    fields: tuple[str, ...]
    consts_published: tuple[str, ...]  # constants on one side only (short renderings)
    consts_rebuilt: tuple[str, ...]
    names_published: tuple[str, ...]
    names_rebuilt: tuple[str, ...]

    @property
    def lines_only(self) -> bool:
        return set(self.fields) <= _LINE_FIELDS


@dataclass(frozen=True)
class CodeDiff:
    compared: int
    changed: tuple[CodeChange, ...]
    only_published: tuple[str, ...]
    only_rebuilt: tuple[str, ...]

    @property
    def same_code(self) -> bool:
        return not (self.changed or self.only_published or self.only_rebuilt)


def _keyed(codes: Sequence[CodeInfo]) -> dict[tuple[str, int], CodeInfo]:
    """Code objects by (qualname, occurrence): lambdas and redefinitions share a qualname."""
    seen: Counter[str] = Counter()
    keyed = {}
    for code in codes:
        keyed[(code.qualname, seen[code.qualname])] = code
        seen[code.qualname] += 1
    return keyed


def _one_sided(left: Sequence[str], right: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    only_left = Counter(left) - Counter(right)
    only_right = Counter(right) - Counter(left)
    return tuple(only_left.elements()), tuple(only_right.elements())


def diff_code(published: Decoded, rebuilt: Decoded) -> CodeDiff:
    """Which code objects differ, field by field (co_filename is not among the fields)."""
    pub, reb = _keyed(published.codes), _keyed(rebuilt.codes)
    changed = []
    for key, old in pub.items():
        new = reb.get(key)
        if new is None or old.fields == new.fields:
            continue
        old_fields, new_fields = dict(old.fields), dict(new.fields)
        fields = tuple(
            f
            for f in sorted(old_fields.keys() | new_fields.keys())
            if old_fields.get(f) != new_fields.get(f)
        )
        consts = _one_sided(old.consts, new.consts)
        names = _one_sided(old.names, new.names)
        changed.append(CodeChange(old.qualname, old.line, fields, *consts, *names))
    return CodeDiff(
        compared=len(pub.keys() & reb.keys()),
        changed=tuple(changed),
        only_published=tuple(pub[k].qualname for k in pub if k not in reb),
        only_rebuilt=tuple(reb[k].qualname for k in reb if k not in pub),
    )


# --- the verdict ----------------------------------------------------------------------------


def _header_differences(old: PycHeader, new: PycHeader) -> list[str]:
    """What differs between two headers of the same magic number, as phrases."""
    if old.flags != new.flags:
        modes = [
            h.invalidation.value if h.invalidation else f"flags {h.flags:#x}" for h in (old, new)
        ]
        return [f"the invalidation mode ({modes[0]} vs {modes[1]})"]
    phrases = []
    if old.mtime != new.mtime and old.mtime is not None and new.mtime is not None:
        phrases.append(
            "the source file's modification time "
            f"({format_time(old.mtime)} vs {format_time(new.mtime)})"
        )
    if old.source_size != new.source_size and old.source_size is not None:
        phrases.append(
            f"the recorded source size ({old.source_size:,} vs {new.source_size or 0:,} bytes)"
        )
    if old.source_hash != new.source_hash:
        phrases.append("the recorded source hash")
    return phrases


def _joined(phrases: Sequence[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _explanation(old: PycHeader, new: PycHeader, pub: Decoded, reb: Decoded) -> str:
    phrases = []
    if pub.filenames != reb.filenames:
        phrases.append(
            f"the recorded source path ({wording.names(pub.filenames, 2)} vs "
            f"{wording.names(reb.filenames, 2)})"
        )
    phrases += _header_differences(old, new)
    if not phrases:
        return (
            "compiled from the same code: only the marshal encoding differs (how shared objects "
            "are referenced, or the order of set constants)"
        )
    verb = "differs" if len(phrases) == 1 else "differ"
    return f"compiled from the same code: only {_joined(phrases)} {verb}"


def _change_lines(change: CodeChange) -> list[str]:
    lines = [
        f"  differs: {wording.clean(change.qualname)} (line {change.line:,}): "
        f"{', '.join(change.fields)}"
    ]
    for label, values in (
        ("constants only published", change.consts_published),
        ("constants only rebuilt", change.consts_rebuilt),
        ("names only published", change.names_published),
        ("names only rebuilt", change.names_rebuilt),
    ):
        if values:
            lines.append(f"    {label}: {wording.names(values, 8)}")
    return lines


def _code_detail(diff: CodeDiff, pub: Decoded, reb: Decoded) -> list[str]:
    lines = [
        f"code objects: {diff.compared:,} on both sides compared (co_filename set aside), "
        f"{len(diff.changed):,} differ"
    ]
    for change in diff.changed[:_LISTED]:
        lines += _change_lines(change)
    if len(diff.changed) > _LISTED:
        lines.append(f"  … {len(diff.changed) - _LISTED:,} more")
    if diff.only_published:
        lines.append(f"  only published: {wording.names(diff.only_published, _LISTED)}")
    if diff.only_rebuilt:
        lines.append(f"  only rebuilt:   {wording.names(diff.only_rebuilt, _LISTED)}")
    lines += [
        "recorded source path (co_filename):",
        f"  published: {wording.names(pub.filenames, 5) or 'none'}",
        f"  rebuilt:   {wording.names(reb.filenames, 5) or 'none'}",
    ]
    for side, decoded in (("published", pub), ("rebuilt", reb)):
        if decoded.trailing:
            lines.append(f"{side}: {decoded.trailing:,} bytes after the code object")
    return lines


def _code_summary(diff: CodeDiff, pub: Decoded, reb: Decoded) -> str:
    names = [c.qualname for c in diff.changed]
    names += [f"{n} (only published)" for n in diff.only_published]
    names += [f"{n} (only rebuilt)" for n in diff.only_rebuilt]
    phrases = []
    if names:
        lines_only = all(c.lines_only for c in diff.changed) and not (
            diff.only_published or diff.only_rebuilt
        )
        what = "line numbers differ" if lines_only else "code differs"
        phrases.append(
            f"{what} in {wording.plural(len(names), 'code object')}: {wording.names(names, _NAMED)}"
        )
    trailing = [
        f"{s} {d.trailing:,}" for s, d in (("published", pub), ("rebuilt", reb)) if d.trailing
    ]
    if trailing:
        phrases.append(f"bytes after the code object ({', '.join(trailing)})")
    return "bytecode: " + "; ".join(phrases)


class BytecodeAnalyser:
    """CPython .pyc members: header facts, then the code objects compared in a child process."""

    name = "bytecode"
    kinds = frozenset({MemberKind.BYTECODE})

    def __init__(
        self, *, max_bytes: int = MAX_PYC_BYTES, limits: DecoderLimits = DEFAULT_LIMITS
    ) -> None:
        self.max_bytes = max_bytes
        self.limits = limits

    def _divergence(
        self, pair: MemberPair, summary: str, detail: Sequence[str], explanation: str | None = None
    ) -> Divergence:
        reasons = () if explanation is None else (Reason("same-bytecode", explanation),)
        return Divergence(
            kind=DivergenceKind.CONTENT,
            summary=summary,
            member=pair.name,
            published=pair.published.describe(),
            rebuilt=pair.rebuilt.describe(),
            detail="\n".join(detail),
            outcome=Outcome.UNEXPLAINED if explanation is None else Outcome.EXPLAINED,
            reasons=reasons,
            analyser=self.name,
        )

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        datas = []
        for side, blob in (("published", pair.published), ("rebuilt", pair.rebuilt)):
            data = blob.read_capped(self.max_bytes)
            if data is None:
                why = f"the {side} .pyc is {blob.size:,} bytes, over {self.max_bytes:,}"
                return [self._divergence(pair, f"bytecode differs; not decoded: {why}", [])]
            datas.append(data)
        headers = [parse_header(d) for d in datas]
        detail = [
            f"{side}: {h if isinstance(h, str) else h.describe()}"
            for side, h in zip(("published", "rebuilt"), headers, strict=True)
        ]
        old, new = headers
        if isinstance(old, str) or isinstance(new, str):
            why = "; ".join(
                f"the {s} member is not a .pyc: {h}"
                for s, h in zip(("published", "rebuilt"), headers, strict=True)
                if isinstance(h, str)
            )
            return [self._divergence(pair, f"bytecode differs; not decoded: {why}", detail)]
        if old.magic != new.magic:
            versions = [cpython_for(h.magic) or f"magic {h.magic}" for h in (old, new)]
            summary = f"compiled by another CPython ({versions[0]} vs {versions[1]})"
            return [self._divergence(pair, summary, detail)]
        running = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")
        if old.magic != running:
            summary = (
                f"bytecode differs; not decoded: compiled by {old.cpython} (magic {old.magic}), "
                f"which this interpreter ({sys.version_info.major}.{sys.version_info.minor}) "
                "cannot load"
            )
            return [self._divergence(pair, summary, detail)]
        if old.invalidation is None or new.invalidation is None:
            summary = "bytecode differs; not decoded: header flags no CPython writes"
            return [self._divergence(pair, summary, detail)]
        pub, reb = decode_pair(datas[0][HEADER_SIZE:], datas[1][HEADER_SIZE:], self.limits)
        if isinstance(pub, str) or isinstance(reb, str):
            whys = {
                f"the {s} bytecode {w}"
                for s, w in (("published", pub), ("rebuilt", reb))
                if isinstance(w, str)
            }
            if isinstance(pub, str) and pub == reb:
                whys = {f"the bytecode {pub}"}
            return [self._divergence(pair, "bytecode differs; " + "; ".join(sorted(whys)), detail)]
        diff = diff_code(pub, reb)
        detail += _code_detail(diff, pub, reb)
        if diff.same_code and not pub.trailing and not reb.trailing:
            explanation = _explanation(old, new, pub, reb)
            summary = (
                f"bytecode: the same code in {wording.plural(diff.compared, 'code object')} "
                "(co_filename set aside)"
            )
            return [self._divergence(pair, summary, detail, explanation)]
        return [self._divergence(pair, _code_summary(diff, pub, reb), detail)]


__all__ = [
    "MAX_PYC_BYTES",
    "BytecodeAnalyser",
    "CodeDiff",
    "Decoded",
    "DecoderLimits",
    "Invalidation",
    "PycHeader",
    "cpython_for",
    "decode_pair",
    "diff_code",
    "parse_header",
]
