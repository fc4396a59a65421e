"""The ELF analyser: what differs between two compiled extensions, and whether that is innocent.

One divergence per differing shared object: its summary is one line (how many sections and
functions differ, the toolchain on each side, what is unexplained); its detail lists the rest
(functions by name, sections with sizes, the dynamic interface, build paths, the rules applied).
The explanation comes from :mod:`rebuild.compare.elf_rules`. An object that cannot be read as ELF
is still a divergence, unexplained, saying why.
"""

from __future__ import annotations

from rebuild.compare.analysers import MemberKind, MemberPair, wording
from rebuild.compare.elf_diff import (
    DEFAULT_BUDGET_S,
    ElfAspect,
    ElfDiff,
    Pair,
    diff_elf,
    imports_behind,
)
from rebuild.compare.elf_read import read_elf
from rebuild.compare.elf_rules import ElfJudgement, judge, toolchain_label
from rebuild.models import Divergence, DivergenceKind, Finding, Outcome

MiB = 1024 * 1024
# Each side is read whole (sections are sliced from memory, never re-read): larger objects are
# not analysed, and say so.
MAX_ELF_BYTES = 512 * MiB
_LISTED = 20  # names listed per heading in the detail
_NAMED = 3  # names given in the one-line summary


# Aspects _unexplained_phrases words itself; the rest are named.
_PHRASED = frozenset(
    {
        ElfAspect.CODE,
        ElfAspect.EXPORTS,
        ElfAspect.VAGUE_EXPORTS,
        ElfAspect.IMPORTS,
        ElfAspect.IMPORT_VERSIONS,
        ElfAspect.RUNTIME_IMPORTS,
        ElfAspect.SUFFIXED_IMPORTS,
        ElfAspect.NEEDED,
        ElfAspect.LIBC_NEEDED,
        ElfAspect.GRAFTED_NEEDED,
        ElfAspect.RPATH,
        ElfAspect.GRAFTED_RPATH,
        ElfAspect.SOURCE_FILES,
        ElfAspect.TEMP_OBJECTS,
        ElfAspect.DATA,
        ElfAspect.INCOMPLETE,
        ElfAspect.INVARIANTS,
        ElfAspect.HIDDEN,
    }
)


def _unexplained_phrases(diff: ElfDiff, left: frozenset[ElfAspect]) -> list[str]:
    phrases = []
    if ElfAspect.INVARIANTS in left:
        # What a check found on the published side only leads: it holds whatever the compiler.
        found = [f"{f.check.value} {f.what} in {f.where}" for f in diff.findings]
        phrases.append(f"only in the published object: {wording.names(found, _NAMED)}")
    if ElfAspect.HIDDEN in left:
        phrases.append("loaded bytes the section headers hide")
    if ElfAspect.CODE in left:
        names = [c.name for c in diff.functions_changed]
        names += [f"{n} (only published)" for n in diff.functions.only_published]
        names += [f"{n} (only rebuilt)" for n in diff.functions.only_rebuilt]
        phrases.append(f"code differs under the same compiler: {wording.names(names, _NAMED)}")
    if ElfAspect.EXPORTS in left or ElfAspect.VAGUE_EXPORTS in left:
        parts = []
        if diff.exports.only_published:
            parts.append(f"only published {wording.names(diff.exports.only_published, _NAMED)}")
        if diff.exports.only_rebuilt:
            parts.append(f"only rebuilt {wording.names(diff.exports.only_rebuilt, _NAMED)}")
        phrases.append(f"exported symbols differ: {'; '.join(parts)}")
    change = diff.import_change
    if ElfAspect.IMPORTS in left:
        # The imports nothing accounts for come first: they are what the reviewer must see.
        phrases.append(f"imports only one side has: {wording.names(change.other, _NAMED)}")
    accounted = imports_behind(change, left)
    if accounted:
        phrases.append(f"imported symbols differ: {wording.names(accounted, _NAMED)}")
    if left & {ElfAspect.NEEDED, ElfAspect.LIBC_NEEDED, ElfAspect.GRAFTED_NEEDED}:
        phrases.append(
            f"DT_NEEDED differs: {wording.names(diff.needed.published, 5)} vs "
            f"{wording.names(diff.needed.rebuilt, 5)}"
        )
    if left & {ElfAspect.RPATH, ElfAspect.GRAFTED_RPATH}:
        phrases.append(
            f"RPATH/RUNPATH/SONAME differs: {wording.names(diff.rpath.published, 3)} vs "
            f"{wording.names(diff.rpath.rebuilt, 3)}"
        )
    if ElfAspect.SOURCE_FILES in left:
        files = [f"{n} (only published)" for n in diff.files.only_published]
        files += [f"{n} (only rebuilt)" for n in diff.files.only_rebuilt]
        phrases.append(f"linked source files differ: {wording.names(files, _NAMED)}")
    if ElfAspect.TEMP_OBJECTS in left:
        phrases.append(
            f"compiler-temporary object names differ ({len(diff.files.only_published):,} "
            "random /tmp/cc*.o names)"
        )
    if ElfAspect.DATA in left:
        phrases.append(
            f"data differs under the same compiler: {wording.names(diff.data_sections, 5)}"
        )
    if ElfAspect.INCOMPLETE in left:
        phrases.append("not compared in full")
    rest = left - _PHRASED
    if rest:
        phrases.append(f"{', '.join(sorted(a.value for a in rest))} differ")
    if not diff.aspects:
        phrases.append("the bytes differ in no aspect compared")
    return phrases


def _code_counts(diff: ElfDiff) -> tuple[int, int]:
    """(functions that differ or exist on one side only, all functions on either side)."""
    one_side = len(diff.functions.only_published) + len(diff.functions.only_rebuilt)
    return len(diff.functions_changed) + one_side, diff.functions_compared + one_side


def summary_line(diff: ElfDiff, judgement: ElfJudgement) -> str:
    """One line for the report: sections, functions, attribution, and what is unexplained."""
    code, total = _code_counts(diff)
    parts = [
        f"ELF: {wording.plural(len(diff.sections), 'section')} differ",
        f"{code:,} of {total:,} functions differ in code"
        + (f" ({wording.names([c.name for c in diff.functions_changed], _NAMED)})" if code else ""),
    ]
    published = toolchain_label(diff.toolchain.published)
    rebuilt = toolchain_label(diff.toolchain.rebuilt)
    if diff.toolchain.differs:
        parts.append(f"compilers {published} vs {rebuilt}")
    else:
        parts.append(f"same compiler {published}")
    if judgement.outcome is Outcome.UNEXPLAINED:
        parts.append("UNEXPLAINED: " + "; ".join(_unexplained_phrases(diff, judgement.unexplained)))
    else:
        parts.append(_OUTCOME_WORDS[judgement.outcome])
    return "; ".join(parts)


_OUTCOME_WORDS = {
    Outcome.VERIFIED: "verified: code and data match",
    Outcome.ATTRIBUTED: "attributed, code not verified; the invariant checks found nothing",
    Outcome.EXPLAINED: "explained",
}


def brief_line(diff: ElfDiff) -> str:
    """The summary without names: how much code differs and under which toolchains."""
    code, total = _code_counts(diff)
    toolchains = (
        f"{toolchain_label(diff.toolchain.published)} vs {toolchain_label(diff.toolchain.rebuilt)}"
        if diff.toolchain.differs
        else f"same compiler {toolchain_label(diff.toolchain.published)}"
    )
    return f"{code:,} of {total:,} functions differ · {toolchains}"


def _pair_lines(title: str, pair: Pair, limit: int = _LISTED) -> list[str]:
    if not pair.differs:
        return []
    lines = [f"{title}:"]
    if pair.only_published or pair.only_rebuilt:
        if pair.only_published:
            lines.append(f"  only published: {wording.names(pair.only_published, limit)}")
        if pair.only_rebuilt:
            lines.append(f"  only rebuilt:   {wording.names(pair.only_rebuilt, limit)}")
    else:
        lines.append(f"  published: {wording.names(pair.published, limit)}")
        lines.append(f"  rebuilt:   {wording.names(pair.rebuilt, limit)}")
    return lines


def _import_lines(diff: ElfDiff) -> list[str]:
    """The imports on one side only, sorted by what accounts for them."""
    change = diff.import_change
    lines = []
    if change.versions:
        lines.append(f"  other symbol versions: {wording.names(change.versions, _LISTED)}")
    if change.runtime:
        lines.append(
            f"  C-library routines and redirected calls: {wording.names(change.runtime, _LISTED)}"
        )
    if change.suffixed:
        pairs = [f"{p} = {r}" for p, r in change.suffixed]
        lines.append(f"  the same functions, suffix '{change.suffix}': {wording.names(pairs, 5)}")
    if change.other:
        lines.append(f"  nothing accounts for: {wording.names(change.other, _LISTED)}")
    return lines


def detail_text(diff: ElfDiff, judgement: ElfJudgement) -> str:
    """Everything found, as text: the reviewer's second screen."""
    lines = [
        f"outcome: {judgement.outcome.value}",
        "toolchain (each object's own claim):",
        f"  published: {wording.names(diff.toolchain.published, 5) or 'no .comment'}",
        f"  rebuilt:   {wording.names(diff.toolchain.rebuilt, 5) or 'no .comment'}",
    ]
    if diff.producers.differs:
        lines += _pair_lines("DWARF producers", diff.producers, 3)
    if diff.findings:
        lines.append(f"toolchain-invariant checks, only published ({len(diff.findings):,}):")
        lines += [
            f"  {f.check}: {wording.clean(f.what)} in {wording.clean(f.where)}"
            for f in diff.findings[: _LISTED * 5]
        ]
    else:
        lines.append(
            "toolchain-invariant checks (strings, calls, syscalls, constructors, relocation "
            "targets, export targets): nothing only published"
        )
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
            f"  differs: {wording.clean(change.name)} ({change.published:,} -> {change.rebuilt:,} "
            f"bytes, {change.published_instructions:,} -> {change.rebuilt_instructions:,} "
            "instructions)"
        )
    if len(diff.functions_changed) > _LISTED * 5:
        lines.append(f"  … {len(diff.functions_changed) - _LISTED * 5:,} more")
    lines += _pair_lines("functions on one side only", diff.functions, _LISTED * 5)
    lines += _pair_lines("exported dynamic symbols", diff.exports)
    lines += _pair_lines("imported dynamic symbols (name@version)", diff.imports)
    lines += _import_lines(diff)
    lines += _pair_lines("DT_NEEDED", diff.needed)
    lines += _pair_lines("RPATH/RUNPATH/SONAME", diff.rpath)
    lines += _pair_lines("local data symbols", diff.local_symbols)
    lines += _pair_lines("source files linked in (STT_FILE symbols)", diff.files)
    if diff.data_sections:
        lines.append(
            f"data sections whose content differs (relocated words masked): "
            f"{wording.names(diff.data_sections, _LISTED)}"
        )
    if diff.sections:
        lines.append(f"sections that differ ({len(diff.sections):,}):")
        lines += [f"  {wording.clean(c.describe())}" for c in diff.sections[: _LISTED * 5]]
    lines += _pair_lines("build-id", diff.build_id)
    lines += _pair_lines("DWARF comp_dir", diff.comp_dirs)
    lines += _pair_lines("embedded paths", diff.paths)
    lines.append(f"aspects: {', '.join(sorted(a.value for a in diff.aspects)) or 'none'}")
    if judgement.explained:
        lines.append(f"rules: {', '.join(r.rule for r in judgement.reasons)}")
    else:
        lines.append(
            f"unexplained aspects: {', '.join(sorted(a.value for a in judgement.unexplained))}"
        )
    lines += [f"limit: {wording.clean(note)}" for note in (*diff.incomplete, *diff.notes)]
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

    def analyse(self, pair: MemberPair) -> list[Divergence]:
        read = wording.read_both(pair, self.max_bytes, read_elf, "object", "is not valid ELF")
        if isinstance(read, str):
            return [_unreadable(pair, self.name, read)]
        diff = diff_elf(*read, budget_s=self.budget_s, grafted=pair.published_libs)
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
                outcome=judgement.outcome,
                reasons=judgement.reasons,
                analyser=self.name,
                aspects=tuple(sorted(a.value for a in judgement.unexplained)),
                brief=brief_line(diff),
                symbols=diff.strong_exports if ElfAspect.EXPORTS in judgement.unexplained else (),
                findings=tuple(Finding(f.check.value, f.what, f.where) for f in diff.findings),
            )
        ]
