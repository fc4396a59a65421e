"""The static-library analyser: what differs between two ``ar`` archives of objects, and why.

The comparison itself is :mod:`rebuild.compare.ar_diff` (objects paired by name, each judged by
the ELF rules); this module words it: one divergence per archive, a one-line summary, the detail
object by object, and the rules' reasons. An archive that cannot be read is unexplained, saying
why.
"""

from __future__ import annotations

from rebuild.compare.analysers import MemberKind, MemberPair, wording
from rebuild.compare.ar import read_ar
from rebuild.compare.ar_diff import (
    INDEX,
    ORDER,
    ArchiveDiff,
    ObjectDiff,
    diff_archives,
)
from rebuild.compare.elf_diff import ElfAspect, Pair, imports_behind
from rebuild.compare.elf_rules import toolchain_label
from rebuild.models import Divergence, DivergenceKind

MiB = 1024 * 1024
# Each archive is read whole and its objects sliced from memory.
MAX_ARCHIVE_BYTES = 512 * MiB
_DETAILED = 50  # objects described in the detail
_LISTED = 20  # names listed per line of the detail
_NAMED = 3  # names given in the one-line summary


def _toolchains(diff: ArchiveDiff) -> tuple[str, str]:
    published = dict.fromkeys(toolchain_label(o.diff.toolchain.published) for o in diff.objects)
    rebuilt = dict.fromkeys(toolchain_label(o.diff.toolchain.rebuilt) for o in diff.objects)
    return " / ".join(published), " / ".join(rebuilt)


def _object_phrases(obj: ObjectDiff) -> list[str]:
    """What no rule explains in one object, in a few words each."""
    left = obj.judgement.unexplained
    diff = obj.diff
    name = wording.clean(obj.name)
    phrases = []
    if ElfAspect.CODE in left:
        where = list(obj.code_sections)
        calls = obj.internal_calls
        where += [f"calls {n} only published" for n in calls.only_published]
        where += [f"calls {n} only rebuilt" for n in calls.only_rebuilt]
        phrases.append(f"{name}: code differs ({wording.names(where, _NAMED)})")
    if ElfAspect.DATA in left:
        phrases.append(f"{name}: data differs ({wording.names(diff.data_sections, _NAMED)})")
    if left & {ElfAspect.EXPORTS, ElfAspect.VAGUE_EXPORTS}:
        parts = []
        if diff.exports.only_published:
            parts.append(f"only published {wording.names(diff.exports.only_published, _NAMED)}")
        if diff.exports.only_rebuilt:
            parts.append(f"only rebuilt {wording.names(diff.exports.only_rebuilt, _NAMED)}")
        phrases.append(f"{name}: defined symbols differ: {'; '.join(parts)}")
    change = diff.import_change
    if ElfAspect.IMPORTS in left:
        phrases.append(
            f"{name}: undefined symbols only one side has: {wording.names(change.other, 5)}"
        )
    accounted = imports_behind(change, left)
    if accounted:
        phrases.append(f"{name}: undefined symbols differ: {wording.names(accounted, _NAMED)}")
    if ElfAspect.INCOMPLETE in left:
        phrases.append(f"{name}: not compared in full ({wording.names(diff.incomplete, 1)})")
    phrased = {
        ElfAspect.CODE,
        ElfAspect.DATA,
        ElfAspect.EXPORTS,
        ElfAspect.VAGUE_EXPORTS,
        ElfAspect.IMPORTS,
        ElfAspect.IMPORT_VERSIONS,
        ElfAspect.RUNTIME_IMPORTS,
        ElfAspect.SUFFIXED_IMPORTS,
        ElfAspect.INCOMPLETE,
    }
    rest = left - phrased
    if rest:
        phrases.append(f"{name}: {', '.join(sorted(a.value for a in rest))} differ")
    if not diff.aspects:
        phrases.append(f"{name}: the bytes differ in no aspect compared")
    return phrases


def _unexplained_phrases(diff: ArchiveDiff) -> list[str]:
    phrases = []
    if diff.only_published:
        phrases.append(f"objects only published: {wording.names(diff.only_published, _NAMED)}")
    if diff.only_rebuilt:
        phrases.append(f"objects only rebuilt: {wording.names(diff.only_rebuilt, _NAMED)}")
    per_object = [p for o in diff.objects for p in _object_phrases(o)]
    phrases += per_object[:_NAMED]
    if len(per_object) > _NAMED:
        phrases.append(f"{len(per_object) - _NAMED:,} more findings in the detail")
    if ORDER in diff.unexplained:
        phrases.append("the objects are stored in another order")
    if INDEX in diff.unexplained:
        phrases.append("the symbol index differs while every object is identical")
    if not phrases:
        phrases.append("the bytes differ in no aspect compared")
    return phrases


def brief_line(diff: ArchiveDiff) -> str:
    """The summary without names: how many objects differ, under which toolchains."""
    total = len({*(o.name for o in diff.objects), *diff.identical})
    total += len(diff.only_published) + len(diff.only_rebuilt)
    changed = len(diff.objects) + len(diff.only_published) + len(diff.only_rebuilt)
    line = f"{changed:,} of {total:,} objects differ"
    if diff.objects:
        published, rebuilt = _toolchains(diff)
        line += (
            f" · same compiler {published}"
            if published == rebuilt
            else (f" · {published} vs {rebuilt}")
        )
    return line


def summary_line(diff: ArchiveDiff) -> str:
    total = len({*(o.name for o in diff.objects), *diff.identical})
    total += len(diff.only_published) + len(diff.only_rebuilt)
    counts = [
        wording.plural(total, "object"),
        f"{len(diff.identical):,} identical",
        f"{len(diff.objects):,} differ",
    ]
    if diff.only_published:
        counts.append(f"{len(diff.only_published):,} only published")
    if diff.only_rebuilt:
        counts.append(f"{len(diff.only_rebuilt):,} only rebuilt")
    line = "static library: " + ", ".join(counts)
    if diff.objects:
        published, rebuilt = _toolchains(diff)
        same = published == rebuilt
        line += (
            f" ({'same compiler ' + published if same else f'toolchain {published} vs {rebuilt}'})"
        )
    if diff.headers:
        line += f"; member headers differ for {wording.plural(len(diff.headers), 'object')}"
    if diff.unexplained:
        line += "; UNEXPLAINED: " + "; ".join(_unexplained_phrases(diff))
    return line


def _pair_lines(title: str, pair: Pair) -> list[str]:
    lines = []
    if pair.only_published:
        lines.append(f"  {title} only published: {wording.names(pair.only_published, _LISTED)}")
    if pair.only_rebuilt:
        lines.append(f"  {title} only rebuilt:   {wording.names(pair.only_rebuilt, _LISTED)}")
    return lines


def _object_lines(obj: ObjectDiff) -> list[str]:
    diff = obj.diff
    lines = [f"{wording.clean(obj.name)} ({obj.published_size:,} -> {obj.rebuilt_size:,} bytes):"]
    if diff.toolchain.differs or diff.build_notes.differs:
        lines.append(
            f"  toolchain: {wording.names(diff.toolchain.published, 3) or 'no .comment'} vs "
            f"{wording.names(diff.toolchain.rebuilt, 3) or 'no .comment'}"
        )
    if obj.other_sections:
        lines.append(
            "  sections that differ: "
            + wording.names((c.describe() for c in obj.other_sections), _LISTED)
        )
    lines += _pair_lines("defined symbols", diff.exports)
    change = diff.import_change
    if change.versions:
        lines.append(f"  undefined symbols renamed: {wording.names(change.versions, _LISTED)}")
    if change.runtime:
        lines.append(
            "  undefined C-library routines on one side only: "
            f"{wording.names(change.runtime, _LISTED)}"
        )
    if change.suffixed:
        pairs = [f"{p} = {r}" for p, r in change.suffixed]
        lines.append(f"  the same functions, suffix '{change.suffix}': {wording.names(pairs, 5)}")
    if change.other:
        lines.append(
            f"  undefined symbols nothing accounts for: {wording.names(change.other, _LISTED)}"
        )
    lines += _pair_lines("calls to the library's own functions", obj.internal_calls)
    lines += _pair_lines("local symbols", diff.local_symbols)
    lines += _pair_lines("source files (STT_FILE)", diff.files)
    lines += _pair_lines("embedded paths", diff.paths)
    lines += [f"  limit: {wording.clean(note)}" for note in diff.incomplete[:5]]
    lines.append(f"  aspects: {', '.join(sorted(a.value for a in diff.aspects)) or 'none'}")
    if not obj.judgement.explained:
        left = sorted(a.value for a in obj.judgement.unexplained)
        lines.append(f"  unexplained: {', '.join(left) or 'no aspect found'}")
    else:
        lines.append(f"  rules: {', '.join(r.rule for r in obj.judgement.reasons)}")
    return lines


def detail_text(diff: ArchiveDiff) -> str:
    lines = [
        f"objects: {diff.published_count:,} published, {diff.rebuilt_count:,} rebuilt; "
        f"{len(diff.identical):,} identical, {len(diff.objects):,} differ",
    ]
    if diff.only_published:
        lines.append(f"only published: {wording.names(diff.only_published, _LISTED)}")
    if diff.only_rebuilt:
        lines.append(f"only rebuilt: {wording.names(diff.only_rebuilt, _LISTED)}")
    if diff.headers:
        lines.append(
            "member headers differ (ar records them unless run with D): "
            + wording.names(diff.headers, _LISTED)
        )
    if diff.order.differs:
        lines.append(f"order published: {wording.names(diff.order.published, _LISTED)}")
        lines.append(f"order rebuilt:   {wording.names(diff.order.rebuilt, _LISTED)}")
    if diff.index_differs:
        lines.append(
            f"symbol index differs ({diff.index_sizes[0]:,} -> {diff.index_sizes[1]:,} bytes)"
        )
    for obj in diff.objects[:_DETAILED]:
        lines += _object_lines(obj)
    if len(diff.objects) > _DETAILED:
        lines.append(f"… {len(diff.objects) - _DETAILED:,} more differing objects")
    left = diff.unexplained
    lines.append(f"unexplained aspects: {', '.join(sorted(left)) or 'none'}")
    return "\n".join(lines)


class StaticLibraryAnalyser:
    """Static libraries: the objects in them, compared as ELF and judged by the ELF rules."""

    name = "static-library"
    kinds = frozenset({MemberKind.STATIC_LIBRARY})

    def __init__(self, *, max_bytes: int = MAX_ARCHIVE_BYTES) -> None:
        self.max_bytes = max_bytes

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        read = wording.read_both(pair, self.max_bytes, read_ar, "archive")
        if isinstance(read, str):
            return [
                Divergence(
                    kind=DivergenceKind.CONTENT,
                    summary=f"static library differs; not analysed: {wording.clean(read)}",
                    member=pair.name,
                    published=pair.published.describe(),
                    rebuilt=pair.rebuilt.describe(),
                    analyser=self.name,
                    aspects=(ElfAspect.INCOMPLETE.value,),
                )
            ]
        diff = diff_archives(*read)
        left = diff.unexplained
        return [
            Divergence(
                kind=DivergenceKind.CONTENT,
                summary=summary_line(diff),
                member=pair.name,
                published=pair.published.describe(),
                rebuilt=pair.rebuilt.describe(),
                detail=detail_text(diff),
                outcome=diff.outcome,
                reasons=diff.reasons(),
                analyser=self.name,
                aspects=tuple(sorted(left)),
                brief=brief_line(diff),
            )
        ]
