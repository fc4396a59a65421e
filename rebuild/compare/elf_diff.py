"""Two ELF objects compared aspect by aspect: what differs, in terms a reviewer can weigh.

The comparison yields an :class:`ElfDiff`: the sections that differ (with sizes), the functions
whose own code differs (targets resolved to names, see :mod:`rebuild.compare.elf_code`), symbols
on one side only, the dynamic interface (exports, imports with versions, ``DT_NEEDED``, RPATH),
the toolchain each side names, and the build environment each leaks (paths, ``comp_dir``,
build-id). Each difference is tagged with an :class:`ElfAspect`, which is what the rules in
:mod:`rebuild.compare.elf_rules` explain.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from rebuild.compare import elf_native
from rebuild.compare.elf_code import NORMALISED, Sameness, Symboliser, normalise, same_code
from rebuild.compare.elf_imports import ImportChange, classify_imports
from rebuild.compare.elf_invariants import InvariantFinding, invariant_findings
from rebuild.compare.elf_native import surely_same
from rebuild.compare.elf_read import ElfImage, Section, Symbol
from rebuild.compare.elf_segments import hidden_load


class ElfAspect(enum.Enum):
    """One way two shared objects can differ."""

    CODE = "code"  # a function's own instructions, or a function on one side only
    DATA = "data"  # initialised data, with relocated words masked
    EXPORTS = "exports"  # exported dynamic symbols (the module's interface)
    LINKER_EXPORTS = "linker-exports"  # only linker-made exports (_init, _fini...)
    VAGUE_EXPORTS = "vague-exports"  # weak C++ instantiations (templates, inline functions)
    IMPORTS = "imports"  # an imported symbol only on one side, none of the kinds below
    IMPORT_VERSIONS = "import-versions"  # the same imports bound to other symbol versions
    RUNTIME_IMPORTS = "runtime-imports"  # C-library math/string routines, redirected calls
    SUFFIXED_IMPORTS = "suffixed-imports"  # the same functions under another symbol suffix
    NEEDED = "needed"  # DT_NEEDED
    LIBC_NEEDED = "libc-needed"  # DT_NEEDED differs only in the system C/C++ runtime libraries
    GRAFTED_NEEDED = "grafted-needed"  # published DT_NEEDED names libraries grafted beside it
    RPATH = "rpath"  # RPATH / RUNPATH / SONAME
    GRAFTED_RPATH = "grafted-rpath"  # the published RPATH only reaches its wheel's grafted libs
    SOURCE_FILES = "source-files"  # the source files (STT_FILE symbols) linked in differ
    TEMP_OBJECTS = "temp-objects"  # only in compiler-temporary object names (/tmp/ccXXXXXX.o)
    LOCAL_SYMBOLS = "local-symbols"  # non-function local symbols on one side only
    SECTIONS = "sections"  # a section on one side only
    TOOLCHAIN = "toolchain"  # .comment and build notes name other tools
    BUILD_ID = "build-id"
    PATHS = "paths"  # embedded build paths, DWARF comp_dir
    DEBUG = "debug"  # debug sections
    LAYOUT = "layout"  # tables of addresses that follow from the rest (.dynamic, .eh_frame...)
    INCOMPLETE = "incomplete"  # part of the comparison could not be done
    UNLOADED = "unloaded-sections"  # sections without SHF_ALLOC (not .comment): not loaded
    # Functions whose only difference is CPython's PY_VERSION_HEX of the same major.minor: the
    # interpreter headers built against were another micro release.
    PYTHON_VERSION = "python-version"
    # The toolchain-invariant checks found something only the published object has.
    INVARIANTS = "invariants"
    # Loaded bytes that no allocated section describes, or sections that lie about being loaded.
    HIDDEN = "hidden-load"


# Sections that hold addresses, offsets or tables derived from the rest of the object.
_LAYOUT = re.compile(
    r"^(\.dynamic|\.eh_frame(_hdr)?|\.gnu\.hash|\.hash|\.dynsym|\.dynstr|\.gnu\.version.*|"
    r"\.rela?\..*|\.symtab|\.strtab|\.shstrtab|\.got(\.plt)?|\.plt.*|\.note\.gnu\.property|"
    r"\.gcc_except_table|\.symtab_shndx)$"
)
_TOOLCHAIN_SECTIONS = frozenset({".comment", ".gnu.build.attributes", ".note.gnu.gold-version"})
# Unloaded tables the comparison itself reads (symbols, names, relocations): judged as layout.
_TABLES = re.compile(r"^(\.symtab|\.strtab|\.shstrtab|\.symtab_shndx|\.rela?\..*)$")
# Linkers define these in every shared object; older ones exported _init and _fini.
LINKER_SYMBOLS = frozenset(
    {"_init", "_fini", "_edata", "_end", "__bss_start", "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_"}
)
# glibc 2.34 merged these into libc.so.6; objects linked against an older glibc still need them.
# libc.so.6 itself is in every Python process: a linker may leave it out of an object that calls
# nothing from it.
LIBC_MERGED = frozenset(
    {"libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1", "libanl.so.1", "libc.so.6"}
)
# The C and C++ runtime libraries every manylinux policy takes from the system: a linker records
# them or not as --as-needed (a distribution's default, or not) decides, whatever the code uses.
C_RUNTIME = LIBC_MERGED | {"libstdc++.so.6", "libgcc_s.so.1", "libm.so.6"}
DEFAULT_BUDGET_S = 120.0
# The C runtime's start-up and tear-down stubs (crti.o, crtbegin.o): linked into every object,
# they differ between C runtimes, not between builds of the same source.
CRT_STUBS = frozenset(
    {
        "_init",
        "_fini",
        "__do_global_dtors_aux",
        "frame_dummy",
        "register_tm_clones",
        "deregister_tm_clones",
        "(code in .init outside any function symbol)",
        "(code in .fini outside any function symbol)",
    }
)
# What those stubs may call, jump to or address: each other, the C runtime's own hooks and
# its own data. A register operand is allowed, since what it is loaded from is named here.
CRT_CALLS = CRT_STUBS | frozenset(
    {
        "__cxa_finalize@plt",
        "__cxa_finalize@got",
        "__gmon_start__@plt",
        "__gmon_start__@got",
        "_ITM_deregisterTMCloneTable@got",
        "_ITM_registerTMCloneTable@got",
        "completed.0",
        "completed.1",
        "__TMC_END__",
        "__dso_handle",
        "&__dso_handle@got",
        "rax",
        "rdx",
    }
)
# The assembler's input when gcc compiles through a temporary file: random per build.
_TEMP_OBJECT = re.compile(r"^(?:/tmp/)?cc[A-Za-z0-9]{6}\.o$")
# A library's name up to its version or vendor suffix: lib<stem>[-_.]...
_LIB_STEM = re.compile(r"^lib([A-Za-z0-9]+)")
# auditwheel points RPATH at the wheel's grafted libraries: $ORIGIN/<up...>/<pkg>.libs
_GRAFTED_RPATH = re.compile(r"^\$ORIGIN(?:/\.\.)*/[A-Za-z0-9_.-]+\.libs$")


@dataclass(frozen=True)
class SectionChange:
    name: str
    published: int | None  # size, None when absent
    rebuilt: int | None

    def describe(self) -> str:
        if self.published is None:
            return f"{self.name} only rebuilt ({self.rebuilt:,} bytes)"
        if self.rebuilt is None:
            return f"{self.name} only published ({self.published:,} bytes)"
        if self.published == self.rebuilt:
            return f"{self.name} ({self.published:,} bytes)"
        return f"{self.name} ({self.published:,} -> {self.rebuilt:,} bytes)"


@dataclass(frozen=True)
class FunctionChange:
    name: str
    published: int  # size in bytes
    rebuilt: int
    published_instructions: int
    rebuilt_instructions: int
    # What the published version calls, jumps to or addresses outside itself, named; its
    # syscalls.
    targets: frozenset[str] = frozenset()
    syscalls: int = 0
    # PLT stubs whose every published instruction is what a linker writes there.
    plt_shaped: bool = False


@dataclass(frozen=True)
class Pair:
    """One fact on both sides (comment strings, DT_NEEDED...), in order."""

    published: tuple[str, ...]
    rebuilt: tuple[str, ...]

    @property
    def differs(self) -> bool:
        return self.published != self.rebuilt

    @property
    def only_published(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.published) - set(self.rebuilt)))

    @property
    def only_rebuilt(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.rebuilt) - set(self.published)))


@dataclass(frozen=True)
class ElfDiff:
    machine: str
    sections: tuple[SectionChange, ...]
    functions_compared: int
    functions_identical: int  # the same bytes at the same address
    functions_moved: int  # other bytes, the same instructions once targets are named
    functions_changed: tuple[FunctionChange, ...]
    functions: Pair  # the functions only on one side (names)
    exports: Pair
    imports: Pair  # name@version
    import_change: ImportChange  # the imports on one side only, sorted by what accounts for them
    needed: Pair
    rpath: Pair
    local_symbols: Pair  # non-function locals on one side only
    toolchain: Pair  # .comment strings
    build_notes: Pair
    build_id: Pair
    paths: Pair
    comp_dirs: Pair
    files: Pair  # STT_FILE symbols: the source files linked in
    data_sections: tuple[str, ...]  # data sections whose content differs, relocations masked
    aspects: frozenset[ElfAspect]
    incomplete: tuple[str, ...]  # what could not be compared (marks the diff INCOMPLETE)
    notes: tuple[str, ...] = ()  # limits of the comparison worth knowing
    strong_exports: tuple[str, ...] = ()  # the exports on one side only behind EXPORTS
    producers: Pair = Pair((), ())  # DWARF DW_AT_producer strings (compiler and options)
    # Code was compared function by function (shared objects), so functions_changed is all of
    # it; False for objects whose code is compared section by section.
    code_by_function: bool = False
    findings: tuple[InvariantFinding, ...] = ()  # the toolchain-invariant checks' findings
    # (published, rebuilt) PY_VERSION_HEX constants that alone tell functions apart, e.g.
    # ("3.11.7", "3.11.2"), and those functions.
    python_versions: tuple[tuple[str, str], ...] = ()
    python_version_functions: tuple[str, ...] = ()


# An immediate that may be PY_VERSION_HEX (0x03MMmmLS: L = a, b, c or f for alpha, beta,
# candidate, final): Cython's module init compares the interpreter's with the one compiled in.
_HEX = re.compile(r"\b0x[0-9a-f]+\b")
_RELEASE_LEVELS = {0xA: "a", 0xB: "b", 0xC: "rc", 0xF: ""}


def python_version(value: int) -> str | None:
    """``0x030b07f0`` -> ``"3.11.7"``; None when it is not shaped as PY_VERSION_HEX."""
    major, minor, micro = value >> 24, (value >> 16) & 0xFF, (value >> 8) & 0xFF
    level, serial = (value >> 4) & 0xF, value & 0xF
    if major != 3 or minor > 40 or micro > 40 or level not in _RELEASE_LEVELS:
        return None
    if level == 0xF and serial:
        return None  # a final release has serial 0
    suffix = "" if level == 0xF else f"{_RELEASE_LEVELS[level]}{serial}"
    return f"3.{minor}.{micro}{suffix}"


def version_only(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[tuple[str, str], ...] | None:
    """The PY_VERSION_HEX pairs that alone tell two normalised functions apart, or None.

    Each differing instruction must differ in one immediate only, and both values must be
    PY_VERSION_HEX of the same major.minor: the instruction is the same, the headers' micro
    release is not. Anything else that differs, and the function differs.
    """
    if len(old) != len(new):
        return None
    found: set[tuple[str, str]] = set()
    for a, b in zip(old, new, strict=True):
        if a == b:
            continue
        ours, theirs = _HEX.findall(a), _HEX.findall(b)
        if _HEX.sub("#", a) != _HEX.sub("#", b) or len(ours) != len(theirs):
            return None
        pairs = [(x, y) for x, y in zip(ours, theirs, strict=True) if x != y]
        if len(pairs) != 1:
            return None
        x, y = (int(v, 16) for v in pairs[0])
        published, rebuilt = python_version(x), python_version(y)
        if published is None or rebuilt is None or x >> 16 != y >> 16:
            return None
        found.add((published, rebuilt))
    return tuple(sorted(found)) or None


def _functions(image: ElfImage) -> dict[str, Symbol]:
    executable = [s for s in image.sections if s.executable and s.allocated]
    found: dict[str, Symbol] = {}
    seen: Counter[str] = Counter()
    for symbol in sorted(image.symbols, key=lambda s: (s.value, s.name)):
        if not (symbol.defined and symbol.kind == "STT_FUNC" and symbol.size and symbol.name):
            continue
        if not any(s.addr <= symbol.value < s.addr + s.size for s in executable):
            continue
        seen[symbol.name] += 1
        key = symbol.name if seen[symbol.name] == 1 else f"{symbol.name}#{seen[symbol.name]}"
        found[key] = symbol
    return found


def _sections(published: ElfImage, rebuilt: ElfImage) -> tuple[SectionChange, ...]:
    before = {s.name: s for s in published.sections if s.name}
    after = {s.name: s for s in rebuilt.sections if s.name}
    changes = []
    for name in [*before, *(n for n in after if n not in before)]:
        a, b = before.get(name), after.get(name)
        if a is not None and b is not None and (a.size, a.sha256) == (b.size, b.sha256):
            continue
        changes.append(SectionChange(name, a.size if a else None, b.size if b else None))
    return tuple(changes)


def _masked(
    image: ElfImage, section: Section, offsets: list[int], tables: dict[int, int] | None = None
) -> bytes:
    """The section's bytes with relocated words zeroed (their targets are compared on their
    own) and switch jump tables zeroed (compared through the code that jumps through them)."""
    data = bytearray(image.section_bytes(section))
    width = image.bits // 8
    start = bisect.bisect_left(offsets, section.addr)
    end = bisect.bisect_left(offsets, section.addr + section.size)
    for offset in offsets[start:end]:
        at = offset - section.addr
        data[at : at + width] = bytes(len(data[at : at + width]))
    for addr, length in (tables or {}).items():
        if section.addr <= addr < section.addr + section.size:
            at = addr - section.addr
            data[at : at + length] = bytes(len(data[at : at + length]))
    return bytes(data)


_NONZERO_RUN = re.compile(rb"[^\x00]+")


def _placed(
    image: ElfImage, section: Section, masked: bytes
) -> tuple[dict[str, bytes], tuple[bytes, ...]]:
    """The section's sized data objects by name, and the runs of other non-zero bytes in order.

    Two sections holding the same objects and the same other bytes differ only in where a
    linker placed them (alignment, a C runtime's object before them), which the address tables
    follow.
    """
    objects: dict[str, bytes] = {}
    covered = bytearray(len(masked))
    end = section.addr + section.size
    for symbol in image.symbols:
        if not (symbol.defined and symbol.size and symbol.kind == "STT_OBJECT" and symbol.name):
            continue
        if section.addr <= symbol.value and symbol.value + symbol.size <= end:
            at = symbol.value - section.addr
            objects[symbol.name] = masked[at : at + symbol.size]
            covered[at : at + symbol.size] = b"\x01" * symbol.size
    rest = bytes(b if not c else 0 for b, c in zip(masked, covered, strict=True))
    return objects, tuple(m.group() for m in _NONZERO_RUN.finditer(rest))


def _is_data(section: Section) -> bool:
    return (
        section.allocated
        and not section.executable
        and section.kind in ("SHT_PROGBITS", "SHT_INIT_ARRAY", "SHT_FINI_ARRAY")
        and not _LAYOUT.match(section.name)
        and section.name not in _TOOLCHAIN_SECTIONS
        and not section.name.startswith(".note")
    )


def _data_sections(
    published: ElfImage, rebuilt: ElfImage, names: tuple[Symboliser, Symboliser]
) -> tuple[str, ...]:
    """The data sections whose content differs, masked (see _masked), object by object."""
    pub_offsets = sorted(published.relocated)
    reb_offsets = sorted(rebuilt.relocated)
    after = {s.name: s for s in rebuilt.sections}
    changed = []
    for section in published.sections:
        other = after.get(section.name)
        if other is None or not _is_data(section) or section.sha256 == other.sha256:
            continue
        old = _masked(published, section, pub_offsets, names[0].tables)
        new = _masked(rebuilt, other, reb_offsets, names[1].tables)
        if old != new and _placed(published, section, old) != _placed(rebuilt, other, new):
            changed.append(section.name)
    return tuple(changed)


def _exports(image: ElfImage) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                s.name + (f"@{s.version}" if s.version else "")
                for s in image.dynamic_symbols
                if s.defined and s.name and s.binding in ("STB_GLOBAL", "STB_WEAK")
            }
        )
    )


def _imports(image: ElfImage) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                s.name + (f"@{s.version}" if s.version else "")
                for s in image.dynamic_symbols
                if not s.defined and s.name
            }
        )
    )


def _vague(image: ElfImage) -> frozenset[str]:
    """Weak C++ functions: template instantiations and inline functions a compiler may emit."""
    return frozenset(
        s.name + (f"@{s.version}" if s.version else "")
        for s in image.dynamic_symbols
        if s.defined and s.binding == "STB_WEAK" and s.name.startswith("_Z")
    )


def file_symbols(image: ElfImage) -> tuple[str, ...]:
    """The STT_FILE symbols: the source files the object was linked from."""
    return tuple(sorted({s.name for s in image.symbols if s.kind == "STT_FILE" and s.name}))


def _file_aspect(files: Pair) -> ElfAspect:
    names = set(files.only_published) | set(files.only_rebuilt)
    if all(_TEMP_OBJECT.match(n) for n in names) and (
        sum(1 for n in files.published if _TEMP_OBJECT.match(n))
        == sum(1 for n in files.rebuilt if _TEMP_OBJECT.match(n))
    ):
        return ElfAspect.TEMP_OBJECTS
    return ElfAspect.SOURCE_FILES


def library_stem(name: str) -> str:
    """``libopenblas64_p-r0-0cf96a72.3.23.dev.so`` and ``libopenblas64.so.0`` -> ``openblas64``."""
    match = _LIB_STEM.match(name)
    return match[1] if match else name


def _grafted_needed(needed: Pair, libs: frozenset[str]) -> bool:
    """Every DT_NEEDED only the published object has is a graft of one the rebuild needs.

    auditwheel renames a library it grafts, so the published object needs ``libfoo-<hash>.so``
    where the rebuild needs ``libfoo.so.1``: the published name must be a library grafted into
    its wheel, and the same library (by name stem) must be one the rebuilt object needs. A
    library added to the wheel and loaded by nothing the source builds stays unexplained.
    """
    published = set(needed.only_published)
    rebuilt = {library_stem(n) for n in needed.only_rebuilt}
    return (
        bool(published) and published <= libs and all(library_stem(n) in rebuilt for n in published)
    )


def _grafted_rpath(rpath: Pair, needed_grafted: bool) -> bool:
    """The published RPATH differs only by ``$ORIGIN/…/<pkg>.libs`` (auditwheel's)."""
    if not needed_grafted:
        return False
    for entry in rpath.only_published:
        kind, _, paths = entry.partition("=")
        if kind not in ("RPATH", "RUNPATH") or not all(
            _GRAFTED_RPATH.match(p) for p in paths.split(":")
        ):
            return False
    return True


def import_aspects(change: ImportChange) -> set[ElfAspect]:
    """The aspects an import change shows: one per kind of imported-symbol difference."""
    kinds = (
        (change.versions, ElfAspect.IMPORT_VERSIONS),
        (change.runtime, ElfAspect.RUNTIME_IMPORTS),
        (change.suffixed, ElfAspect.SUFFIXED_IMPORTS),
        (change.other, ElfAspect.IMPORTS),
    )
    return {aspect for present, aspect in kinds if present}


def imports_behind(change: ImportChange, aspects: Collection[ElfAspect]) -> list[str]:
    """The imports behind those of ``aspects`` that :func:`import_aspects` accounts for."""
    return [
        *(change.versions if ElfAspect.IMPORT_VERSIONS in aspects else ()),
        *(change.runtime if ElfAspect.RUNTIME_IMPORTS in aspects else ()),
        *(n for pair in change.suffixed for n in pair if ElfAspect.SUFFIXED_IMPORTS in aspects),
    ]


def _locals(image: ElfImage) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                s.name
                for s in image.symbols
                if s.defined and s.name and s.kind == "STT_OBJECT" and s.binding == "STB_LOCAL"
            }
        )
    )


def _unnamed_code(image: ElfImage, functions: dict[str, Symbol]) -> dict[str, tuple[int, bytes]]:
    """The code no sized function symbol covers (C runtime stubs, stripped code), by name.

    Each run between sized functions is cut where a symbol without a size starts (the C
    runtime's ``_init``, ``deregister_tm_clones``…, which their assembler gives no size) and is
    named after it; a run that starts at no symbol is "(code in SECTION outside any function
    symbol)", numbered after the first. Each keeps its own address, so that its RIP-relative
    operands are named right.
    """
    runs: dict[str, tuple[int, bytes]] = {}
    numbered: dict[str, int] = {}  # name -> the last number given to a run of that name
    spans = sorted((f.value, f.value + f.size) for f in functions.values())
    unsized = sorted(
        {
            (s.value, s.name)
            for s in image.symbols
            if s.defined and s.kind == "STT_FUNC" and not s.size and s.name and s.value
        }
    )
    for section in image.sections:
        if not (section.executable and section.allocated) or section.name in _PLT_SECTIONS:
            continue
        end_of_section = section.addr + section.size
        gaps: list[tuple[int, int]] = []
        cursor = section.addr
        for start, end in spans:
            if end <= section.addr or start >= end_of_section:
                continue
            if start > cursor:
                gaps.append((cursor, start))
            cursor = max(cursor, end)
        if cursor < end_of_section:
            gaps.append((cursor, end_of_section))
        names = dict(unsized)
        values = [v for v, _ in unsized]
        for low, high in gaps:
            inside = values[bisect.bisect_right(values, low) : bisect.bisect_left(values, high)]
            cuts = sorted({low, *inside, high})
            for start, stop in itertools.pairwise(cuts):
                name = names.get(start, f"(code in {section.name} outside any function symbol)")
                # A name met again (two symbols alike, or several anonymous runs) is numbered:
                # no run may hide behind another's name. Numbers only grow, so the search for
                # a free one starts where the last ended.
                count = numbered.get(name, 1)
                key = name if count == 1 else f"{name}#{count}"
                while key in runs:
                    count += 1
                    key = f"{name}#{count}"
                numbered[name] = count
                runs[key] = (start, image.bytes_at(start, stop - start))
    return runs


def _section_aspect(change: SectionChange, section: Section | None) -> ElfAspect:
    """Which aspect a differing section belongs to (its content is judged elsewhere).

    ``section`` is the published one, or the rebuilt one for a section only rebuilt.
    """
    name = change.name
    if section is None:
        return ElfAspect.SECTIONS
    if name.startswith((".debug", ".zdebug")):
        return ElfAspect.DEBUG
    if name in _TOOLCHAIN_SECTIONS:
        return ElfAspect.TOOLCHAIN
    if not section.allocated and not _TABLES.match(name):
        # Whether it is really outside every loaded segment is checked on its own (HIDDEN).
        return ElfAspect.UNLOADED
    if name in _VERSION_TABLES:
        # Which imports carry which symbol versions; the imports and their versions are
        # compared on their own (a one-sided table: one linker versioned its imports).
        return ElfAspect.IMPORT_VERSIONS
    if change.published is None or change.rebuilt is None:
        return ElfAspect.SECTIONS
    if name == ".note.gnu.build-id":
        return ElfAspect.BUILD_ID
    if _LAYOUT.match(name) or section.executable:
        # Code is judged function by function; these hold addresses that follow the code.
        return ElfAspect.LAYOUT
    if _is_data(section):
        # Its content was compared object by object: a real difference is in data_sections.
        return ElfAspect.LAYOUT
    return ElfAspect.DATA


def _carries_nothing(image: ElfImage, names: Symboliser, section: Section) -> bool:
    """A section on one side only that holds nothing but what the rest accounts for.

    Data that is only relocated words (a C runtime's ``__dso_handle``; their targets are
    compared on their own) with no sized object in it, or PLT stubs shaped as a linker writes
    them and jumping through the object's own GOT slots.
    """
    if not section.allocated or section.kind == "SHT_NOBITS":
        return False
    if section.name in _PLT_SECTIONS:
        code = normalise(image.section_bytes(section), section.addr, names, skip_padding=True)
        return code is not None and _plt_shaped(
            code, frozenset(f"{n}@got" for n in image.got.values()) | CRT_CALLS
        )
    if not _is_data(section):
        return False
    masked = _masked(image, section, sorted(image.relocated))
    objects, rest = _placed(image, section, masked)
    # The C runtime's own objects (crtbegin.o's __dso_handle: a word relocated to itself) are
    # nothing of the program's, whichever section a C runtime puts them in (CentOS 7's in
    # .data.rel.ro, Debian's in .data); anything but their relocated words is.
    own = {name: value for name, value in objects.items() if name not in CRT_OBJECTS or any(value)}
    return not own and not rest


def _pair(published: tuple[str, ...], rebuilt: tuple[str, ...]) -> Pair:
    return Pair(tuple(published), tuple(rebuilt))


_SYSCALL = re.compile(r"^(syscall|sysenter|int 0x80)\b")
_PLT_SECTIONS = (".plt", ".plt.sec", ".plt.got")
_VERSION_TABLES = frozenset({".gnu.version", ".gnu.version_r"})
# Objects a C runtime's crtbegin.o defines in data sections: words relocated to themselves.
CRT_OBJECTS = frozenset({"__dso_handle", "__TMC_END__"})
# What a linker writes into a PLT: jumps through GOT slots, pushes of slot indices, the jump
# to the PLT's head, CET landing pads, and padding.
_PLT_INSTRUCTION = re.compile(
    r"^(endbr64 |nop.*|xchg ax, ax|"
    r"(bnd )?jmp (qword ptr )?\[([^\]]+@got|\.got(\.plt)?[+:][^\]]*\]?)\]|"
    r"push (0x[0-9a-f]+|\d+|qword ptr \[\.got(\.plt)?[+:][^\]]*\]?\])|"
    r"(bnd )?jmp (\.plt(\.sec)?[+:].*|\.\+0x[0-9a-f]+))$"
)


_MEMORY = re.compile(r"\[([^\[\]]*(?:\[[^\]]*\][^\[\]]*)?)\]")
# An address made of registers and numbers only: it names nothing.
_REGISTERS = re.compile(r"^[a-z][a-z0-9]*(?:\s*[-+*]\s*(?:0x[0-9a-f]+|\d+|[a-z][a-z0-9]*))*$")


def _targets(instructions: tuple[str, ...]) -> frozenset[str]:
    """What the instructions call, jump to or address outside their own function, by name."""
    found: set[str] = set()
    for instruction in instructions:
        mnemonic, _, operand = instruction.partition(" ")
        if mnemonic == "bnd":
            mnemonic, _, operand = operand.partition(" ")
        if "[" in operand:
            found.update(m for m in _MEMORY.findall(operand) if not _REGISTERS.match(m))
        elif mnemonic.startswith(("call", "j")) and operand[:2] != ".+":
            found.add(operand)
    return frozenset(found)


def _syscalls(instructions: tuple[str, ...]) -> int:
    return sum(1 for i in instructions if _SYSCALL.match(i))


def _plt_shaped(published: tuple[str, ...], slots: frozenset[str]) -> bool:
    """Every published instruction is a PLT's, jumping through no GOT slot but ``slots``."""
    return (
        all(_PLT_INSTRUCTION.match(i) for i in published)
        and {t for t in _targets(published) if t.endswith("@got")} <= slots
    )


def _change(
    name: str, sizes: tuple[int, int], old: tuple[str, ...] | None, new: tuple[str, ...] | None
) -> FunctionChange:
    return FunctionChange(
        name,
        *sizes,
        len(old) if old is not None else 0,
        len(new) if new is not None else 0,
        targets=_targets(old or ()),
        syscalls=_syscalls(old or ()),
    )


def _plt_changes(
    published: ElfImage, rebuilt: ElfImage, names: tuple[Symboliser, Symboliser]
) -> list[FunctionChange]:
    """The PLT sections both objects have, compared as code and checked for their shape."""
    after = {s.name: s for s in rebuilt.sections}
    # The slots the rebuild's PLTs jump through, and the C runtime's own imports.
    slots = CRT_CALLS | {
        t
        for s in rebuilt.sections
        if s.name in _PLT_SECTIONS
        for t in _targets(normalise(rebuilt.section_bytes(s), s.addr, names[1]) or ())
    }
    changes = []
    for section in published.sections:
        other = after.get(section.name)
        if section.name not in _PLT_SECTIONS or other is None:
            continue
        old = normalise(published.section_bytes(section), section.addr, names[0], skip_padding=True)
        new = normalise(rebuilt.section_bytes(other), other.addr, names[1], skip_padding=True)
        if old == new:
            continue
        change = _change(f"(PLT stubs in {section.name})", (section.size, other.size), old, new)
        changes.append(replace(change, plt_shaped=_plt_shaped(old or (), slots)))
    return changes


def _code(
    published: ElfImage,
    rebuilt: ElfImage,
    names: tuple[Symboliser, Symboliser],
    budget_s: float,
    incomplete: list[str],
    python_versions: dict[str, tuple[tuple[str, str], ...]],
) -> tuple[int, int, int, list[FunctionChange], Pair]:
    before, after = _functions(published), _functions(rebuilt)
    deadline_at = time.monotonic() + budget_s

    def deadline() -> bool:
        return time.monotonic() > deadline_at

    normalising = published.machine in NORMALISED and rebuilt.machine in NORMALISED
    if not normalising:
        incomplete.append(
            f"code of {published.machine} objects is compared byte for byte: a moved function "
            "counts as changed"
        )
    names_pub, names_reb = names
    identical = moved = compared = 0
    changed: list[FunctionChange] = []
    pub_code = {k: published.bytes_at(f.value, f.size) for k, f in before.items()}
    reb_code = {k: rebuilt.bytes_at(f.value, f.size) for k, f in after.items()}
    both = [k for k in before if k in after]
    for done, key in enumerate(both):
        a, b = before[key], after[key]
        if pub_code[key] == reb_code[key] and a.value == b.value:
            identical += 1
            compared += 1
            continue
        if deadline():
            incomplete.append(
                f"time limit ({budget_s:.0f} s): {len(both) - done:,} of {len(both):,} "
                "functions not compared"
            )
            break
        compared += 1
        old = new = None
        if normalising:
            # Cheap before deep: the native decoder's "surely the same" first. Where it cannot
            # tell, the function nearly always differs (all 877 such in numpy's largest object
            # did), so it is normalised whole at once: its report needs the instructions, and
            # the normalised instructions decide. Without the native decoder, capstone's
            # instructions are compared as they are decoded first, targets by name.
            if surely_same(
                (pub_code[key], a.value, names_pub),
                (reb_code[key], b.value, names_reb),
                deadline=deadline,
            ):
                moved += 1
                continue
            if not elf_native.AVAILABLE:
                same = same_code(
                    (pub_code[key], a.value, names_pub),
                    (reb_code[key], b.value, names_reb),
                    deadline=deadline,
                )
                if same is None:
                    incomplete.append(f"time limit ({budget_s:.0f} s) reached inside {key}")
                    break
                if same is not Sameness.DIFFERENT:
                    moved += 1
                    continue
            old = normalise(pub_code[key], a.value, names_pub, deadline=deadline)
            new = normalise(reb_code[key], b.value, names_reb, deadline=deadline)
            if old is None or new is None:
                incomplete.append(f"time limit ({budget_s:.0f} s) reached inside {key}")
                break
            if old == new:
                moved += 1
                continue
            versions = version_only(old, new)
            if versions is not None:
                moved += 1
                python_versions.setdefault(key, versions)
                continue
        if old is None:
            # Not decoded (another architecture): what it calls cannot be named.
            old = normalise(pub_code[key], a.value, names_pub) if normalising else None
        changed.append(_change(key, (a.size, b.size), old, new))
    if normalising and not deadline():
        stubs = _plt_changes(published, rebuilt, (names_pub, names_reb))
        compared += len(stubs)
        changed += stubs
        runs_pub, runs_reb = _unnamed_code(published, before), _unnamed_code(rebuilt, after)
        for name in sorted(set(runs_pub) ^ set(runs_reb)):
            # Code under a symbol only one side has: it must differ as a whole.
            side = runs_pub.get(name) or runs_reb[name]
            code = normalise(side[1], side[0], names_pub if name in runs_pub else names_reb)
            if code:
                compared += 1
                sizes = (len(runs_pub[name][1]), 0) if name in runs_pub else (0, len(side[1]))
                kept = code if name in runs_pub else ()
                changed.append(_change(name, sizes, kept, () if name in runs_pub else code))
        for name in sorted(set(runs_pub) & set(runs_reb)):
            (pa, pb), (ra, rb) = runs_pub[name], runs_reb[name]
            same = same_code((pb, pa, names_pub), (rb, ra, names_reb), skip_padding=True)
            if same is Sameness.EMPTY:
                continue
            compared += 1
            if same is Sameness.SAME:
                moved += 1
                continue
            old = normalise(pb, pa, names_pub, skip_padding=True)
            new = normalise(rb, ra, names_reb, skip_padding=True)
            if not old and not new:
                compared -= 1
            elif old == new:
                moved += 1
            else:
                changed.append(_change(name, (len(pb), len(rb)), old, new))
    only = _pair(tuple(sorted(set(before) - set(after))), tuple(sorted(set(after) - set(before))))
    return compared, identical, moved, changed, only


def _deadline_in(seconds: float) -> Callable[[], bool]:
    at = time.monotonic() + seconds

    def deadline() -> bool:
        return time.monotonic() > at

    return deadline


def diff_elf(
    published: ElfImage,
    rebuilt: ElfImage,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    grafted: frozenset[str] = frozenset(),
) -> ElfDiff:
    """Compare two shared objects; bounded by ``budget_s`` seconds of code comparison.

    ``grafted`` names the libraries auditwheel grafted into the published wheel (the file names
    in its ``<pkg>.libs/``): a DT_NEEDED entry naming one of them is the repair's doing.
    """
    incomplete = [f"published: {p}" for p in published.problems] + [
        f"rebuilt: {p}" for p in rebuilt.problems
    ]
    notes: list[str] = []
    for side, image in (("published", published), ("rebuilt", rebuilt)):
        if image.stripped:
            notes.append(
                f"the {side} object has no .symtab: only its exported functions are compared "
                "one by one"
            )
    sections = _sections(published, rebuilt)
    names = (Symboliser(published), Symboliser(rebuilt))
    python_versions: dict[str, tuple[tuple[str, str], ...]] = {}
    compared, identical, moved, changed, only = _code(
        published, rebuilt, names, budget_s, incomplete, python_versions
    )
    exports = _pair(_exports(published), _exports(rebuilt))
    imports = _pair(_imports(published), _imports(rebuilt))
    needed = _pair(published.needed, rebuilt.needed)
    rpath = _pair(
        (*published.rpath, *([f"SONAME={published.soname}"] if published.soname else [])),
        (*rebuilt.rpath, *([f"SONAME={rebuilt.soname}"] if rebuilt.soname else [])),
    )
    local_symbols = _pair(_locals(published), _locals(rebuilt))
    toolchain = _pair(published.comment, rebuilt.comment)
    build_notes = _pair(published.build_notes, rebuilt.build_notes)
    build_id = _pair(
        (published.build_id,) if published.build_id else (),
        (rebuilt.build_id,) if rebuilt.build_id else (),
    )
    paths = _pair(tuple(sorted(published.paths)), tuple(sorted(rebuilt.paths)))
    comp_dirs = _pair(published.comp_dirs, rebuilt.comp_dirs)
    files = _pair(file_symbols(published), file_symbols(rebuilt))
    data = _data_sections(published, rebuilt, names)
    import_change = classify_imports(imports.published, imports.rebuilt)

    aspects: set[ElfAspect] = set()
    if changed or only.differs:
        aspects.add(ElfAspect.CODE)
    if python_versions:
        aspects.add(ElfAspect.PYTHON_VERSION)
    if data:
        aspects.add(ElfAspect.DATA)
    export_names = set(exports.only_published) | set(exports.only_rebuilt)
    vague = _vague(published) | _vague(rebuilt)
    strong: list[str] = []
    for name in sorted(export_names):
        if name.split("@", 1)[0] in LINKER_SYMBOLS:
            aspects.add(ElfAspect.LINKER_EXPORTS)
        elif name in vague:
            aspects.add(ElfAspect.VAGUE_EXPORTS)
        else:
            aspects.add(ElfAspect.EXPORTS)
            strong.append(name)
    aspects |= import_aspects(import_change)
    needed_grafted = _grafted_needed(needed, grafted)
    if needed.differs and needed_grafted:
        # Only the rebuilt side may name other libraries besides: it was not repaired alike.
        aspects.add(ElfAspect.GRAFTED_NEEDED)
    elif needed.differs:
        extra = set(needed.only_published) | set(needed.only_rebuilt)
        same_order = [n for n in needed.published if n not in extra] == [
            n for n in needed.rebuilt if n not in extra
        ]
        merged = extra <= C_RUNTIME and same_order
        aspects.add(ElfAspect.LIBC_NEEDED if merged else ElfAspect.NEEDED)
    if rpath.differs:
        grafted_rpath = _grafted_rpath(rpath, needed_grafted)
        aspects.add(ElfAspect.GRAFTED_RPATH if grafted_rpath else ElfAspect.RPATH)
    if files.differs:
        aspects.add(_file_aspect(files))
    if local_symbols.differs:
        aspects.add(ElfAspect.LOCAL_SYMBOLS)
    if toolchain.differs or build_notes.differs:
        aspects.add(ElfAspect.TOOLCHAIN)
    if build_id.differs:
        aspects.add(ElfAspect.BUILD_ID)
    if paths.differs or comp_dirs.differs:
        aspects.add(ElfAspect.PATHS)
    by_name = {s.name: s for s in rebuilt.sections} | {s.name: s for s in published.sections}
    for change in sections:
        aspect = _section_aspect(change, by_name.get(change.name))
        owner, named = (published, names[0]) if change.rebuilt is None else (rebuilt, names[1])
        if aspect is ElfAspect.SECTIONS and _carries_nothing(owner, named, by_name[change.name]):
            # A section only one linker or C runtime makes, holding nothing of its own.
            aspect = ElfAspect.LAYOUT
        aspects.add(aspect)
    producers = _pair(published.producers, rebuilt.producers)
    # Imports paired under another symbol suffix (elf-symbol-suffix) are one function to the
    # call check too.
    aliases = {p.split("@", 1)[0]: r.split("@", 1)[0] for p, r in import_change.suffixed}
    findings = invariant_findings(
        published, rebuilt, deadline=_deadline_in(budget_s), aliases=aliases
    )
    if findings:
        aspects.add(ElfAspect.INVARIANTS)
    hidden = hidden_load(published)
    if hidden:
        aspects.add(ElfAspect.HIDDEN)
        incomplete_notes = [f"published: {h}" for h in hidden]
    else:
        incomplete_notes = []
    if incomplete:
        aspects.add(ElfAspect.INCOMPLETE)
    return ElfDiff(
        machine=published.machine,
        sections=sections,
        functions_compared=compared,
        functions_identical=identical,
        functions_moved=moved,
        functions_changed=tuple(changed),
        functions=only,
        exports=exports,
        imports=imports,
        import_change=import_change,
        needed=needed,
        rpath=rpath,
        local_symbols=local_symbols,
        toolchain=toolchain,
        build_notes=build_notes,
        build_id=build_id,
        paths=paths,
        comp_dirs=comp_dirs,
        files=files,
        data_sections=data,
        aspects=frozenset(aspects),
        incomplete=tuple(incomplete),
        notes=(*notes, *incomplete_notes),
        strong_exports=tuple(strong),
        producers=producers,
        findings=findings,
        code_by_function=True,
        python_versions=tuple(sorted({v for vs in python_versions.values() for v in vs})),
        python_version_functions=tuple(sorted(python_versions)),
    )
