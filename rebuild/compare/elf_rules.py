"""Explanations of ELF divergences, as data: which differing aspects are understood, and why.

An ELF comparison (:class:`~rebuild.compare.elf_diff.ElfDiff`) lists the aspects in which two
shared objects differ. Each rule below covers some aspects under a condition and gives the reason
a person reads. A divergent extension is explained only when every aspect it shows is covered by
a rule that holds; whatever is left is what the reviewer must look at. Nothing here covers code
that differs under the same toolchain, a changed exported interface (beyond weak C++
instantiations), an import outside the C library's pure routines, a changed RPATH other than
auditwheel's, other source files linked in, or an object that could not be compared in full.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rebuild.compare.elf_diff import ElfAspect, ElfDiff

_GCC = re.compile(r"GCC: \((?P<vendor>[^)]*)\) (?P<version>\d+(?:\.\d+)+)(?P<rest>.*)")
_CLANG = re.compile(r"(?:(?P<vendor>[\w ]+?) )?clang version (?P<version>\d+(?:\.\d+)+)")
_VENDOR_IN_REST = re.compile(r"\((?P<vendor>[A-Za-z][A-Za-z ]*?) \d")


def _compiler(comment: str) -> str:
    """``GCC: (GNU) 10.2.1 20210130 (Red Hat 10.2.1-11)`` -> ``GCC 10.2.1 (Red Hat)``."""
    gcc = _GCC.search(comment)
    if gcc is not None:
        vendor = gcc["vendor"].split(" ")[0]
        if vendor == "GNU":
            nested = _VENDOR_IN_REST.search(gcc["rest"])
            vendor = nested["vendor"] if nested else "GNU"
        return f"GCC {gcc['version']} ({vendor})"
    clang = _CLANG.search(comment)
    if clang is not None:
        vendor = f" ({clang['vendor']})" if clang["vendor"] else ""
        return f"clang {clang['version']}{vendor}"
    return comment[:60]


def toolchain_label(comments: Sequence[str]) -> str:
    """The compilers a ``.comment`` section names, short: ``GCC 12.2.0 (Debian)``."""
    if not comments:
        return "no .comment"
    labels = dict.fromkeys(_compiler(c) for c in comments)
    return " + ".join(labels)


def _toolchain_differs(diff: ElfDiff) -> bool:
    return diff.toolchain.differs or diff.build_notes.differs


def _others_besides(*aspects: ElfAspect) -> Callable[[ElfDiff], bool]:
    def others(diff: ElfDiff) -> bool:
        return bool(diff.aspects - set(aspects) - {ElfAspect.INCOMPLETE})

    return others


@dataclass(frozen=True)
class ElfRule:
    id: str
    covers: frozenset[ElfAspect]
    # May name the two toolchains as {published} and {rebuilt}.
    reason: str
    when: Callable[[ElfDiff], bool] | None = None

    def holds(self, diff: ElfDiff) -> bool:
        return bool(self.covers & diff.aspects) and (self.when is None or self.when(diff))


ELF_RULES: tuple[ElfRule, ...] = (
    ElfRule(
        "elf-toolchain",
        frozenset(
            {
                ElfAspect.TOOLCHAIN,
                ElfAspect.CODE,
                ElfAspect.DATA,
                ElfAspect.LOCAL_SYMBOLS,
                ElfAspect.SECTIONS,
                ElfAspect.IMPORT_VERSIONS,
            }
        ),
        "built by another toolchain ({published} vs {rebuilt}): code and layout differences "
        "are expected",
        _toolchain_differs,
    ),
    ElfRule(
        "elf-linker-symbols",
        frozenset({ElfAspect.LINKER_EXPORTS}),
        "older linkers export _init and _fini",
        _toolchain_differs,
    ),
    ElfRule(
        "elf-libc-merged",
        frozenset({ElfAspect.LIBC_NEEDED}),
        "libpthread, libdl and librt are part of libc.so.6 since glibc 2.34, and libc.so.6 is "
        "loaded in every Python process",
        _toolchain_differs,
    ),
    ElfRule(
        "elf-libc-routines",
        frozenset({ElfAspect.RUNTIME_IMPORTS}),
        "another C library and compiler: pure math and string routines, the stack protector's "
        "handler, and calls its headers redirect (__isoc99_*) are imported differently",
        _toolchain_differs,
    ),
    ElfRule(
        "elf-vague-linkage",
        frozenset({ElfAspect.VAGUE_EXPORTS}),
        "weak C++ template and inline functions are emitted where the compiler keeps them",
        _toolchain_differs,
    ),
    ElfRule(
        "elf-symbol-suffix",
        frozenset({ElfAspect.SUFFIXED_IMPORTS}),
        "the same functions under the symbol suffix '{suffix}', from another build of the library",
        lambda diff: diff.needed.differs,
    ),
    ElfRule(
        "elf-auditwheel-graft",
        frozenset({ElfAspect.GRAFTED_NEEDED, ElfAspect.GRAFTED_RPATH}),
        "auditwheel pointed DT_NEEDED and RPATH at the libraries it grafted into the wheel",
    ),
    ElfRule(
        "elf-build-paths",
        frozenset({ElfAspect.PATHS}),
        "build and include paths are recorded in debug info (DWARF comp_dir)",
    ),
    ElfRule(
        "elf-debug-info",
        frozenset({ElfAspect.DEBUG}),
        "debug sections are not loaded at run time",
    ),
    ElfRule(
        "elf-build-id",
        frozenset({ElfAspect.BUILD_ID}),
        "the build-id hashes the object's contents",
        _others_besides(ElfAspect.BUILD_ID),
    ),
    ElfRule(
        "elf-layout",
        frozenset({ElfAspect.LAYOUT}),
        "address tables (.dynamic, .eh_frame, symbols) follow from the rest",
        _others_besides(ElfAspect.LAYOUT),
    ),
)


@dataclass(frozen=True)
class ElfJudgement:
    """Which rules explain a diff, and which aspects none does."""

    rules: tuple[ElfRule, ...]
    unexplained: frozenset[ElfAspect]
    reason: str | None  # the explanation; None when any aspect is unexplained
    partial: str | None = None  # the reasons of the rules that held, when some aspect is not

    @property
    def explained(self) -> bool:
        return self.reason is not None


def stated(rule: ElfRule, diff: ElfDiff) -> str:
    """The rule's reason for ``diff`` (toolchains and symbol suffix filled in), with its id."""
    text = rule.reason.format(
        published=toolchain_label(diff.toolchain.published),
        rebuilt=toolchain_label(diff.toolchain.rebuilt),
        suffix=diff.import_change.suffix,
    )
    return f"{text} [{rule.id}]"


def judge(diff: ElfDiff, rules: Sequence[ElfRule] = ELF_RULES) -> ElfJudgement:
    """Apply the rules: explained only when every differing aspect is covered."""
    holding = tuple(rule for rule in rules if rule.holds(diff))
    covered: set[ElfAspect] = set()
    for rule in holding:
        covered |= rule.covers
    left = frozenset(diff.aspects - covered)
    reasons = "; ".join(stated(rule, diff) for rule in holding)
    if left or not diff.aspects:
        return ElfJudgement(holding, left, None, reasons or None)
    return ElfJudgement(holding, frozenset(), reasons)
