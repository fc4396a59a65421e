"""The ELF analyser: what differs between two compiled extensions, and whether that is innocent.

One divergence per differing shared object: its summary is one line (how many sections and
functions differ, the toolchain on each side, what is unexplained); its detail lists the rest
(functions by name, sections with sizes, the dynamic interface, build paths, the rules applied).
The explanation comes from :mod:`rebuild.compare.elf_rules`. An object that cannot be read as ELF
is still a divergence, unexplained, saying why.
"""

from __future__ import annotations

from collections.abc import Iterable

from rebuild.compare.analysers import MemberKind, MemberPair
from rebuild.compare.elf_diff import DEFAULT_BUDGET_S, ElfAspect, ElfDiff, Pair, diff_elf
from rebuild.compare.elf_read import ElfImage, read_elf
from rebuild.compare.elf_rules import ElfJudgement, judge, toolchain_label
from rebuild.errors import ArchiveError
from rebuild.models import Divergence, DivergenceKind

MiB = 1024 * 1024
# Each side is read whole (sections are sliced from memory, never re-read): larger objects are
# not analysed, and say so.
MAX_ELF_BYTES = 512 * MiB
_LISTED = 20  # names listed per heading in the detail
_NAMED = 3  # names given in the one-line summary


def _clean(name: str) -> str:
    """A name from the object, printable and bounded (it is untrusted)."""
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)
    return text if len(text) <= 120 else text[:117] + "..."


def _names(names: Iterable[str], limit: int) -> str:
    listed = [_clean(n) for n in names]
    shown = ", ".join(listed[:limit])
    return shown + (f" and {len(listed) - limit:,} more" if len(listed) > limit else "")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _unexplained_phrases(diff: ElfDiff, left: frozenset[ElfAspect]) -> list[str]:
    phrases = []
    if ElfAspect.CODE in left:
        names = [c.name for c in diff.functions_changed]
        names += [f"{n} (only published)" for n in diff.functions.only_published]
        names += [f"{n} (only rebuilt)" for n in diff.functions.only_rebuilt]
        phrases.append(f"code differs under the same toolchain: {_names(names, _NAMED)}")
    if ElfAspect.EXPORTS in left:
        parts = []
        if diff.exports.only_published:
            parts.append(f"only published {_names(diff.exports.only_published, _NAMED)}")
        if diff.exports.only_rebuilt:
            parts.append(f"only rebuilt {_names(diff.exports.only_rebuilt, _NAMED)}")
        phrases.append(f"exported symbols differ: {'; '.join(parts)}")
    if ElfAspect.IMPORTS in left or ElfAspect.IMPORT_VERSIONS in left:
        changed = [*diff.imports.only_published, *diff.imports.only_rebuilt]
        phrases.append(f"imported symbols differ: {_names(changed, _NAMED)}")
    if ElfAspect.NEEDED in left or ElfAspect.LIBC_NEEDED in left:
        phrases.append(
            f"DT_NEEDED differs: {_names(diff.needed.published, 5)} vs "
            f"{_names(diff.needed.rebuilt, 5)}"
        )
    if ElfAspect.RPATH in left:
        phrases.append(
            f"RPATH/RUNPATH/SONAME differs: {_names(diff.rpath.published, 3)} vs "
            f"{_names(diff.rpath.rebuilt, 3)}"
        )
    if ElfAspect.DATA in left:
        phrases.append(f"data differs under the same toolchain: {_names(diff.data_sections, 5)}")
    if ElfAspect.INCOMPLETE in left:
        phrases.append("not compared in full")
    rest = left - {
        ElfAspect.CODE,
        ElfAspect.EXPORTS,
        ElfAspect.IMPORTS,
        ElfAspect.IMPORT_VERSIONS,
        ElfAspect.NEEDED,
        ElfAspect.LIBC_NEEDED,
        ElfAspect.RPATH,
        ElfAspect.DATA,
        ElfAspect.INCOMPLETE,
    }
    if rest:
        phrases.append(f"{', '.join(sorted(a.value for a in rest))} differ")
    if not diff.aspects:
        phrases.append("the bytes differ in no aspect compared")
    return phrases


def summary_line(diff: ElfDiff, judgement: ElfJudgement) -> str:
    """One line for the report: sections, functions, attribution, and what is unexplained."""
    code = (
        len(diff.functions_changed)
        + len(diff.functions.only_published)
        + len(diff.functions.only_rebuilt)
    )
    parts = [
        f"ELF: {_plural(len(diff.sections), 'section')} differ",
        f"{code:,} of {diff.functions_compared:,} functions differ in code"
        + (f" ({_names([c.name for c in diff.functions_changed], _NAMED)})" if code else ""),
    ]
    published = toolchain_label(diff.toolchain.published)
    rebuilt = toolchain_label(diff.toolchain.rebuilt)
    if diff.toolchain.differs:
        parts.append(f"toolchain {published} vs {rebuilt}")
    else:
        parts.append(f"same toolchain {published}")
    if not judgement.explained:
        parts.append("UNEXPLAINED: " + "; ".join(_unexplained_phrases(diff, judgement.unexplained)))
    return "; ".join(parts)


def _pair_lines(title: str, pair: Pair, limit: int = _LISTED) -> list[str]:
    if not pair.differs:
        return []
    lines = [f"{title}:"]
    if pair.only_published or pair.only_rebuilt:
        if pair.only_published:
            lines.append(f"  only published: {_names(pair.only_published, limit)}")
        if pair.only_rebuilt:
            lines.append(f"  only rebuilt:   {_names(pair.only_rebuilt, limit)}")
    else:
        lines.append(f"  published: {_names(pair.published, limit)}")
        lines.append(f"  rebuilt:   {_names(pair.rebuilt, limit)}")
    return lines


def detail_text(diff: ElfDiff, judgement: ElfJudgement) -> str:
    """Everything found, as text: the reviewer's second screen."""
    lines = [
        "toolchain:",
        f"  published: {_names(diff.toolchain.published, 5) or 'no .comment'}",
        f"  rebuilt:   {_names(diff.toolchain.rebuilt, 5) or 'no .comment'}",
    ]
    if diff.build_notes.published or diff.build_notes.rebuilt:
        lines += _pair_lines("GNU build notes", diff.build_notes, 8)
    lines.append(
        f"functions: {diff.functions_compared:,} on both sides compared: "
        f"{diff.functions_identical:,} byte-identical, {diff.functions_moved:,} moved only "
        "(the same instructions once call/jump/RIP-relative targets are named), "
        f"{len(diff.functions_changed):,} differ"
    )
    for change in diff.functions_changed[: _LISTED * 5]:
        lines.append(
            f"  differs: {_clean(change.name)} ({change.published:,} -> {change.rebuilt:,} "
            f"bytes, {change.published_instructions:,} -> {change.rebuilt_instructions:,} "
            "instructions)"
        )
    if len(diff.functions_changed) > _LISTED * 5:
        lines.append(f"  … {len(diff.functions_changed) - _LISTED * 5:,} more")
    lines += _pair_lines("functions on one side only", diff.functions, _LISTED * 5)
    lines += _pair_lines("exported dynamic symbols", diff.exports)
    lines += _pair_lines("imported dynamic symbols (name@version)", diff.imports)
    lines += _pair_lines("DT_NEEDED", diff.needed)
    lines += _pair_lines("RPATH/RUNPATH/SONAME", diff.rpath)
    lines += _pair_lines("local data symbols", diff.local_symbols)
    if diff.data_sections:
        lines.append(
            f"data sections whose content differs (relocated words masked): "
            f"{_names(diff.data_sections, _LISTED)}"
        )
    if diff.sections:
        lines.append(f"sections that differ ({len(diff.sections):,}):")
        lines += [f"  {_clean(c.describe())}" for c in diff.sections[: _LISTED * 5]]
    lines += _pair_lines("build-id", diff.build_id)
    lines += _pair_lines("DWARF comp_dir", diff.comp_dirs)
    lines += _pair_lines("embedded paths", diff.paths)
    lines.append(f"aspects: {', '.join(sorted(a.value for a in diff.aspects)) or 'none'}")
    if judgement.explained:
        lines.append(f"rules: {', '.join(r.id for r in judgement.rules)}")
    else:
        lines.append(
            f"unexplained aspects: {', '.join(sorted(a.value for a in judgement.unexplained))}"
        )
    lines += [f"limit: {_clean(note)}" for note in (*diff.incomplete, *diff.notes)]
    return "\n".join(lines)


def _unreadable(pair: MemberPair, analyser: str, why: str) -> Divergence:
    return Divergence(
        kind=DivergenceKind.CONTENT,
        summary=f"ELF content differs; not analysed: {why}",
        member=pair.name,
        published=pair.published.describe(),
        rebuilt=pair.rebuilt.describe(),
        analyser=analyser,
    )


class ElfAnalyser:
    """Shared objects: sections, functions, dynamic interface, toolchain, build environment."""

    name = "elf"
    kinds = frozenset({MemberKind.ELF})

    def __init__(self, *, budget_s: float = DEFAULT_BUDGET_S, max_bytes: int = MAX_ELF_BYTES):
        self.budget_s = budget_s
        self.max_bytes = max_bytes

    def _read(self, pair: MemberPair) -> tuple[ElfImage, ElfImage] | str:
        images = []
        for side, blob in (("published", pair.published), ("rebuilt", pair.rebuilt)):
            data = blob.read_capped(self.max_bytes)
            if data is None:
                return f"the {side} object is {blob.size:,} bytes, over {self.max_bytes:,}"
            try:
                images.append(read_elf(data))
            except ArchiveError as e:
                return f"the {side} object is not valid ELF: {e}"
        return images[0], images[1]

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        read = self._read(pair)
        if isinstance(read, str):
            return [_unreadable(pair, self.name, read)]
        diff = diff_elf(*read, budget_s=self.budget_s)
        judgement = judge(diff)
        return [
            Divergence(
                kind=DivergenceKind.CONTENT,
                summary=summary_line(diff, judgement),
                member=pair.name,
                published=f"{pair.published.describe()}; "
                f"{toolchain_label(diff.toolchain.published)}",
                rebuilt=f"{pair.rebuilt.describe()}; {toolchain_label(diff.toolchain.rebuilt)}",
                detail=detail_text(diff, judgement),
                explanation=judgement.reason,
                analyser=self.name,
                aspects=tuple(sorted(a.value for a in judgement.unexplained)),
            )
        ]
