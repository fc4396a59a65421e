"""Judging an ELF divergence: verified, attributed or unexplained, and on whose evidence.

An ELF comparison (:class:`~rebuild.compare.elf_diff.ElfDiff`) lists the aspects in which two
objects differ. The rules below explain aspects from what the rebuild shows and from facts of the
toolchains (glibc, the linker, the C runtime), each under a condition and with the reason a
person reads. The published object's own claims (``.comment``, build notes, DWARF producer) are
evidence its publisher controls: they may *attribute* a difference to another compiler, never
explain one. So:

- **verified**: code and data match function by function and section by section; whatever else
  differs is covered by rules narrower than "another compiler" (build paths, debug info, the
  C runtime's start-up stubs, the linker's PLT stubs);
- **attributed**: the two objects name different compilers (or flags), so their code and data
  could not be verified; the toolchain-invariant checks (strings, calls, syscalls, constructors,
  relocation targets, export targets) found nothing, and nothing outside code and data differs
  unexplained;
- **unexplained**: anything else, and always an object compared only in part.

No rule explains another rule's residue: the build-id and the address tables are explained only
when a real difference of content causes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rebuild.compare.elf_diff import CRT_CALLS, CRT_STUBS, ElfAspect, ElfDiff
from rebuild.models import Origin, Outcome, Reason

_GCC = re.compile(r"GCC: \((?P<vendor>[^)]*)\) (?P<version>\d+(?:\.\d+)+)(?P<rest>.*)")
_CLANG = re.compile(r"(?:(?P<vendor>[\w ]+?) )?clang version (?P<version>\d+(?:\.\d+)+)")
_SNAPSHOT = re.compile(r"^ (\d{8})\b")
_VENDOR_IN_REST = re.compile(r"\((?P<vendor>[A-Za-z][A-Za-z ]*?) \d")
# In a DW_AT_producer: "GNU C17 10.2.1 20210130 (Red Hat 10.2.1-11) -mtune=generic -O3 ...".
_PRODUCER = re.compile(r"^(?P<language>GNU [A-Za-z+0-9]+) (?P<version>\d+(?:\.\d+)+)")
# Producer options that record where or how verbosely a build ran, or shape only the unwind
# tables (compared as layout), not what code a function gets.
_NEUTRAL_OPTION = re.compile(
    r"^(-g.*|-I.*|-D.*|-U.*|-W.*|-iquote.*|-isystem.*|-f(no-)?diagnostics.*|"
    r"-f(file|debug|macro)-prefix-map=.*|-f(no-)?(asynchronous-)?unwind-tables|-frecord-.*)$"
)
# Options one of several settles: the last one given wins.
_FAMILIES = (
    (re.compile(r"^-O.*$"), "-O"),
    (re.compile(r"^-f(no-)?stack-protector.*$"), "-fstack-protector"),
)


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


def compiler_versions(comments: Sequence[str]) -> frozenset[str]:
    """The compilers a ``.comment`` names, without their vendor: ``{"GCC 10.2.1 20210130"}``.

    A GCC x.y.1 is a snapshot of its release branch, dated: two vendors' 10.2.1 cut weeks apart
    are two compilers, and code they make may differ (measured: Red Hat's 20210130 and Debian's
    20210110 allocate registers differently in msgpack's packer).
    """
    found = set()
    for comment in comments:
        gcc = _GCC.search(comment)
        clang = _CLANG.search(comment)
        if gcc is not None:
            snapshot = _SNAPSHOT.match(gcc["rest"])
            found.add(f"GCC {gcc['version']}" + (f" {snapshot[1]}" if snapshot else ""))
        elif clang is not None:
            found.add(f"clang {clang['version']}")
    return frozenset(found)


def _setting(option: str) -> tuple[str, str]:
    """(what the option sets, to what): ``-fno-wrapv`` -> ("-fwrapv", "off")."""
    for pattern, family in _FAMILIES:
        if pattern.match(option):
            return family, option
    if option.startswith("-fno-"):
        return "-f" + option[5:], "off"
    key, equals, value = option.partition("=")
    if equals:
        return key, "off" if value == "none" else value
    return option, "on"


def code_options(producer: str) -> frozenset[str]:
    """The options of a DW_AT_producer that decide the code, as they end up in effect.

    The last of several settings wins (``-fstack-protector-strong ... -fno-stack-protector``
    is no protector), and a setting turned off is taken as the compiler's default, the same as
    not giving it: erring that way calls two builds alike, so that their code must match.
    """
    settings: dict[str, str] = {}
    for word in producer.split():
        if word.startswith("-") and not _NEUTRAL_OPTION.match(word):
            key, value = _setting(word)
            settings[key] = value
    options = {
        key if value == "on" else value if value.startswith("-") else f"{key}={value}"
        for key, value in settings.items()
        if value not in ("off", "-fno-stack-protector")
    }
    match = _PRODUCER.match(producer)
    if match is not None:
        options.add(f"{match['language']} {match['version']}")
    return frozenset(options)


def claims_differ(diff: ElfDiff) -> str | None:
    """How the two objects' own claims name other compilers or flags; None when they agree.

    The published side's claims are its publisher's word: what this returns may attribute a
    difference, never explain it. Without any claim on the published side there is nothing to
    attribute to.
    """
    published = compiler_versions(diff.toolchain.published)
    rebuilt = compiler_versions(diff.toolchain.rebuilt)
    if not published:
        return None
    if published != rebuilt:
        return (
            f"the published object's .comment names {', '.join(sorted(published))}, the "
            f"rebuild's {', '.join(sorted(rebuilt)) or 'none'}"
        )
    pub_flags = {code_options(p) for p in diff.producers.published}
    reb_flags = {code_options(p) for p in diff.producers.rebuilt}
    if pub_flags and reb_flags and pub_flags != reb_flags:
        only = sorted({o for s in pub_flags for o in s} - {o for s in reb_flags for o in s})
        extra = sorted({o for s in reb_flags for o in s} - {o for s in pub_flags for o in s})
        return (
            "the same compiler with other options, as the DWARF producers say: "
            f"only published {' '.join(only) or '-'}; only rebuilt {' '.join(extra) or '-'}"
        )
    return None


# Aspects a real difference of content shows; build-id and address tables follow from them.
_CONTENT = frozenset(ElfAspect) - {ElfAspect.BUILD_ID, ElfAspect.LAYOUT, ElfAspect.INCOMPLETE}


def _caused(diff: ElfDiff) -> bool:
    return bool(diff.aspects & _CONTENT)


def _crt_residue(diff: ElfDiff) -> bool:
    """Every differing function is a C runtime start-up stub or a PLT stub, and looks like one.

    Only a diff whose code difference is made of such functions: code compared section by
    section (static libraries), or functions on one side only, are never covered.
    """
    changes = diff.functions_changed
    return (
        bool(changes)
        and diff.code_by_function
        and all(
            (c.name in CRT_STUBS and c.targets <= CRT_CALLS and not c.syscalls) or c.plt_shaped
            for c in changes
        )
        and not (diff.functions.only_published or diff.functions.only_rebuilt)
    )


@dataclass(frozen=True)
class ElfRule:
    id: str
    covers: frozenset[ElfAspect]
    reason: str  # may name the symbol suffix as {suffix}
    origin: Origin
    when: Callable[[ElfDiff], bool] | None = None

    def holds(self, diff: ElfDiff) -> bool:
        return bool(self.covers & diff.aspects) and (self.when is None or self.when(diff))


# Each rule rests on what the rebuild shows or on a fact of the toolchains, never on the
# published object's word about itself.
ELF_RULES: tuple[ElfRule, ...] = (
    ElfRule(
        "elf-crt-stubs",
        frozenset({ElfAspect.CODE}),
        "only the C runtime's start-up stubs (_init, __do_global_dtors_aux, frame_dummy, "
        "tm_clones) and the linker's PLT stubs differ, each calling nothing but the C runtime's "
        "own hooks",
        Origin.TOOLCHAIN,
        _crt_residue,
    ),
    ElfRule(
        "elf-not-loaded",
        frozenset({ElfAspect.TOOLCHAIN, ElfAspect.UNLOADED}),
        ".comment, build notes and other sections without SHF_ALLOC lie in no loaded segment",
        Origin.REBUILD,
    ),
    ElfRule(
        "elf-linker-symbols",
        frozenset({ElfAspect.LINKER_EXPORTS}),
        "linkers differ in exporting _init and _fini, which the dynamic loader runs either way",
        Origin.TOOLCHAIN,
    ),
    ElfRule(
        "elf-libc-merged",
        frozenset({ElfAspect.LIBC_NEEDED}),
        "DT_NEEDED differs only in the system's C and C++ runtime (libpthread, libdl and librt "
        "are part of libc.so.6 since glibc 2.34; libstdc++, libgcc_s and libm are recorded or not "
        "as the linker's --as-needed decides), which every manylinux policy takes from the system",
        Origin.TOOLCHAIN,
    ),
    ElfRule(
        "elf-libc-routines",
        frozenset({ElfAspect.RUNTIME_IMPORTS, ElfAspect.IMPORT_VERSIONS}),
        "pure C-library math and string routines, the stack protector's handler, calls glibc's "
        "headers redirect (__isoc99_*) and symbol versions are imported differently from one "
        "glibc to another",
        Origin.TOOLCHAIN,
    ),
    ElfRule(
        "elf-symbol-suffix",
        frozenset({ElfAspect.SUFFIXED_IMPORTS}),
        "the same functions under the symbol suffix '{suffix}', from another build of the library",
        Origin.REBUILD,
        lambda diff: diff.needed.differs,
    ),
    ElfRule(
        "elf-auditwheel-graft",
        frozenset({ElfAspect.GRAFTED_NEEDED, ElfAspect.GRAFTED_RPATH}),
        "auditwheel pointed DT_NEEDED and RPATH at the libraries it grafted into the wheel",
        Origin.REBUILD,
    ),
    ElfRule(
        "elf-build-paths",
        frozenset({ElfAspect.PATHS}),
        "build and include paths are recorded in debug info (DWARF comp_dir)",
        Origin.REBUILD,
    ),
    ElfRule(
        "elf-debug-info",
        frozenset({ElfAspect.DEBUG}),
        "debug sections are not loaded at run time",
        Origin.REBUILD,
    ),
    ElfRule(
        "elf-python-version",
        frozenset({ElfAspect.PYTHON_VERSION}),
        "the only difference in {functions} is CPython's PY_VERSION_HEX ({versions}): the "
        "interpreter headers compiled against were another micro release of the same Python "
        "(Cython's module init compares it with the running interpreter's); every other "
        "instruction is the same",
        Origin.REBUILD,
    ),
    ElfRule(
        "elf-build-id",
        frozenset({ElfAspect.BUILD_ID}),
        "the build-id hashes the object's contents, which differ",
        Origin.REBUILD,
        _caused,
    ),
    ElfRule(
        "elf-layout",
        frozenset({ElfAspect.LAYOUT}),
        "address tables (.dynamic, .eh_frame, symbols, relocations) follow from the rest; their "
        "targets are compared on their own",
        Origin.REBUILD,
        _caused,
    ),
)

# What another compiler changes and no check can verify: only attributed, never explained.
ATTRIBUTABLE = frozenset(
    {
        ElfAspect.CODE,
        ElfAspect.DATA,
        ElfAspect.LOCAL_SYMBOLS,
        ElfAspect.SECTIONS,
        ElfAspect.VAGUE_EXPORTS,
        ElfAspect.TEMP_OBJECTS,
    }
)
ATTRIBUTION_RULE = "elf-another-compiler"


@dataclass(frozen=True)
class ElfJudgement:
    """What became of a diff, which rules hold, and which aspects nothing covers."""

    outcome: Outcome
    reasons: tuple[Reason, ...]
    unexplained: frozenset[ElfAspect]

    @property
    def explained(self) -> bool:
        return self.outcome is not Outcome.UNEXPLAINED


def stated(rule: ElfRule, diff: ElfDiff) -> Reason:
    """The rule's reason for ``diff``, the symbol suffix filled in."""
    versions = ", ".join(f"published {p}, rebuilt {r}" for p, r in diff.python_versions)
    functions = ", ".join(diff.python_version_functions[:3])
    more = len(diff.python_version_functions) - 3
    text = rule.reason.format(
        suffix=diff.import_change.suffix,
        versions=versions,
        functions=functions + (f" and {more} more" if more > 0 else ""),
    )
    return Reason(rule.id, text, rule.origin)


def attribution(diff: ElfDiff, claim: str) -> Reason:
    return Reason(
        ATTRIBUTION_RULE,
        f"code not verified: built by another compiler ({toolchain_label(diff.toolchain.published)}"
        f" vs {toolchain_label(diff.toolchain.rebuilt)}: {claim})",
        Origin.PUBLISHER,
    )


def judge(diff: ElfDiff, rules: Sequence[ElfRule] = ELF_RULES) -> ElfJudgement:
    """Verified, attributed or unexplained (see the module's docstring)."""
    holding = [rule for rule in rules if rule.holds(diff)]
    covered = {aspect for rule in holding for aspect in rule.covers}
    left = set(diff.aspects - covered)
    reasons = [stated(rule, diff) for rule in holding]
    attributed = False
    claim = claims_differ(diff)
    if claim is not None and left & ATTRIBUTABLE:
        left -= ATTRIBUTABLE
        reasons.append(attribution(diff, claim))
        attributed = True
    if left or not diff.aspects:
        return ElfJudgement(Outcome.UNEXPLAINED, tuple(reasons), frozenset(left))
    outcome = Outcome.ATTRIBUTED if attributed else Outcome.VERIFIED
    return ElfJudgement(outcome, tuple(reasons), frozenset())
