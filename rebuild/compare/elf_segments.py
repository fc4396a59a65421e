"""What the dynamic loader maps, checked against what the section headers say.

Every comparison of an object is made section by section, but the loader ignores sections: it
maps the file ranges of the ``PT_LOAD`` segments. A hostile object could keep code or data in a
loaded range that no allocated section describes, or mark a section that lies inside one as not
loaded, and so hide it from every check. :func:`hidden_load` finds both. Gaps of padding between
sections (zero bytes, ``nop`` and ``int3`` fill) are what linkers leave and are allowed.

One tool leaves such bytes honestly: patchelf (which auditwheel runs to set RPATH and rename
DT_NEEDED) moves the dynamic tables it grows into a new segment at the end of the file and
leaves their old copies where they were. Those are allowed only in segments that cannot
execute, only when the object shows that move (dynamic tables placed after all its other
allocated sections), and only as large as a table that moved; :func:`hidden_data` lists them so
that the string check reads them too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rebuild.compare.elf_needed import program_header_table
from rebuild.compare.elf_read import ElfImage

PT_LOAD = 1
PF_X = 0x1
MAX_SEGMENTS = 1_000
# The tables patchelf may move to a segment of its own (its --set-rpath, --replace-needed).
_MOVABLE = frozenset(
    {
        ".interp",
        ".note.gnu.build-id",
        ".gnu.hash",
        ".hash",
        ".dynsym",
        ".dynstr",
        ".gnu.version",
        ".gnu.version_r",
        ".gnu.version_d",
        ".dynamic",
    }
)
_PADDING = frozenset(b"\x00\x90\xcc")
_SHOWN = 5  # findings named before "and N more"


@dataclass(frozen=True)
class Segment:
    offset: int
    size: int  # bytes in the file (p_filesz)
    vaddr: int = 0
    executable: bool = False


@dataclass(frozen=True)
class Region:
    """Loaded bytes no allocated section describes."""

    offset: int
    size: int
    vaddr: int
    executable: bool


def load_segments(data: bytes, bits: int) -> tuple[Segment, ...] | None:
    """The PT_LOAD segments' file ranges; None when the program headers cannot be trusted."""
    little = data[5:6] == b"\x01"
    order = "<" if little else ">"
    try:
        if bits == 64:
            phoff = struct.unpack_from(order + "Q", data, 0x20)[0]
            phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
            layout, wanted = order + "IIQQQQQQ", 56
        else:
            phoff = struct.unpack_from(order + "I", data, 0x1C)[0]
            phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
            layout, wanted = order + "IIIIIIII", 32
    except struct.error:
        return None
    if phnum == 0:
        return ()
    if phentsize != wanted or phnum > MAX_SEGMENTS or phoff + phnum * phentsize > len(data):
        return None
    segments = []
    for index in range(phnum):
        fields = struct.unpack_from(layout, data, phoff + index * phentsize)
        if bits == 64:
            kind, flags, offset, vaddr, size = fields[0], fields[1], fields[2], fields[3], fields[5]
        else:
            kind, offset, vaddr, size, flags = fields[0], fields[1], fields[2], fields[4], fields[6]
        if kind == PT_LOAD and size:
            kept = min(size, max(len(data) - offset, 0))
            segments.append(Segment(offset, kept, vaddr, bool(flags & PF_X)))
    return tuple(segments)


def _headers_end(data: bytes, bits: int) -> int:
    """Where the ELF header and the program header table end (both are loaded, legitimately)."""
    order = "<" if data[5:6] == b"\x01" else ">"
    phoff, phentsize, phnum = program_header_table(data, order, bits)
    return max(64 if bits == 64 else 52, phoff + phentsize * phnum)


def _uncovered(image: ElfImage, segments: tuple[Segment, ...]) -> list[Region]:
    """The loaded byte ranges no allocated section covers, padding left out."""
    data = image.data
    covered: list[tuple[int, int]] = [(0, _headers_end(data, image.bits))]
    for section in image.sections:
        if section.allocated and section.kind != "SHT_NOBITS" and section.fits and section.size:
            covered.append((section.offset, section.offset + section.size))
    regions = []
    for segment in segments:
        cursor = segment.offset
        end = segment.offset + segment.size
        gaps = []
        for start, stop in sorted(covered):
            if stop <= cursor or start >= end:
                continue
            if start > cursor:
                gaps.append((cursor, min(start, end)))
            cursor = max(cursor, stop)
        if cursor < end:
            gaps.append((cursor, end))
        for start, stop in gaps:
            payload = data[start:stop]
            if payload and not set(payload) <= _PADDING:
                vaddr = segment.vaddr + (start - segment.offset)
                regions.append(Region(start, stop - start, vaddr, segment.executable))
    return regions


def _moved_tables(image: ElfImage) -> int:
    """The size of the largest dynamic table patchelf moved past every other section; 0 if none.

    patchelf appends what it grows after the end of the file's other allocated sections.
    """
    allocated = [s for s in image.sections if s.allocated and s.kind != "SHT_NOBITS" and s.fits]
    rest = [s.offset + s.size for s in allocated if s.name not in _MOVABLE]
    if not rest:
        return 0
    end = max(rest)
    moved = [s.size for s in allocated if s.name in _MOVABLE and s.offset >= end]
    return max(moved, default=0)


def _code_starts(image: ElfImage) -> int:
    """The file offset of the first executable section (where code begins)."""
    starts = [s.offset for s in image.sections if s.executable and s.allocated and s.fits]
    return min(starts, default=len(image.data))


def _stale(region: Region, moved: int, code_starts: int) -> bool:
    # Leftover copies of tables patchelf moved: never larger than a table that moved (rounded to
    # the page patchelf may reserve with it), and never among the code: older linkers map the
    # dynamic tables in the executable segment too, ahead of the first executable section.
    if moved <= 0 or region.size > moved + 4096:
        return False
    return not region.executable or region.offset + region.size <= code_starts


def hidden_data(image: ElfImage) -> tuple[Region, ...]:
    """The regions :func:`hidden_load` allows as patchelf's leftovers (read-only data)."""
    segments = load_segments(image.data, image.bits)
    if not segments:
        return ()
    moved, code = _moved_tables(image), _code_starts(image)
    return tuple(r for r in _uncovered(image, segments) if _stale(r, moved, code))


def hidden_load(image: ElfImage) -> tuple[str, ...]:
    """Loaded bytes no allocated section describes, and unloaded sections inside loaded ranges."""
    data = image.data
    segments = load_segments(data, image.bits)
    if segments is None:
        return ("the program headers cannot be read: what the loader maps is unknown",)
    problems: list[str] = []
    for section in image.sections:
        if section.allocated or section.kind == "SHT_NOBITS" or not section.fits:
            continue
        span = (section.offset, section.offset + section.size)
        if section.size and any(
            span[0] < s.offset + s.size and s.offset < span[1] for s in segments
        ):
            problems.append(
                f"section {section.name!r} is marked not loaded, yet its bytes lie in a loaded "
                "segment"
            )
    moved, code = _moved_tables(image), _code_starts(image)
    for region in _uncovered(image, segments):
        if _stale(region, moved, code):
            continue
        where = "an executable" if region.executable else "a loaded"
        problems.append(
            f"{region.size:,} bytes at file offset {region.offset:#x}, in {where} segment, lie "
            "in no allocated section"
        )
    if len(problems) > _SHOWN:
        problems = [*problems[:_SHOWN], f"… and {len(problems) - _SHOWN:,} more"]
    return tuple(problems)


__all__ = ["Region", "Segment", "hidden_data", "hidden_load", "load_segments"]
