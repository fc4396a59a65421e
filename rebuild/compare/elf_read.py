"""Reading one ELF shared object into the facts the ELF comparison needs, safely.

The bytes come from a wheel someone else published: every header field may lie. The header and
the section table are checked against the file's size before pyelftools sees them, every read is
a slice of bytes already in memory (a bogus size cannot make it allocate), counts are capped, and
what had to be skipped is recorded in :attr:`ElfImage.problems` rather than raised. Only a file
that is not ELF at all, or whose headers cannot be trusted, raises :class:`ArchiveError`.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import io
import mmap
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO, cast

from elftools.common.exceptions import DWARFError, ELFError, ELFParseError
from elftools.construct.core import ConstructError
from elftools.elf.dynamic import DynamicSection, DynamicTag
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_ST_INFO_BIND, ENUM_ST_INFO_TYPE
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection, GNUVerSymSection
from elftools.elf.relocation import Relocation as ElfRelocation
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import Section as ElfSection
from elftools.elf.sections import SymbolTableSection

from rebuild.errors import ArchiveError

# What a hostile or broken object can make pyelftools raise while it decodes a structure.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ELFError,
    ELFParseError,
    DWARFError,
    ConstructError,
    struct.error,
    ValueError,
    KeyError,
    IndexError,
    UnicodeDecodeError,
    ZeroDivisionError,
    OverflowError,  # a size too large for an index
    AssertionError,  # pyelftools checks formats with assert statements
)

MAX_SECTIONS = 10_000
# Reading and comparing takes about 0.1 ms a symbol on each side here (100,000: 19 s for a pair):
# past this many, a table is not read, and the object is compared only in part (unexplained).
MAX_SYMBOLS = 300_000
MAX_RELOCATIONS = 4_000_000
MAX_COMPILE_UNITS = 20_000
MAX_PATHS = 5_000
MAX_PATH_SCAN = 64 * 1024 * 1024  # bytes of string-bearing sections searched for paths
MAX_DEBUG = 512 * 1024 * 1024  # DWARF this large is not walked for comp_dir
MAX_INITIALISERS = 10_000  # init/fini array entries kept per object

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_COMPRESSED = 0x800

# Absolute paths of at least two components, as build trees leak them (/tmp/cc*.o, /project/...).
_PATH = re.compile(rb"(?<![A-Za-z0-9_.+@~/-])/(?:[A-Za-z0-9_.+@~-]+/)+[A-Za-z0-9_.+@~-]*")
# Sections whose bytes may hold strings a build writes: paths are searched there only.
_STRING_SECTIONS = re.compile(r"^(\.rodata.*|\.comment|\.debug_str|\.debug_line_str|\.debug_line)$")
# The dynamic tags that say what runs at load and unload, and the array each pair of tags spans.
_INIT_TAGS = frozenset(
    {
        "DT_INIT",
        "DT_FINI",
        "DT_INIT_ARRAY",
        "DT_INIT_ARRAYSZ",
        "DT_PREINIT_ARRAY",
        "DT_PREINIT_ARRAYSZ",
        "DT_FINI_ARRAY",
        "DT_FINI_ARRAYSZ",
    }
)
_ARRAYS = (
    (".preinit_array", "DT_PREINIT_ARRAY", "SHT_PREINIT_ARRAY"),
    (".init_array", "DT_INIT_ARRAY", "SHT_INIT_ARRAY"),
    (".fini_array", "DT_FINI_ARRAY", "SHT_FINI_ARRAY"),
)
_MACHINES = {"EM_386": "i386", "EM_X86_64": "x86_64", "EM_AARCH64": "aarch64", "EM_ARM": "arm"}


@dataclass(frozen=True)
class Section:
    name: str
    kind: str  # SHT_PROGBITS, SHT_NOBITS...
    flags: int
    addr: int
    offset: int
    size: int
    sha256: str  # of the bytes in the file ("" for NOBITS or a section past the end)
    fits: bool  # the section's bytes lie inside the file

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)

    @property
    def allocated(self) -> bool:
        return bool(self.flags & SHF_ALLOC)


@dataclass(frozen=True)
class Symbol:
    name: str
    kind: str  # STT_FUNC, STT_OBJECT...
    binding: str  # STB_GLOBAL, STB_LOCAL, STB_WEAK
    value: int
    size: int
    defined: bool
    version: str | None = None  # dynamic symbols only: GLIBC_2.14...


@dataclass(frozen=True, slots=True)
class Relocation:
    """One dynamic relocation: the loader writes ``symbol + addend`` (or base + addend) there."""

    offset: int  # the address written
    kind: int  # r_type, machine-specific (R_X86_64_RELATIVE is 8)
    symbol: str  # the dynamic symbol it names, "" for none
    addend: int  # r_addend; for REL, the word already at ``offset``


@dataclass(frozen=True)
class Initialiser:
    """One function the loader runs when the object loads or unloads."""

    table: str  # ".init_array", ".preinit_array", ".fini_array", "DT_INIT" or "DT_FINI"
    slot: int  # the address of the array entry (0 for DT_INIT / DT_FINI)
    target: int  # the function's address, as far as the object alone says
    symbol: str = ""  # the dynamic symbol the slot is relocated against, if any


@dataclass(frozen=True)
class ElfImage:
    """What one shared object says about itself."""

    machine: str
    bits: int
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]  # .symtab, or .dynsym when the object is stripped
    dynamic_symbols: tuple[Symbol, ...]
    needed: tuple[str, ...]
    soname: str | None
    rpath: tuple[str, ...]  # DT_RPATH and DT_RUNPATH entries, "RUNPATH=..." / "RPATH=..."
    comment: tuple[str, ...]  # .comment strings: the compilers (and some linkers)
    build_notes: tuple[str, ...]  # GNU build attribute notes, gold's version note
    build_id: str | None
    paths: frozenset[str]  # absolute paths embedded in string-bearing sections
    comp_dirs: tuple[str, ...]  # DWARF DW_AT_comp_dir of each compile unit
    # GOT slot address -> the symbol the dynamic loader writes there.
    got: dict[int, str] = field(default_factory=dict)
    # Relocated words (address -> addend) and every relocated offset: masked when comparing data.
    relative: dict[int, int] = field(default_factory=dict)
    relocated: frozenset[int] = frozenset()
    problems: tuple[str, ...] = ()
    data: bytes = field(default=b"", repr=False, compare=False)
    # Every relocation of the allocated relocation sections, in file order (capped).
    relocations: tuple[Relocation, ...] = field(default=(), repr=False)
    # What runs at load and unload: DT_INIT, the init arrays, DT_FINI, the fini array.
    initialisers: tuple[Initialiser, ...] = ()
    producers: tuple[str, ...] = ()  # DWARF DW_AT_producer of each compile unit

    @property
    def stripped(self) -> bool:
        return not any(s.name == ".symtab" for s in self.sections)

    def section_bytes(self, section: Section) -> bytes:
        if not section.fits or section.kind == "SHT_NOBITS":
            return b""
        return self.data[section.offset : section.offset + section.size]

    def bytes_at(self, addr: int, count: int) -> bytes:
        """Up to ``count`` bytes of the loaded image at virtual address ``addr``."""
        section = self._loaded.at(addr)
        if section is None:
            return b""
        start = section.offset + addr - section.addr
        end = min(start + count, section.offset + section.size)
        return self.data[start:end]

    def section_at(self, addr: int) -> Section | None:
        """The first allocated section (in the section table's order) that holds ``addr``."""
        return self._allocated.at(addr)

    # Both asked once per instruction that names an address: a scan of every section each
    # time was a tenth of comparing numpy's largest object.
    @functools.cached_property
    def _loaded(self) -> _AddressMap:
        return _AddressMap(
            s for s in self.sections if s.allocated and s.fits and s.kind != "SHT_NOBITS"
        )

    @functools.cached_property
    def _allocated(self) -> _AddressMap:
        return _AddressMap(s for s in self.sections if s.allocated)


class _AddressMap:
    """Address -> the first of some sections that holds it, by bisection.

    Sections may overlap (``.tbss`` lies over what follows it): the address space is cut at
    every section's start and end, and each piece keeps the first section that covers it, as a
    scan in table order would find.
    """

    def __init__(self, sections: Iterable[Section]) -> None:
        ordered = [s for s in sections if s.size > 0]
        # One sweep over the cuts (a hostile object may have 10,000 sections): the sections
        # open at each piece, by table index in a heap; those already closed leave it lazily.
        starts = sorted(range(len(ordered)), key=lambda i: ordered[i].addr)
        cuts = sorted({a for s in ordered for a in (s.addr, s.addr + s.size)})
        open_: list[int] = []
        owners: list[Section | None] = []
        next_start = 0
        for piece in cuts:
            while next_start < len(starts) and ordered[starts[next_start]].addr <= piece:
                heapq.heappush(open_, starts[next_start])
                next_start += 1
            while open_ and ordered[open_[0]].addr + ordered[open_[0]].size <= piece:
                heapq.heappop(open_)
            owners.append(ordered[open_[0]] if open_ else None)
        self._starts = cuts
        self._owners = owners

    def at(self, addr: int) -> Section | None:
        index = bisect.bisect_right(self._starts, addr) - 1
        return self._owners[index] if index >= 0 else None


def _check_headers(data: bytes, size: int | None = None) -> tuple[int, bool]:
    """Validate the identification and section-table bounds; return (bits, little-endian).

    ``data`` holds at least the ELF header; ``size`` is the whole file's (default: len(data)).
    """
    size = len(data) if size is None else size
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise ArchiveError("not an ELF file (no ELF magic)")
    bits = {1: 32, 2: 64}.get(data[4])
    little = {1: True, 2: False}.get(data[5])
    if bits is None or little is None:
        raise ArchiveError(f"ELF header names an unknown class {data[4]} or byte order {data[5]}")
    order = "<" if little else ">"
    header = 64 if bits == 64 else 52
    if len(data) < header:
        raise ArchiveError(f"truncated ELF header: {len(data)} bytes, the header needs {header}")
    if bits == 64:
        shoff, shentsize, shnum = (
            struct.unpack_from(order + "Q", data, 0x28)[0],
            *struct.unpack_from(order + "HH", data, 0x3A),
        )
    else:
        shoff, shentsize, shnum = (
            struct.unpack_from(order + "I", data, 0x20)[0],
            *struct.unpack_from(order + "HH", data, 0x2E),
        )
    if shoff == 0 or shnum == 0:
        raise ArchiveError("the ELF file has no section table (or uses extended numbering)")
    expected = 64 if bits == 64 else 40
    if shentsize != expected:
        raise ArchiveError(f"ELF section header size is {shentsize}, not {expected}")
    if shnum > MAX_SECTIONS:
        raise ArchiveError(f"ELF file claims {shnum:,} sections (limit {MAX_SECTIONS:,})")
    if shoff + shnum * shentsize > size:
        raise ArchiveError(
            f"ELF section table ({shnum} entries at offset {shoff:#x}) lies past the end of "
            f"the {size:,}-byte file"
        )
    return bits, little


def _sections(elf: ELFFile, size: int, problems: list[str]) -> list[tuple[Section, ElfSection]]:
    found = []
    for index in range(elf.num_sections()):
        try:
            raw = elf.get_section(index)
            name = raw.name
        except PARSE_ERRORS as e:
            problems.append(f"section {index} cannot be read: {e}")
            continue
        header = raw.header
        kind = str(header["sh_type"])
        offset, length = int(header["sh_offset"]), int(header["sh_size"])
        fits = kind == "SHT_NOBITS" or offset + length <= size
        if not fits:
            problems.append(
                f"section {name!r} ({length:,} bytes at {offset:#x}) extends past the end of "
                "the file: its bytes are not compared"
            )
        section = Section(
            name=name,
            kind=kind,
            flags=int(header["sh_flags"]),
            addr=int(header["sh_addr"]),
            offset=offset,
            size=length,
            sha256="",
            fits=fits,
        )
        found.append((section, raw))
    return found


def _table_ok(
    section: Section, raw: ElfSection, bits: int, limit: int, problems: list[str]
) -> bool:
    entsize = int(raw.header["sh_entsize"])
    wanted = {
        ("SHT_SYMTAB", 64): 24,
        ("SHT_DYNSYM", 64): 24,
        ("SHT_SYMTAB", 32): 16,
        ("SHT_DYNSYM", 32): 16,
        ("SHT_RELA", 64): 24,
        ("SHT_REL", 64): 16,
        ("SHT_RELA", 32): 12,
        ("SHT_REL", 32): 8,
    }.get((section.kind, bits))
    if not section.fits or (wanted is not None and entsize != wanted):
        problems.append(f"section {section.name!r} is malformed: not read")
        return False
    if wanted is not None and section.size // wanted > limit:
        problems.append(f"section {section.name!r} has over {limit:,} entries: not read")
        return False
    return True


# pyelftools' names of st_info's type and binding, as its own parser maps them (an unknown value
# stays a number): the symbols are read here with struct, not through its parser, which costs
# about 0.1 ms a symbol (numpy's grafted OpenBLAS alone has 60,000).
_SYMBOL_KINDS = {v: k for k, v in ENUM_ST_INFO_TYPE.items() if k != "_default_"}
_SYMBOL_BINDINGS = {v: k for k, v in ENUM_ST_INFO_BIND.items() if k != "_default_"}
_SYMBOL_ENTRY = {  # (bits, little-endian) -> st_name, st_info, st_shndx, st_value, st_size
    (64, True): (struct.Struct("<IBxHQQ"), (0, 1, 2, 3, 4)),
    (64, False): (struct.Struct(">IBxHQQ"), (0, 1, 2, 3, 4)),
    (32, True): (struct.Struct("<IIIBxH"), (0, 3, 4, 1, 2)),
    (32, False): (struct.Struct(">IIIBxH"), (0, 3, 4, 1, 2)),
}


def _symbols(
    elf: ELFFile,
    raw: SymbolTableSection,
    section: Section,
    data: bytes | mmap.mmap,
    shape: tuple[int, bool],
    problems: list[str],
) -> list[Symbol]:
    """The entries of one symbol table (already checked by :func:`_table_ok`), named from the
    string table it links to; a name is cut at that table's end."""
    try:
        names = elf.get_section(int(raw.header["sh_link"]))
        start, length = int(names.header["sh_offset"]), int(names.header["sh_size"])
    except PARSE_ERRORS as e:
        problems.append(f"symbol table {section.name!r} has no string table: not read ({e})")
        return []
    if str(names.header["sh_type"]) != "SHT_STRTAB" or start + length > len(data):
        problems.append(f"symbol table {section.name!r} links to no string table: not read")
        return []
    strings = data[start : start + length]
    entry, order = _SYMBOL_ENTRY[shape]
    table = data[section.offset : section.offset + section.size]
    found = []
    for fields in entry.iter_unpack(table[: len(table) // entry.size * entry.size]):
        name_at, info, shndx, value, size = (fields[i] for i in order)
        end = strings.find(b"\0", name_at)
        name = strings[name_at : end if end != -1 else length] if name_at < length else b""
        found.append(
            Symbol(
                name=name.decode("utf-8", "replace"),
                kind=_SYMBOL_KINDS.get(info & 0xF, str(info & 0xF)),
                binding=_SYMBOL_BINDINGS.get(info >> 4, str(info >> 4)),
                value=value,
                size=size,
                defined=shndx != 0,  # SHN_UNDEF
            )
        )
    return found


def _versions(elf: ELFFile, count: int, problems: list[str]) -> list[str | None]:
    """The version name of each dynamic symbol (GLIBC_2.14), or None."""
    names: dict[int, str] = {}
    versym: GNUVerSymSection | None = None
    try:
        for raw in elf.iter_sections():
            if isinstance(raw, GNUVerNeedSection):
                for _, auxiliaries in raw.iter_versions():
                    for aux in auxiliaries:
                        names[int(aux.entry["vna_other"])] = aux.name
            elif isinstance(raw, GNUVerDefSection):
                for verdef, auxiliaries in raw.iter_versions():
                    first = next(iter(auxiliaries), None)
                    if first is not None:
                        names[int(verdef.entry["vd_ndx"])] = first.name
            elif isinstance(raw, GNUVerSymSection):
                versym = raw
        if versym is None:
            return [None] * count
        result: list[str | None] = []
        for index in range(min(count, versym.num_symbols())):
            ndx = versym.get_symbol(index).entry["ndx"]
            result.append(names.get(ndx & 0x7FFF) if isinstance(ndx, int) else None)
        return result + [None] * (count - len(result))
    except PARSE_ERRORS as e:
        problems.append(f"symbol versions cannot be read: {e}")
        return [None] * count


def _printable(data: bytes, minimum: int = 4) -> Iterator[str]:
    for match in re.finditer(rb"[\x20-\x7e]{%d,}" % minimum, data):
        yield match.group().decode("ascii")


def _note_strings(data: bytes) -> tuple[str, ...]:
    # Build attribute notes (annobin) carry tool versions as short strings among binary fields.
    seen: dict[str, None] = {}
    for text in _printable(data):
        if re.search(r"\d+\.\d+", text) and len(seen) < 20:
            seen.setdefault(text.strip(), None)
    return tuple(seen)


def _attribute_text(unit_die: object, name: str) -> str | None:
    attribute = getattr(unit_die, "attributes", {}).get(name)
    if attribute is not None and isinstance(attribute.value, bytes):
        return str(attribute.value.decode("utf-8", "backslashreplace"))
    return None


def _compile_units(
    elf: ELFFile, sections: list[Section], problems: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The DWARF DW_AT_comp_dir and DW_AT_producer strings of the compile units, in order."""
    debug = [s for s in sections if s.name.startswith((".debug_", ".zdebug_"))]
    if not any(s.name == ".debug_info" for s in debug):
        return (), ()
    if any(s.flags & SHF_COMPRESSED or s.name.startswith(".zdebug") for s in debug):
        # Decompressing would let a small hostile file claim gigabytes.
        problems.append("compressed debug sections: DWARF comp_dir not read")
        return (), ()
    if sum(s.size for s in debug) > MAX_DEBUG or not all(s.fits for s in debug):
        problems.append("debug sections too large or malformed: DWARF comp_dir not read")
        return (), ()
    dirs: dict[str, None] = {}
    producers: dict[str, None] = {}
    try:
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
        for count, unit in enumerate(dwarf.iter_CUs()):
            if count >= MAX_COMPILE_UNITS:
                problems.append(f"over {MAX_COMPILE_UNITS:,} compile units: the rest not read")
                break
            top = unit.get_top_DIE()
            for found, name in ((dirs, "DW_AT_comp_dir"), (producers, "DW_AT_producer")):
                text = _attribute_text(top, name)
                if text is not None:
                    found.setdefault(text, None)
    except PARSE_ERRORS as e:
        problems.append(f"DWARF cannot be read: {e}")
    return tuple(dirs), tuple(producers)


def _word_at(
    sections: list[Section], data: bytes, addr: int, shape: tuple[int, bool]
) -> int | None:
    """The address-sized word the image holds at ``addr``, if it holds one."""
    bits, little = shape
    size = bits // 8
    for section in sections:
        if (
            section.allocated
            and section.fits
            and section.kind != "SHT_NOBITS"
            and section.addr <= addr
            and addr + size <= section.addr + section.size
        ):
            start = section.offset + addr - section.addr
            return int.from_bytes(data[start : start + size], "little" if little else "big")
    return None


def _relocation(
    reloc: ElfRelocation,
    index: int,
    dynsym: list[Symbol],
    data: bytes,
    sections: list[Section],
    shape: tuple[int, bool],
) -> Relocation:
    entry = reloc.entry
    offset = int(entry["r_offset"])
    symbol = dynsym[index].name if 0 < index < len(dynsym) else ""
    if reloc.is_RELA():
        addend = int(entry["r_addend"])
    else:
        # REL keeps its addend in the relocated word itself.
        addend = _word_at(sections, data, offset, shape) or 0
    return Relocation(offset=offset, kind=int(entry["r_info_type"]), symbol=symbol, addend=addend)


def _initialisers(
    sections: list[Section],
    data: bytes,
    shape: tuple[int, bool],
    tags: dict[str, int],
    relocations: list[Relocation],
    problems: list[str],
) -> tuple[Initialiser, ...]:
    """What the loader runs, found where the loader looks: the dynamic tags (sections otherwise)."""
    word = shape[0] // 8
    by_slot = {r.offset: r for r in relocations}
    found: list[Initialiser] = []
    for table, tag in (("DT_INIT", "DT_INIT"), ("DT_FINI", "DT_FINI")):
        if tags.get(tag):
            found.append(Initialiser(table=table, slot=0, target=tags[tag]))
    for table, tag, kind in _ARRAYS:
        spans = [(tags[tag], tags.get(f"{tag}SZ", 0))] if tag in tags else []
        spans = spans or [(s.addr, s.size) for s in sections if s.kind == kind]
        for start, size in spans:
            count = size // word
            if count + len(found) > MAX_INITIALISERS:
                problems.append(f"{table} claims {count:,} entries: not read")
                continue
            for slot in range(start, start + count * word, word):
                reloc = by_slot.get(slot)
                if reloc is not None:
                    found.append(Initialiser(table, slot, reloc.addend, reloc.symbol))
                else:
                    found.append(
                        Initialiser(table, slot, _word_at(sections, data, slot, shape) or 0)
                    )
    return tuple(found)


def _tag_text(tag: DynamicTag, attribute: str) -> str:
    # pyelftools attaches the string a tag names as an attribute named after the tag.
    return str(getattr(tag, attribute, ""))


_NEEDED_ERRORS: tuple[type[BaseException], ...] = (ArchiveError, *PARSE_ERRORS)


def needed_of(data: bytes | IO[bytes]) -> tuple[str, ...]:
    """The DT_NEEDED entries of a shared object, read without the rest; () when unreadable.

    ``data`` is the object's bytes, or a seekable file holding them: pyelftools then reads
    only the headers, the dynamic section and its strings, whatever the object's size.
    """
    try:
        if isinstance(data, bytes):
            _check_headers(data)
            stream: IO[bytes] = io.BytesIO(data)
        else:
            size = data.seek(0, io.SEEK_END)
            data.seek(0)
            _check_headers(data.read(64), size)
            data.seek(0)
            stream = data
        elf = ELFFile(stream)
        dynamic = next((s for s in elf.iter_sections() if isinstance(s, DynamicSection)), None)
        if dynamic is None:
            return ()
        return tuple(
            _tag_text(tag, "needed")
            for tag in dynamic.iter_tags()
            if tag.entry.d_tag == "DT_NEEDED"
        )[:MAX_SECTIONS]
    except _NEEDED_ERRORS:
        return ()


def _opened(
    data: bytes | mmap.mmap, problems: list[str]
) -> tuple[ELFFile, list[tuple[Section, ElfSection]]]:
    """pyelftools' view of ``data`` and its section table; ArchiveError when unparsable."""
    try:
        # An mmap reads, seeks and tells like the file pyelftools wants.
        elf = ELFFile(io.BytesIO(data) if isinstance(data, bytes) else cast(IO[bytes], data))
        return elf, _sections(elf, len(data), problems)
    except PARSE_ERRORS as e:
        raise ArchiveError(f"the ELF headers cannot be parsed: {e}") from e


def _comment_strings(blob: bytes) -> dict[str, None]:
    """The distinct strings of a .comment section, in order."""
    return {
        chunk.decode("utf-8", "backslashreplace").strip(): None
        for chunk in blob.split(b"\0")
        if chunk.strip()
    }


@dataclass(frozen=True)
class CompilerFacts:
    """What an object says of the compiler that built it, and its symbols' names: all that
    planning reads (rebuild.toolchain), without the relocations, hashes and code of a full
    :func:`read_elf`, which cost numpy's largest extension 80 MiB and seconds to build."""

    comment: tuple[str, ...]  # the .comment strings, in order, each once
    producers: tuple[str, ...]  # the DW_AT_producer strings of the compile units
    symbol_names: tuple[str, ...]  # of .symtab, else .dynsym, then .dynsym's


def compiler_facts(data: bytes | mmap.mmap) -> CompilerFacts:
    """The compiler strings and symbol names of one object, read as :func:`read_elf` reads
    them; ArchiveError when its headers cannot be trusted.

    ``data`` may be a memory map of the object: pyelftools then reads it in place, and a
    35 MB library grafted into a wheel is not copied whole again to be parsed.
    """
    bits, little = _check_headers(bytes(data[:64]), len(data))
    problems: list[str] = []
    elf, pairs = _opened(data, problems)
    comment: dict[str, None] = {}
    tables: dict[str, tuple[str, ...]] = {}
    for section, raw in pairs:
        if isinstance(raw, SymbolTableSection) and section.kind not in tables:
            if _table_ok(section, raw, bits, MAX_SYMBOLS, problems):
                tables[section.kind] = tuple(
                    s.name for s in _symbols(elf, raw, section, data, (bits, little), problems)
                )
        elif section.name == ".comment" and section.fits:
            comment.update(_comment_strings(data[section.offset : section.offset + section.size]))
    _, producers = _compile_units(elf, [section for section, _ in pairs], problems)
    dynsym = tables.get("SHT_DYNSYM", ())
    return CompilerFacts(
        comment=tuple(comment),
        producers=producers,
        symbol_names=(*(tables.get("SHT_SYMTAB") or dynsym), *dynsym),
    )


def read_elf(data: bytes) -> ElfImage:
    """The facts of one ELF object; ArchiveError when its headers cannot be trusted."""
    bits, little = _check_headers(data)
    shape = (bits, little)
    problems: list[str] = []
    elf, pairs = _opened(data, problems)
    machine = str(elf.header["e_machine"])
    machine = _MACHINES.get(machine, machine)
    sections = []
    for section, _raw in pairs:
        blob = b""
        if section.fits and section.kind != "SHT_NOBITS":
            blob = data[section.offset : section.offset + section.size]
        sections.append(replace(section, sha256=hashlib.sha256(blob).hexdigest() if blob else ""))
    raws = [raw for _, raw in pairs]
    symtab: list[Symbol] = []
    dynsym: list[Symbol] = []
    for section, raw in zip(sections, raws, strict=True):
        if isinstance(raw, SymbolTableSection) and _table_ok(
            section, raw, bits, MAX_SYMBOLS, problems
        ):
            if section.kind == "SHT_DYNSYM" and not dynsym:
                dynsym = _symbols(elf, raw, section, data, shape, problems)
            elif section.kind == "SHT_SYMTAB" and not symtab:
                symtab = _symbols(elf, raw, section, data, shape, problems)
    versions = _versions(elf, len(dynsym), problems)
    dynsym = [replace(s, version=v) for s, v in zip(dynsym, versions, strict=True)]
    got: dict[int, str] = {}
    relative: dict[int, int] = {}
    relocations: list[Relocation] = []
    capped = False
    dynamic_tags: dict[str, int] = {}
    relocated: set[int] = set()
    needed: list[str] = []
    rpath: list[str] = []
    soname: str | None = None
    comment: dict[str, None] = {}
    notes: dict[str, None] = {}
    build_id: str | None = None
    for section, raw in zip(sections, raws, strict=True):
        blob = data[section.offset : section.offset + section.size] if section.fits else b""
        try:
            if isinstance(raw, RelocationSection) and section.allocated:
                if not _table_ok(section, raw, bits, MAX_RELOCATIONS, problems):
                    continue
                for reloc in raw.iter_relocations():
                    offset, index = int(reloc["r_offset"]), int(reloc["r_info_sym"])
                    relocated.add(offset)
                    if index and index < len(dynsym) and dynsym[index].name:
                        got[offset] = dynsym[index].name
                    elif not index and reloc.is_RELA():
                        relative[offset] = int(reloc["r_addend"])
                    if len(relocations) < MAX_RELOCATIONS:
                        relocations.append(_relocation(reloc, index, dynsym, data, sections, shape))
                    elif not capped:
                        capped = True
                        problems.append(f"over {MAX_RELOCATIONS:,} relocations: the rest not kept")
            elif isinstance(raw, DynamicSection) and section.fits:
                for tag in raw.iter_tags():
                    name = str(tag.entry.d_tag)
                    if name in _INIT_TAGS and isinstance(tag.entry.d_val, int):
                        dynamic_tags.setdefault(name, int(tag.entry.d_val))
                    if name == "DT_NEEDED":
                        needed.append(str(_tag_text(tag, "needed")))
                    elif name == "DT_SONAME":
                        soname = str(_tag_text(tag, "soname"))
                    elif name == "DT_RPATH":
                        rpath.append(f"RPATH={_tag_text(tag, 'rpath')}")
                    elif name == "DT_RUNPATH":
                        rpath.append(f"RUNPATH={_tag_text(tag, 'runpath')}")
            elif section.name == ".comment":
                comment.update(_comment_strings(blob))
            elif section.name in (".gnu.build.attributes", ".note.gnu.gold-version"):
                for text in _note_strings(blob):
                    notes.setdefault(text, None)
            elif section.name == ".note.gnu.build-id" and len(blob) > 16:
                # namesz, descsz, type, "GNU\0", then the id itself.
                descsz = struct.unpack_from("<I", blob, 4)[0]
                build_id = blob[16 : 16 + descsz].hex()
        except PARSE_ERRORS as e:
            problems.append(f"section {section.name!r} cannot be read: {e}")
    comp_dirs, producers = _compile_units(elf, sections, problems)
    paths: set[str] = set()
    scanned = 0
    for section in sections:
        if not _STRING_SECTIONS.match(section.name) or not section.fits:
            continue
        blob = data[section.offset : section.offset + min(section.size, MAX_PATH_SCAN - scanned)]
        scanned += len(blob)
        for match in _PATH.finditer(blob):
            if len(paths) >= MAX_PATHS:
                break
            paths.add(match.group().decode("ascii"))
    return ElfImage(
        machine=machine,
        bits=bits,
        sections=tuple(sections),
        symbols=tuple(symtab or dynsym),
        dynamic_symbols=tuple(dynsym),
        needed=tuple(needed),
        soname=soname,
        rpath=tuple(rpath),
        comment=tuple(comment),
        build_notes=tuple(notes),
        build_id=build_id,
        paths=frozenset(paths),
        comp_dirs=comp_dirs,
        got=got,
        relative=relative,
        relocated=frozenset(relocated),
        problems=tuple(problems),
        data=data,
        relocations=tuple(relocations),
        initialisers=_initialisers(sections, data, shape, dynamic_tags, relocations, problems),
        producers=producers,
    )
