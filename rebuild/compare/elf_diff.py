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
import re
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from rebuild.compare.elf_code import NORMALISED, Symboliser, normalise
from rebuild.compare.elf_imports import ImportChange, classify_imports
from rebuild.compare.elf_read import ElfImage, Section, Symbol


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
    LIBC_NEEDED = "libc-needed"  # DT_NEEDED differs only in glibc's merged-in libraries
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


# Sections that hold addresses, offsets or tables derived from the rest of the object.
_LAYOUT = re.compile(
    r"^(\.dynamic|\.eh_frame(_hdr)?|\.gnu\.hash|\.hash|\.dynsym|\.dynstr|\.gnu\.version.*|"
    r"\.rela?\..*|\.symtab|\.strtab|\.shstrtab|\.got(\.plt)?|\.plt.*|\.note\.gnu\.property|"
    r"\.gcc_except_table|\.symtab_shndx)$"
)
_TOOLCHAIN_SECTIONS = frozenset({".comment", ".gnu.build.attributes", ".note.gnu.gold-version"})
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
DEFAULT_BUDGET_S = 120.0
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


def _masked(image: ElfImage, section: Section, offsets: list[int]) -> bytes:
    data = bytearray(image.section_bytes(section))
    width = image.bits // 8
    start = bisect.bisect_left(offsets, section.addr)
    end = bisect.bisect_left(offsets, section.addr + section.size)
    for offset in offsets[start:end]:
        at = offset - section.addr
        data[at : at + width] = bytes(len(data[at : at + width]))
    return bytes(data)


def _is_data(section: Section) -> bool:
    return (
        section.allocated
        and not section.executable
        and section.kind in ("SHT_PROGBITS", "SHT_INIT_ARRAY", "SHT_FINI_ARRAY")
        and not _LAYOUT.match(section.name)
        and section.name not in _TOOLCHAIN_SECTIONS
        and not section.name.startswith(".note")
    )


def _data_sections(published: ElfImage, rebuilt: ElfImage) -> tuple[str, ...]:
    pub_offsets = sorted(published.relocated)
    reb_offsets = sorted(rebuilt.relocated)
    after = {s.name: s for s in rebuilt.sections}
    changed = []
    for section in published.sections:
        other = after.get(section.name)
        if other is None or not _is_data(section) or section.sha256 == other.sha256:
            continue
        if _masked(published, section, pub_offsets) != _masked(rebuilt, other, reb_offsets):
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
    """Per executable section, the bytes no function symbol covers (crt code, stripped code)."""
    runs: dict[str, tuple[int, bytes]] = {}
    spans = sorted((f.value, f.value + f.size) for f in functions.values())
    for section in image.sections:
        if not (section.executable and section.allocated) or section.name.startswith(".plt"):
            continue
        data = image.section_bytes(section)
        pieces = []
        cursor = section.addr
        for start, end in spans:
            if end <= section.addr or start >= section.addr + section.size:
                continue
            if start > cursor:
                pieces.append(data[cursor - section.addr : start - section.addr])
            cursor = max(cursor, end)
        pieces.append(data[cursor - section.addr :])
        runs[section.name] = (section.addr, b"".join(pieces))
    return runs


def _section_aspect(change: SectionChange, section: Section | None) -> ElfAspect:
    """Which aspect a differing section belongs to (its content is judged elsewhere)."""
    name = change.name
    if section is None or change.rebuilt is None:
        return ElfAspect.SECTIONS
    if name.startswith((".debug", ".zdebug")):
        return ElfAspect.DEBUG
    if name == ".note.gnu.build-id":
        return ElfAspect.BUILD_ID
    if name in _TOOLCHAIN_SECTIONS:
        return ElfAspect.TOOLCHAIN
    if _LAYOUT.match(name) or section.executable:
        # Code is judged function by function; these hold addresses that follow the code.
        return ElfAspect.LAYOUT
    if _is_data(section) and change.published == change.rebuilt:
        # Its masked content was compared: a real difference is in data_sections already.
        return ElfAspect.LAYOUT
    return ElfAspect.DATA


def _pair(published: tuple[str, ...], rebuilt: tuple[str, ...]) -> Pair:
    return Pair(tuple(published), tuple(rebuilt))


def _code(
    published: ElfImage, rebuilt: ElfImage, budget_s: float, incomplete: list[str]
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
    names_pub, names_reb = Symboliser(published), Symboliser(rebuilt)
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
            old = normalise(pub_code[key], a.value, names_pub, deadline=deadline)
            new = normalise(reb_code[key], b.value, names_reb, deadline=deadline)
            if old is None or new is None:
                incomplete.append(f"time limit ({budget_s:.0f} s) reached inside {key}")
                break
            if old == new:
                moved += 1
                continue
        changed.append(
            FunctionChange(
                key,
                a.size,
                b.size,
                len(old) if old is not None else 0,
                len(new) if new is not None else 0,
            )
        )
    if normalising and not deadline():
        runs_pub, runs_reb = _unnamed_code(published, before), _unnamed_code(rebuilt, after)
        for name in sorted(set(runs_pub) & set(runs_reb)):
            (pa, pb), (ra, rb) = runs_pub[name], runs_reb[name]
            old = normalise(pb, pa, names_pub, skip_padding=True)
            new = normalise(rb, ra, names_reb, skip_padding=True)
            if not old and not new:
                continue
            compared += 1
            if old == new:
                moved += 1
            else:
                changed.append(
                    FunctionChange(
                        f"(code in {name} outside any function symbol)",
                        len(pb),
                        len(rb),
                        len(old or ()),
                        len(new or ()),
                    )
                )
    only = _pair(tuple(sorted(set(before) - set(after))), tuple(sorted(set(after) - set(before))))
    return compared, identical, moved, changed, only


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
    compared, identical, moved, changed, only = _code(published, rebuilt, budget_s, incomplete)
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
    data = _data_sections(published, rebuilt)
    import_change = classify_imports(imports.published, imports.rebuilt)

    aspects: set[ElfAspect] = set()
    if changed or only.differs:
        aspects.add(ElfAspect.CODE)
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
        merged = extra <= LIBC_MERGED and same_order
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
    by_name = {s.name: s for s in published.sections}
    for change in sections:
        aspects.add(_section_aspect(change, by_name[change.name] if change.published else None))
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
        notes=tuple(notes),
        strong_exports=tuple(strong),
    )
