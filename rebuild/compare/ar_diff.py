"""Two ``ar`` archives of relocatable objects compared object by object, under the ELF rules.

A static library (``libnpymath.a``) is an ``ar`` archive of relocatable objects. Its objects are
paired by name (duplicates by position) and each differing pair is compared as ELF: the compiler
named in ``.comment``, the symbols it defines (its interface), the symbols it leaves undefined,
and its sections by name. In a relocatable object every section starts at address 0, so code is
compared section by section, not function by function. Each object is judged by the ELF rules
(:mod:`rebuild.compare.elf_rules`); the archive is explained only when every object is, no object
exists on one side only, and whatever else differs (member headers, the symbol index) follows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rebuild.compare.ar import ArArchive, ArMember
from rebuild.compare.elf_diff import (
    LINKER_SYMBOLS,
    ElfAspect,
    ElfDiff,
    Pair,
    SectionChange,
    file_symbols,
    import_aspects,
)
from rebuild.compare.elf_imports import classify_imports
from rebuild.compare.elf_read import PARSE_ERRORS, ElfImage, Section, read_elf
from rebuild.compare.elf_rules import ElfJudgement, judge
from rebuild.errors import ArchiveError
from rebuild.models import Origin, Outcome, Reason

MiB = 1024 * 1024
# Archives with more objects than this have only their differing objects read for the symbols
# the library defines.
MAX_SCANNED_OBJECTS = 10_000

# Differing objects compared in one archive; the rest are listed as not compared.
MAX_COMPARED_OBJECTS = 5_000
# What a broken object can make the ELF reader raise besides ArchiveError (pyelftools turns a
# section size too large for Python's C integers into OverflowError).
_OBJECT_ERRORS: tuple[type[BaseException], ...] = (*PARSE_ERRORS, OverflowError)

# Archive-level aspects, beside the objects' ElfAspect values.
INDEX = "symbol-index"  # the archive's symbol index (member offsets follow from member sizes)
ORDER = "member-order"  # the same objects in another order
UNACCOUNTED = "unaccounted"  # the bytes differ, yet in nothing compared

_HEADERS_REASON = Reason(
    "ar-member-headers",
    "ar records each member's mtime, uid, gid and mode unless run in deterministic mode (D)",
    Origin.TOOLCHAIN,
)
_INDEX_REASON = Reason(
    "ar-symbol-index",
    "the archive's symbol index lists member offsets, which follow from the members' sizes "
    "and order",
)

# Sections holding tables derived from the rest of the object: symbols, relocations, unwind
# tables, section groups.
_LAYOUT = re.compile(
    r"^(\.symtab|\.strtab|\.shstrtab|\.symtab_shndx|\.rela?\..*|\.eh_frame|\.group|"
    r"\.note\.gnu\.property|\.gcc_except_table.*|\.llvm_addrsig|\.note\.GNU-stack)$"
)
_TOOLCHAIN_SECTIONS = frozenset({".comment", ".gnu.build.attributes", ".note.gnu.gold-version"})
_EMPTY = Pair((), ())


def _keyed(members: Sequence[ArMember]) -> dict[str, ArMember]:
    """Members by name; a repeated name is told apart by its position among its namesakes."""
    seen: Counter[str] = Counter()
    keyed: dict[str, ArMember] = {}
    for member in members:
        seen[member.name] += 1
        count = seen[member.name]
        keyed[member.name if count == 1 else f"{member.name} (#{count})"] = member
    return keyed


def _keyed_sections(image: ElfImage) -> dict[str, Section]:
    seen: Counter[str] = Counter()
    keyed: dict[str, Section] = {}
    for section in image.sections:
        if not section.name:
            continue
        seen[section.name] += 1
        count = seen[section.name]
        keyed[section.name if count == 1 else f"{section.name}#{count}"] = section
    return keyed


def _base(key: str) -> str:
    return key.split("#", 1)[0]


def _relocates_code(key: str, sections: dict[str, Section]) -> bool:
    """``.rela.text`` and the like: relocations name the code's call and data targets."""
    name = _base(key)
    for prefix in (".rela", ".rel"):
        target = sections.get(name[len(prefix) :]) if name.startswith(prefix + ".") else None
        if target is not None and target.executable:
            return True
    return False


def _section_aspect(key: str, section: Section, sections: dict[str, Section]) -> ElfAspect:
    name = _base(key)
    if section.executable or _relocates_code(key, sections):
        return ElfAspect.CODE
    if name in _TOOLCHAIN_SECTIONS:
        return ElfAspect.TOOLCHAIN
    if name.startswith((".debug", ".zdebug")):
        return ElfAspect.DEBUG
    if _LAYOUT.match(name):
        return ElfAspect.LAYOUT
    return ElfAspect.DATA


def _defined(image: ElfImage) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                s.name
                for s in image.symbols
                if s.defined
                and s.name
                and s.binding in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE")
                and s.kind not in ("STT_FILE", "STT_SECTION")
            }
        )
    )


def _vague(image: ElfImage) -> frozenset[str]:
    """Weak C++ definitions: template instantiations and inline functions."""
    return frozenset(
        s.name
        for s in image.symbols
        if s.defined and s.binding == "STB_WEAK" and s.name.startswith("_Z")
    )


def _undefined(image: ElfImage) -> tuple[str, ...]:
    # The linker defines these itself: referring to one imports nothing.
    return tuple(
        sorted({s.name for s in image.symbols if not s.defined and s.name} - LINKER_SYMBOLS)
    )


def _locals(image: ElfImage) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                s.name
                for s in image.symbols
                if s.defined
                and s.name
                and s.binding == "STB_LOCAL"
                and s.kind in ("STT_OBJECT", "STT_FUNC", "STT_NOTYPE")
                # Assembler-local labels (.LC0, constants) are numbered by the compiler.
                and not s.name.startswith(".L")
            }
        )
    )


@dataclass(frozen=True)
class ObjectDiff:
    """How one object of the archive differs from its namesake."""

    name: str
    published_size: int
    rebuilt_size: int
    diff: ElfDiff
    judgement: ElfJudgement
    code_sections: tuple[str, ...]  # executable sections (or their relocations) that differ
    other_sections: tuple[SectionChange, ...]  # the rest that differ
    internal_calls: Pair  # undefined symbols another object of the same library defines


def _unreadable_object(why: str) -> ElfDiff:
    return ElfDiff(
        machine="",
        sections=(),
        functions_compared=0,
        functions_identical=0,
        functions_moved=0,
        functions_changed=(),
        functions=_EMPTY,
        exports=_EMPTY,
        imports=_EMPTY,
        import_change=classify_imports((), ()),
        needed=_EMPTY,
        rpath=_EMPTY,
        local_symbols=_EMPTY,
        toolchain=_EMPTY,
        build_notes=_EMPTY,
        build_id=_EMPTY,
        paths=_EMPTY,
        comp_dirs=_EMPTY,
        files=_EMPTY,
        data_sections=(),
        aspects=frozenset({ElfAspect.INCOMPLETE}),
        incomplete=(why,),
    )


def _section_changes(
    pub: ElfImage, reb: ElfImage
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[SectionChange, ...], set[ElfAspect]]:
    """The sections that differ, by name: code, data, all of them, and their aspects."""
    before, after = _keyed_sections(pub), _keyed_sections(reb)
    code: list[str] = []
    data: list[str] = []
    changes: list[SectionChange] = []
    aspects: set[ElfAspect] = set()
    for key in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and (a.size, a.sha256) == (b.size, b.sha256):
            continue
        if a is not None:
            aspect = _section_aspect(key, a, before)
        elif b is not None:
            aspect = _section_aspect(key, b, after)
        else:
            continue
        if (a is None or b is None) and aspect in (ElfAspect.DATA, ElfAspect.LAYOUT):
            aspect = ElfAspect.SECTIONS
        aspects.add(aspect)
        if aspect is ElfAspect.CODE:
            code.append(key)
        elif aspect is ElfAspect.DATA:
            data.append(key)
        changes.append(SectionChange(key, a.size if a else None, b.size if b else None))
    return tuple(code), tuple(data), tuple(changes), aspects


def _read_object(data: bytes) -> ElfImage | str:
    try:
        return read_elf(data)
    except ArchiveError as e:
        return f"not readable ELF: {e}"
    except _OBJECT_ERRORS as e:
        return f"not readable ELF: {type(e).__name__}: {e}"


def _definitions(images: Iterable[ElfImage | str]) -> frozenset[str]:
    return frozenset(n for i in images if not isinstance(i, str) for n in _defined(i))


def diff_objects(
    name: str,
    published: bytes,
    rebuilt: bytes,
    *,
    library: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset()),
) -> ObjectDiff:
    """Compare two relocatable objects aspect by aspect and judge them by the ELF rules.

    ``library`` holds the symbols each side's archive defines: an undefined symbol among them
    is a call to another object of the same library, not an import.
    """
    pub, reb = _read_object(published), _read_object(rebuilt)
    return _compare(name, (len(published), len(rebuilt)), pub, reb, library)


def _compare(
    name: str,
    sizes: tuple[int, int],
    pub: ElfImage | str,
    reb: ElfImage | str,
    library: tuple[frozenset[str], frozenset[str]],
) -> ObjectDiff:
    if isinstance(pub, str) or isinstance(reb, str):
        side, why = ("published", pub) if isinstance(pub, str) else ("rebuilt", reb)
        diff = _unreadable_object(f"the {side} object is {why}")
        return ObjectDiff(name, *sizes, diff, judge(diff), (), (), _EMPTY)
    incomplete = [f"published: {p}" for p in pub.problems]
    incomplete += [f"rebuilt: {p}" for p in reb.problems]
    if (pub.machine, pub.bits) != (reb.machine, reb.bits):
        incomplete.append(f"built for {pub.machine} and for {reb.machine}: not comparable")
    aspects: set[ElfAspect] = set()

    code, data_sections, others, found = _section_changes(pub, reb)
    aspects |= found

    exports = Pair(_defined(pub), _defined(reb))
    vague = _vague(pub) | _vague(reb)
    for symbol in (*exports.only_published, *exports.only_rebuilt):
        aspects.add(ElfAspect.VAGUE_EXPORTS if symbol in vague else ElfAspect.EXPORTS)
    undefined = (_undefined(pub), _undefined(reb))
    sides = tuple(zip(undefined, library, strict=True))
    imports = Pair(*(tuple(n for n in u if n not in d) for u, d in sides))
    internal = Pair(*(tuple(n for n in u if n in d) for u, d in sides))
    if internal.only_published or internal.only_rebuilt:
        # Which of the library's own functions the code calls is part of the code.
        aspects.add(ElfAspect.CODE)
    change = classify_imports(imports.published, imports.rebuilt, versioned=False)
    aspects |= import_aspects(change)
    local_symbols = Pair(_locals(pub), _locals(reb))
    if local_symbols.only_published or local_symbols.only_rebuilt:
        aspects.add(ElfAspect.LOCAL_SYMBOLS)
    files = Pair(file_symbols(pub), file_symbols(reb))
    if files.differs:
        aspects.add(ElfAspect.SOURCE_FILES)
    toolchain = Pair(pub.comment, reb.comment)
    build_notes = Pair(pub.build_notes, reb.build_notes)
    if toolchain.differs or build_notes.differs:
        aspects.add(ElfAspect.TOOLCHAIN)
    paths = Pair(tuple(sorted(pub.paths)), tuple(sorted(reb.paths)))
    comp_dirs = Pair(pub.comp_dirs, reb.comp_dirs)
    if paths.differs or comp_dirs.differs:
        aspects.add(ElfAspect.PATHS)
    if incomplete:
        aspects.add(ElfAspect.INCOMPLETE)
    diff = ElfDiff(
        machine=pub.machine,
        sections=tuple(others),
        functions_compared=0,
        functions_identical=0,
        functions_moved=0,
        functions_changed=(),
        functions=_EMPTY,
        exports=exports,
        imports=imports,
        import_change=change,
        needed=_EMPTY,
        rpath=_EMPTY,
        local_symbols=local_symbols,
        toolchain=toolchain,
        build_notes=build_notes,
        build_id=_EMPTY,
        paths=paths,
        comp_dirs=comp_dirs,
        files=files,
        data_sections=data_sections,
        aspects=frozenset(aspects),
        incomplete=tuple(incomplete),
        producers=Pair(pub.producers, reb.producers),
    )
    return ObjectDiff(name, *sizes, diff, judge(diff), code, others, internal)


@dataclass(frozen=True)
class ArchiveDiff:
    """Two archives compared member by member."""

    published_count: int
    rebuilt_count: int
    identical: tuple[str, ...]  # the same bytes (perhaps other member headers)
    headers: tuple[str, ...]  # the same bytes, other mtime/uid/gid/mode: "a.o (mtime 1 -> 0)"
    objects: tuple[ObjectDiff, ...]  # pairs whose bytes differ
    only_published: tuple[str, ...]
    only_rebuilt: tuple[str, ...]
    order: Pair  # the shared members' order on each side
    index_differs: bool
    index_sizes: tuple[int, int]

    @property
    def unexplained(self) -> frozenset[str]:
        left = {a.value for o in self.objects for a in o.judgement.unexplained}
        if any(not o.diff.aspects for o in self.objects):
            left.add(UNACCOUNTED)
        if self.only_published or self.only_rebuilt:
            left.add(ElfAspect.SOURCE_FILES.value)
        if self.order.differs:
            left.add(ORDER)
        moved = self.objects or self.only_published or self.only_rebuilt or self.order.differs
        if self.index_differs and not moved:
            left.add(INDEX)
        if not (left or self.objects or self.headers or self.index_differs):
            # Only the framing differs (name table, padding): nothing rules on that.
            left.add(UNACCOUNTED)
        return frozenset(left)

    def reasons(self) -> tuple[Reason, ...]:
        """The rules that explain what differs, each once, in the order first met."""
        found: dict[Reason, None] = {}
        if self.headers:
            found[_HEADERS_REASON] = None
        if self.index_differs:
            found[_INDEX_REASON] = None
        for obj in self.objects:
            for reason in obj.judgement.reasons:
                found[reason] = None
        return tuple(found)

    @property
    def outcome(self) -> Outcome:
        """Unexplained if anything is; attributed if any object is; else verified."""
        if self.unexplained:
            return Outcome.UNEXPLAINED
        if any(o.judgement.outcome is Outcome.ATTRIBUTED for o in self.objects):
            return Outcome.ATTRIBUTED
        return Outcome.VERIFIED


def _header_change(a: ArMember, b: ArMember) -> str:
    parts = []
    for field, x, y in (
        ("mtime", a.mtime, b.mtime),
        ("uid", a.uid, b.uid),
        ("gid", a.gid, b.gid),
        ("mode", a.mode, b.mode),
    ):
        if x != y:
            parts.append(f"{field} {x:o} -> {y:o}" if field == "mode" else f"{field} {x} -> {y}")
    return ", ".join(parts)


def diff_archives(published: ArArchive, rebuilt: ArArchive) -> ArchiveDiff:
    before, after = _keyed(published.members), _keyed(rebuilt.members)
    identical: list[str] = []
    headers: list[str] = []
    objects: list[ObjectDiff] = []
    ordered = [k for k, a in before.items() if k in after and a.data != after[k].data]
    differing = set(ordered[:MAX_COMPARED_OBJECTS])
    skipped = set(ordered[MAX_COMPARED_OBJECTS:])
    # Every object is read for the symbols it defines, up to a bound; past it only the differing
    # ones, which leaves fewer calls recognised as internal, never more.
    every = len(before) + len(after) <= MAX_SCANNED_OBJECTS
    pub_images = {k: _read_object(m.data) for k, m in before.items() if every or k in differing}
    reb_images = {k: _read_object(m.data) for k, m in after.items() if every or k in differing}
    library = (_definitions(pub_images.values()), _definitions(reb_images.values()))
    for key, a in before.items():
        b = after.get(key)
        if b is None:
            continue
        if key in skipped:
            diff = _unreadable_object(f"not compared: over {MAX_COMPARED_OBJECTS:,} objects differ")
            objects.append(ObjectDiff(key, a.size, b.size, diff, judge(diff), (), (), _EMPTY))
            continue
        if key not in differing:
            identical.append(key)
            if a.header != b.header:
                headers.append(f"{key} ({_header_change(a, b)})")
            continue
        sizes = (a.size, b.size)
        objects.append(_compare(key, sizes, pub_images[key], reb_images[key], library))
    shared = set(before) & set(after)
    return ArchiveDiff(
        published_count=len(before),
        rebuilt_count=len(after),
        identical=tuple(identical),
        headers=tuple(headers),
        objects=tuple(objects),
        only_published=tuple(k for k in before if k not in after),
        only_rebuilt=tuple(k for k in after if k not in before),
        order=Pair(tuple(k for k in before if k in shared), tuple(k for k in after if k in shared)),
        index_differs=published.symbol_index != rebuilt.symbol_index,
        index_sizes=(len(published.symbol_index), len(rebuilt.symbol_index)),
    )
